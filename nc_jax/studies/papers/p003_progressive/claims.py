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
            'Per seed, Spearman(layer, CDNV) and Spearman(layer, probe accuracy) over the '
            'layers of each depth; at every depth the seed mean of the first is below '
            '{progressive_rho_max} and that of the second above {probe_rho_min}, each by more '
            'than {z:g} SE; the deepest model\'s test accuracy exceeds the second deepest\'s by '
            'less than {depth_gain_max} ({depth_gain_max} minus the mean gain > {z:g} SE). The '
            'plateau is reported (the CDNV curves), not tested. ' + _GATE_TEXT +
            'the last layer\'s seed-mean train CDNV <= {cdnv_collapse_max} at every depth; '
            'the fall of log CDNV from the first to the last layer exceeds the fall at '
            'initialisation by > {z:g} SE at every depth.'),
        constants=dict(gates.GATES, progressive_rho_max=-0.8, probe_rho_min=0.8,
                       depth_gain_max=0.02),
        evidence=depth.evidence_003a, gates=depth.gates_003a, checks=depth.checks_003a,
        setting=setting.depth, figure=depth.figure_003a),
    reproduce.ClaimSpec(
        id='003b',
        claim='With label noise the layer-wise CDNV curves keep their shape but are lifted as '
              'the noise rate grows; the memorization ratio stays below 1 except in the last '
              'few layers.',
        paper='Figs 2 and 6: ResNets on CIFAR-10N (human noisy labels) and CIFAR-10 with '
              'random labels.',
        criterion=(
            'At >= {lifted_fraction_min:.0%} of the layers CDNV rises with the noise rate, each '
            'step of the seed means by more than {z:g} SE; for every rate > 0, the layers '
            'whose seed-mean memorization ratio exceeds 1 by more than {z:g} SE are all in '
            'the second half of the network. ' + _GATE_TEXT +
            'the last layer\'s seed-mean train CDNV at the lowest noise rate <= '
            '{cdnv_collapse_max}; at least one layer\'s ratio exceeds 1 (as above) for some '
            'rate > 0, else the location check is vacuous.'),
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
            'Per seed (one model per source), the spread (std of log target CDNV across the '
            'sources) at the last layer exceeds that at the first layer, the mean of the '
            'per-seed differences by more than {z:g} SE; the per-seed Spearman(target CDNV, '
            'target probe accuracy) over every (source, layer) has a seed mean below '
            '{domain_rho_max} by more than {z:g} SE. ' + _GATE_TEXT +
            'the last layer\'s seed-mean train CDNV on the source <= {cdnv_collapse_max} for '
            'every source; the last layer\'s target CDNV lies below its value at '
            'initialisation by > {z:g} SE for every source.'),
        constants=dict(gates.GATES, domain_rho_max=-0.5),
        evidence=domain.evidence_003d, gates=domain.gates_003d, checks=domain.checks_003d,
        setting=setting.domain_shift, figure=domain.figure_003d),
]
