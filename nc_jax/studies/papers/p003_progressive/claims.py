"""Paper 003's claims: `CLAIMS`, one `reproduce.ClaimSpec` per claim.

Each spec joins the claim's wording (the claim, the paper's setting, the
criterion sentence formatted from its ``constants``) with its evidence,
gates, checks, setting and figure from `depth` (003a), `noise` (003b, 003c)
and `domain` (003d).
"""

from nc_jax.studies import reproduce
from nc_jax.studies.papers.p003_progressive import depth
from nc_jax.studies.papers.p003_progressive import domain
from nc_jax.studies.papers.p003_progressive import gates
from nc_jax.studies.papers.p003_progressive import noise
from nc_jax.studies.papers.p003_progressive import setting

_GATE_TEXT = ('Gates: >= {min_seeds} seeds per compared group; every run read has '
              'train accuracy >= {train_acc_min} and test accuracy >= {test_acc_min} and '
              'a finite loss; ')

CLAIMS = [
    reproduce.ClaimSpec(
        id='003a',
        claim='CDNV and NC2 fall progressively from the first layer to the last (a plateau in '
              'the middle, a renewed fall at the end); past the plateau extra layers add little '
              'test accuracy; per-layer linear-probe accuracy rises along the same path.',
        paper='Fig 1: ResNet-18 to -152 on CIFAR-10/100, ImageNet (e.g. ResNet-50/101/152: '
              '95.55 / 95.58 / 95.58% on CIFAR-10).',
        criterion=(
            'Judged on the ResNets (the MLP depth sweep is the per-layer-law control: '
            'the same numbers, reported, not judged). Per seed, Spearman(block, CDNV) and '
            'Spearman(block, NC2) over the tracked blocks (stem first); at every depth the '
            'seed mean of each is below {progressive_rho_max} by more than {z:g} SE; the '
            'linear-probe accuracy of the last block exceeds that of the stem by more than '
            '{probe_gain_z_min:g} SE (paired over seeds); plateau in the deepest network: '
            'the mean per-block fall of log CDNV over the middle third of its blocks, over '
            'that of the last third, has a seed mean below {plateau_ratio_max} by more than '
            '{z:g} SE; the deepest network\'s test accuracy exceeds the second deepest\'s by '
            'less than {depth_gain_max} ({depth_gain_max} minus the mean gain > {z:g} SE). ' +
            _GATE_TEXT +
            'the last block\'s seed-mean train CDNV <= {cdnv_collapse_max} at every depth; '
            'the fall of log CDNV from the first to the last block exceeds the fall at '
            'initialisation by > {z:g} SE at every depth.'),
        constants=dict(gates.GATES, progressive_rho_max=-0.8, probe_gain_z_min=3.0,
                       plateau_ratio_max=0.5, depth_gain_max=0.02),
        evidence=depth.evidence_003a, gates=depth.gates_003a, checks=depth.checks_003a,
        setting=setting.depth, figure=depth.figure_003a, notes=depth.notes_003a),
    reproduce.ClaimSpec(
        id='003b',
        claim='With label noise the layer-wise CDNV curves keep their shape but are lifted as '
              'the noise rate grows; the memorization ratio stays below 1 except in the last '
              'few layers.',
        paper='Figs 2 and 6: ResNets on CIFAR-10N (human noisy labels) and CIFAR-10 with '
              'random labels.',
        criterion=(
            'At every depth: at >= {lifted_fraction_min:.0%} of the layers CDNV rises with '
            'the noise rate, each step of the seed means by more than {z:g} SE; for every '
            'rate > 0, the layers whose seed-mean memorization ratio exceeds 1 by more than '
            '{z:g} SE are all in the second half of the network. ' + _GATE_TEXT +
            'the last layer\'s seed-mean train CDNV at the lowest noise rate <= '
            '{cdnv_collapse_max} at every depth; at every depth at least one layer\'s ratio '
            'exceeds 1 (as above) for some rate > 0, else the location check is vacuous '
            'there.'),
        constants=dict(gates.GATES, lifted_fraction_min=0.7),
        evidence=noise.evidence_003b, gates=noise.gates_003b, checks=noise.checks_003b,
        setting=setting.label_noise, figure=noise.figure_003b),
    reproduce.ClaimSpec(
        id='003c',
        claim='Trained on corrupted inputs, the memorization ratio (CDNV on the clean versions / '
              'CDNV on the corrupted training data) rises above 1 only in the last layers, with '
              'more such layers than under label noise.',
        paper='Sec 4.2, Figs 8-9: ResNets on CIFAR-10-C (Gaussian noise, levels 0-3).',
        criterion=(
            'A layer counts as above 1 when its seed-mean memorization ratio exceeds 1 by '
            'more than {z:g} SE (the same rule for the label-noise runs of 003b). For every '
            'severity the layers above 1 are all in the second half of the network, and the '
            'most such layers over the severities exceeds the most over the label-noise rates '
            '> 0. ' + _GATE_TEXT +
            'the last layer\'s seed-mean train CDNV (corrupted images) <= {cdnv_collapse_max} '
            'at every severity; at least one layer above 1 for some severity.'),
        constants=dict(gates.GATES),
        evidence=noise.evidence_003c, gates=noise.gates_003c, checks=noise.checks_003c,
        setting=setting.corruption, figure=noise.figure_003c),
    reproduce.ClaimSpec(
        id='003d',
        claim='Under domain shift, models pretrained on different source domains show similar '
              'progressive collapse on the target in early layers and diverge in deeper ones; '
              'layers and models with stronger collapse on the target give higher linear-probe '
              'accuracy on it with little target data.',
        paper='Sec 4.3, Fig 3: ResNet-50 on Office-Home (Art, Clipart, Product, Real-World).',
        criterion=(
            'Per seed (one model per source), the spread (sample std of log target CDNV '
            'across the sources) at the last layer exceeds that at the first layer, the mean '
            'of the per-seed differences by more than {z:g} SE; at the last layer the seed '
            'mean of that spread exceeds the within-source seed spread (the mean over '
            'sources of the sample std of log target CDNV over seeds); within each layer, '
            'Spearman(target CDNV, target probe accuracy) across the sources, averaged over '
            'the layers, has a seed mean below {domain_rho_max} by more than {z:g} SE (the '
            'Spearman pooled over layers and sources is reported, not judged: the layer '
            'index alone can drive it). ' + _GATE_TEXT +
            'the last layer\'s seed-mean train CDNV on the source <= {cdnv_collapse_max} for '
            'every source; the last layer\'s target CDNV lies below its value at '
            'initialisation by > {z:g} SE for every source.'),
        constants=dict(gates.GATES, domain_rho_max=-0.5),
        evidence=domain.evidence_003d, gates=domain.gates_003d, checks=domain.checks_003d,
        setting=setting.domain_shift, figure=domain.figure_003d, notes=domain.notes_003d),
]
