"""Paper 002's claims: `CLAIMS`, one `reproduce.ClaimSpec` per claim.

Each spec joins the claim's wording (the claim, the paper's setting, the
criterion sentence formatted from its ``constants``) with its evidence,
gates, checks, setting and figure from `cascade` (002a, 002d), `sizes`
(002b) and `transfer` (002c).
"""

from __future__ import annotations

from typing import Any

from nc_jax.studies import reproduce
from nc_jax.studies.papers.p002_limits import cascade
from nc_jax.studies.papers.p002_limits import criteria
from nc_jax.studies.papers.p002_limits import setting
from nc_jax.studies.papers.p002_limits import sizes
from nc_jax.studies.papers.p002_limits import transfer

_COLLAPSE_TEXT = (
    'the train collapse happened in every {what}: the last hidden layer\'s final train '
    'variance <= {{collapse_max}} and <= {{collapse_fall_max}} x its value when the training '
    'set was first fitted (the first evaluation with train accuracy >= '
    '{{train_accuracy_min}}). ')
_GATE_TEXT = (criteria.PRESTUDY_TEXT + 'Gates: the study ran the setting the rule chose; >= '
              '{min_seeds} seeds; every run read has train accuracy >= {train_accuracy_min} '
              'and test accuracy >= {test_accuracy_min}; ')
_CASCADE_GATE_TEXT = _GATE_TEXT + _COLLAPSE_TEXT.format(what='seed') + (
    'The last hidden layer\'s train variance at initialisation exceeds its value at the '
    'last checkpoint T by > {z:g} SE. ')


def _constants(*keys: str) -> dict[str, Any]:
  return dict(criteria.GATES, **{k: criteria.CRITERIA[k] for k in keys})


CLAIMS = [
    reproduce.ClaimSpec(
        '002a',
        claim='Train collapse without test collapse: the train variance keeps falling while '
              'the strong and weak test variances level off far above it.',
        paper='Figs 1-3: ResNet-18 on CIFAR-10 (and other models / data sets), 80k SGD '
              'iterations, batch 128, lr 0.1, cosine, no augmentation.',
        criterion=_CASCADE_GATE_TEXT + (
            'Checks, at the last hidden layer over the seeds (paired; "a exceeds b": mean(a - '
            'b) > {z:g} SE), each variance around the final model\'s means as the paper '
            'defines them: the strong and the weak test variance at T each exceed {gap_min:g} '
            'x the train variance at T; and each levels off: from the first checkpoint at or '
            'after the fit to T it falls by fewer decades than {level_ratio} x the train '
            'variance\'s decades of fall.'),
        constants=_constants('gap_min', 'level_ratio'),
        evidence=cascade.evidence_002a, gates=cascade.gates_002a, checks=cascade.checks_002a,
        setting=setting.cascade, figure=cascade.figure_002a),
    reproduce.ClaimSpec(
        '002b',
        claim='With more training data, train collapse at the end of training is weaker and '
              'test collapse stronger.',
        paper='Fig 4: ResNet-18 on CIFAR-10 with 12.5k-50k images and VGG-11-BN on '
              'Fashion-MNIST subsets, each trained until the training loss is 1e-6.',
        criterion=_GATE_TEXT + _COLLAPSE_TEXT.format(what='run') + (
            'Every size sees as many training images. Checks: over the seed means, '
            'Spearman(train size, train variance) >= {size_rho_min} and Spearman(train size, '
            'strong test variance) <= -{size_rho_min}; and the direction beyond the noise: '
            'the train variance at the largest size exceeds the one at the smallest, the '
            'strong test variance at the smallest size exceeds the one at the largest (mean '
            'difference > {z:g} SE).'),
        constants=_constants('size_rho_min'),
        evidence=sizes.evidence_002b, gates=sizes.gates_002b, checks=sizes.checks_002b,
        setting=setting.size, figure=sizes.figure_002b),
    reproduce.ClaimSpec(
        '002c',
        claim='Pretraining on super-classes: checkpoints with more train collapse transfer '
              'worse to the fine classes.',
        paper='Fig 5: MNIST parity labels, 3 x 1024 MLP, the first 1,000 images, lr 0.001, '
              '100k iterations; checkpoints fine-tuned (all layers) on 500 new images, best '
              'accuracy over lr 0.0005-0.25 against the checkpoint train variance. Also '
              'ResNet-18 on CIFAR-10 objects vs animals (8 classes, deer and dog dropped).',
        criterion=criteria.PRESTUDY_TEXT + (
            'Gates: the study ran the setting the rule chose; for each pretraining: >= '
            '{min_seeds} pretraining seeds; every pretraining has train accuracy >= '
            '{train_accuracy_min}; the train collapse happened: in every seed the most '
            'collapsed checkpoint\'s train variance (last hidden layer, current means) <= '
            '{collapse_max} and <= {collapse_fall_max} x the value when the pretraining set was '
            'first fitted; the checkpoints span >= {span_min:g}x in train variance in every '
            'seed; every checkpoint has a fine-tuning run that did not diverge, and every '
            'chosen run has fitted its images (train accuracy >= {train_accuracy_min}) and has '
            'test accuracy >= {test_accuracy_min}. Check: per pretraining seed, '
            'Spearman(checkpoint train variance, test accuracy of the fine-tuning run whose '
            'learning rate is chosen on the validation images) over the checkpoints; their '
            'mean over the seeds exceeds {transfer_rho_min} by > {z:g} SE. A linear probe of '
            'each checkpoint\'s features is reported beside it (not judged).'),
        constants=_constants('transfer_rho_min', 'span_min'),
        evidence=transfer.evidence_002c, gates=transfer.gates_002c,
        checks=transfer.checks_002c,
        setting=setting.transfer, figure=transfer.figure_002c),
    reproduce.ClaimSpec(
        '002d',
        claim='Cascading collapse: the last hidden layer\'s train variance falls first and '
              'furthest, the earlier layers\' later and less.',
        paper='Fig 6: 3 x 1024 MLP, MNIST, 100 images per class, lr 0.001, cosine, 80k '
              'iterations; train variance per layer over steps.',
        criterion=_CASCADE_GATE_TEXT + (
            'Checks (current class means, at every evaluation): the final train variance of '
            'each hidden layer exceeds the next layer\'s (paired over the seeds, mean '
            'difference > {z:g} SE), from the first to the last hidden layer; and in every seed '
            'the layers collapse in the cascade\'s order: a layer has collapsed at the first '
            'evaluation where its train variance is <= {collapse_fall} x its value when the '
            'training set was first fitted; the last hidden layer collapses, and each earlier '
            'layer no sooner than the one after it (never counts as latest).'),
        constants=_constants('collapse_fall'),
        evidence=cascade.evidence_002d, gates=cascade.gates_002d, checks=cascade.checks_002d,
        setting=setting.cascade, figure=cascade.figure_002d),
]
