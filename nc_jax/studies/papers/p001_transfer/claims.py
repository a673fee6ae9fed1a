"""Paper 001's claims: `CLAIMS`, one `reproduce.ClaimSpec` each for 001a-001d.

Each spec: evidence (per-seed values as `spread.quantity`, read from the
runs by their tags, `plan.coords`), gates (every run trained,
numbers finite, enough seeds; 001a: NC1 below its value at initialisation;
001d: the head-only baseline trained), checks (`spread.exceeds`: a difference
counts beyond 2 SE), figure (`figures`), setting sentence (`setting`) and
notes. The constants below are fixed before the run.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nc_jax.studies import reproduce
from nc_jax.studies import spread
from nc_jax.studies import sweep
from nc_jax.studies import transfer
from nc_jax.studies.papers.p001_transfer import figures
from nc_jax.studies.papers.p001_transfer import setting
from nc_jax.studies.papers.p001_transfer.plan import coords

# Gates every claim applies to the runs it reads (fixed before the run).
TRAINED = dict(
    reference_accuracy_min=0.5,  # CE's mean source test accuracy (the reference).
    trained_fraction=0.8,        # Every run read: source test accuracy >= this x CE's mean.
    min_seeds=spread.MIN_SEEDS,  # Seeds per compared group.
    z=spread.Z,                  # A difference counts beyond z standard errors.
)

_GATES_TEXT = (
    "Gates: CE's mean source test accuracy >= {reference_accuracy_min}; every pretraining "
    "read reaches >= {trained_fraction} x that mean; every number read is finite; "
    ">= {min_seeds} seeds per compared group.")

# Numbers of a run's record that must be finite.
_NUMBERS = ('test_accuracy', 'train_accuracy', 'train_loss', 'source_nc1', 'source_nc1_init',
            'transfer', 'downstream_nc1')


# ---------------------------------------------------------------------------
# What every claim reads: the runs, the trained gates.
# ---------------------------------------------------------------------------


class _Reader:
  """Reads pretrainings by their tags and keeps what every claim's gates need."""

  def __init__(self, study: reproduce.Study):
    self.study = study
    self.accuracy: dict[str, Any] = {}
    self.nonfinite: list[str] = []

  def note(self, r: sweep.Result) -> sweep.Result:
    for k in _NUMBERS:
      if k in r.final and not spread.finite(r[k]):
        self.nonfinite.append(f'{r.name}: {k}')
    for layer, row in (r.final.get('by_layer') or {}).items():
      for k, v in row.items():
        if not spread.finite(v) and not (k == 'source_nc1_init' and v is None):
          self.nonfinite.append(f'{r.name}: {layer} {k}')
    return r

  def pretrain(self, seed: int, **tags) -> sweep.Result:
    """The pretraining of ``seed`` at `coords` ``tags``, its accuracy and numbers noted."""
    r = self.study.one(**coords(self.study.config, **tags), seed=seed)
    self.accuracy[r.name] = r.final.get('test_accuracy')
    return self.note(r)

  def common(self) -> dict[str, Any]:
    """The reference (CE, base) source accuracy, every read run's, non-finite numbers."""
    ref = [self.pretrain(s)['test_accuracy'] for s in self.study.config.seeds]
    return dict(reference_accuracy=spread.quantity(ref), source_accuracy=dict(self.accuracy),
                nonfinite=list(self.nonfinite))


def _trained_gates(ev, c) -> dict[str, reproduce.Gate]:
  ref = ev['reference_accuracy']['mean']
  acc = list(ev['source_accuracy'].values())
  ratio = min(acc) / ref if ref and spread.finite(acc) else None
  return dict(
      reference_trained=reproduce.at_least(
          ref, c['reference_accuracy_min'], 'mean source test accuracy of CE, the reference'),
      runs_trained=reproduce.at_least(
          ratio, c['trained_fraction'],
          "smallest source test accuracy of the runs read / CE's mean"),
      finite=reproduce.at_most(len(ev['nonfinite']), 0, 'non-finite numbers in the runs read'))


def _trained_notes(ev, config) -> str:
  """The runs read below the accuracy floor (``trained_fraction`` x CE's mean), if any."""
  ref = ev['reference_accuracy']['mean']
  if ref is None:
    return ''
  floor = TRAINED['trained_fraction'] * ref
  low = [f'{n} ({a:.3f})' if spread.finite(a) else f'{n} ({a})'
         for n, a in ev['source_accuracy'].items() if not spread.finite(a) or a < floor]
  return f'Runs below the accuracy floor ({floor:.3f}): ' + ', '.join(low) + '.' if low else ''


def _shift(q: Mapping[str, Any], by: float) -> list[float | None]:
  """The per-seed values of a `spread.quantity` plus ``by`` (a margin of a check)."""
  return [None if v is None else v + by for v in q['values']]


# ---------------------------------------------------------------------------
# 001a: the loss table.
# ---------------------------------------------------------------------------


def _evidence_001a(study) -> dict[str, Any]:
  read = _Reader(study)
  seeds, losses = study.config.seeds, list(study.config.losses)
  rows = {l: [read.pretrain(s, loss=l) for s in seeds] for l in losses}
  key = lambda k: {l: spread.quantity([r[k] for r in rs]) for l, rs in rows.items()}
  return dict(losses=losses, source_nc1=key('source_nc1'),
              source_nc1_init=key('source_nc1_init'), transfer=key('transfer'),
              **read.common())


def _gates_001a(ev, c):
  gates = dict(_trained_gates(ev, c), seeds=reproduce.seeds_gate(
      min(q['n'] for q in ev['source_nc1'].values()), c['min_seeds']))
  for l in ev['losses']:
    gates[f'nc1_below_init_{l}'] = reproduce.changed_gate(
        ev['source_nc1_init'][l], ev['source_nc1'][l],
        f'z of (NC1 at initialisation - trained NC1), {l}')
  return gates


def _checks_001a(ev, c):
  nc1, acc, others = ev['source_nc1'], ev['transfer'], ev['losses']
  low, high = c['most_collapsed'], c['least_collapsed']
  return dict(
      mse_most_collapsed=spread.all_of([spread.exceeds(nc1[l], nc1[low])
                                        for l in others if l != low]),
      supcon_mlp_least_collapsed=spread.all_of([spread.exceeds(nc1[high], nc1[l])
                                                for l in others if l != high]),
      mse_worst_transfer=spread.all_of([spread.exceeds(acc[l], acc[low])
                                        for l in others if l != low]),
      supcon_mlp_best_transfer=spread.all_of([spread.exceeds(acc[high], acc[l])
                                              for l in others if l != high]))


CLAIM_001A = reproduce.ClaimSpec(
    id='001a',
    claim='Pretraining with MSE gives the most collapsed source features and the worst '
          'transfer; SupCon with an MLP head the least collapsed and the best; CE and SupCon '
          'with a linear head in between.',
    paper='Table 1: ResNet-18, CIFAR-100 -> CIFAR-10: NC1 0.001 / 0.771 / 0.792 / 2.991, '
          'transfer 54.0 / 71.2 / 69.9 / 79.5 (MSE / CE / SupCon linear / SupCon MLP).',
    criterion=('Over the seeds, a difference counting only when the mean difference exceeds '
               '{z} standard errors: {most_collapsed} has a lower source NC1 and a lower '
               'transfer accuracy than every other loss; {least_collapsed} a higher source NC1 '
               'and a higher transfer accuracy than every other loss. ' + _GATES_TEXT +
               ' Each loss\'s trained source NC1 lies below its NC1 at initialisation by more '
               'than {z} standard errors (the collapse compared is the training\'s).'),
    constants=dict(TRAINED, most_collapsed='mse', least_collapsed='supcon_mlp'),
    evidence=_evidence_001a, gates=_gates_001a, checks=_checks_001a,
    setting=setting.setting_001a, figure=figures.figure_001a,
    notes=_trained_notes)


# ---------------------------------------------------------------------------
# 001b: classifier-side head layers.
# ---------------------------------------------------------------------------


def _evidence_001b(study) -> dict[str, Any]:
  read = _Reader(study)
  seeds, depths = study.config.seeds, list(study.config.head_depths)
  per = lambda groups, k: [spread.quantity([r[k] for r in rs]) for rs in groups]
  ev = dict(head_depths=depths)
  for loss in ('ce', 'mse'):
    rows = [[read.pretrain(s, loss=loss, head_depth=d) for s in seeds] for d in depths]
    ev[loss] = dict(source_nc1=per(rows, 'source_nc1'), transfer=per(rows, 'transfer'))
  rows = [[read.pretrain(s, loss=l) for s in seeds] for l in ('supcon_linear', 'supcon_mlp')]
  ev['supcon'] = dict(head_layers=[1, 2], source_nc1=per(rows, 'source_nc1'),
                      transfer=per(rows, 'transfer'))
  return dict(ev, **read.common())


def _gates_001b(ev, c):
  quantities = [q for g in ('ce', 'mse', 'supcon') for k in ('source_nc1', 'transfer')
                for q in ev[g][k]]
  return dict(_trained_gates(ev, c), seeds=reproduce.seeds_gate(
      min(q['n'] for q in quantities), c['min_seeds']))


def _checks_001b(ev, c):
  checks = {}
  for g in ('ce', 'mse', 'supcon'):  # Deepest head (SupCon: MLP) against none (linear).
    for key, name in (('source_nc1', 'nc1'), ('transfer', 'transfer')):
      checks[f'{g}_{name}_rises'] = spread.exceeds(ev[g][key][-1], ev[g][key][0])
  return checks


CLAIM_001B = reproduce.ClaimSpec(
    id='001b',
    claim='Adding projection-head layers raises the source NC1 of the pre-head features and '
          'the transfer accuracy, for CE, MSE and SupCon alike.',
    paper='Fig 1: ResNet-18 CIFAR-100 -> CIFAR-10, heads of 0-3 layers.',
    criterion=('For CE and MSE (deepest head vs none) and SupCon (MLP vs linear projection): '
               'both the pre-head source NC1 and the transfer accuracy are higher with more '
               'head layers, the mean difference over the seeds exceeding {z} standard errors. '
               + _GATES_TEXT),
    constants=dict(TRAINED),
    evidence=_evidence_001b, gates=_gates_001b, checks=_checks_001b,
    setting=setting.setting_001b, figure=figures.figure_001b, notes=_trained_notes)


# ---------------------------------------------------------------------------
# 001c: downstream NC1 against transfer.
# ---------------------------------------------------------------------------


def group_evidence(xs, per_seed: Sequence[Sequence[Mapping[str, Any]]], x_label: str) -> dict:
  """001c's evidence of one group (points ``xs``): per seed, its points' downstream NC1 and transfer and their
  Spearman correlation (`transfer.nc1_transfer_spearman`); that of the seed means."""
  nc1 = [[p['downstream_nc1'] for p in pts] for pts in per_seed]
  acc = [[p['transfer'] for p in pts] for pts in per_seed]
  rho = [transfer.nc1_transfer_spearman(x, y) for x, y in zip(nc1, acc)]
  of_means = (transfer.nc1_transfer_spearman(*(np.asarray(v, float).mean(axis=0)
                                               for v in (nc1, acc))) if nc1 else math.nan)
  return dict(x_label=x_label, x=list(xs), downstream_nc1=nc1, transfer=acc,
              spearman=spread.quantity(rho),
              spearman_of_means=None if math.isnan(of_means) else of_means)


def _evidence_001c(study) -> dict[str, Any]:
  read, config = _Reader(study), study.config
  seeds = config.seeds
  groups = dict(
      augmentation=group_evidence(
          config.aug_strengths,
          [[read.pretrain(s, aug=k).final for k in config.aug_strengths] for s in seeds],
          'augmentation strength k'),
      adversarial=group_evidence(
          config.adv_eps,
          [[read.pretrain(s, adv_eps=e).final for e in config.adv_eps] for s in seeds],
          'FGSM eps'))
  deep = [read.pretrain(s, net='deep')['by_layer'] for s in seeds]
  layers = list(deep[0]) if deep else []
  groups['layers'] = group_evidence(layers, [[d[l] for l in layers] for d in deep],
                                    'layer of the deep MLP')
  return dict(groups=groups, seeds=list(seeds), **read.common())


def _gates_001c(ev, c):
  return dict(_trained_gates(ev, c), seeds=reproduce.seeds_gate(
      min(g['spearman']['n'] for g in ev['groups'].values()), c['min_seeds']))


def _checks_001c(ev, c):
  return {f'{g}_negative': spread.below(v['spearman'], c['downstream_rho_max'])
          for g, v in ev['groups'].items()}


CLAIM_001C = reproduce.ClaimSpec(
    id='001c',
    claim='Downstream NC1 (of the downstream data\'s features) correlates negatively with '
          'transfer accuracy: across augmentation strengths, adversarial-training '
          'strengths, and the layers of one deep network.',
    paper='Figs 3, 5, 6: ResNets on CIFAR-100 -> CIFAR-10 (augmentation, adversarial '
          'training); a 12 x 3072 MLP, per-layer downstream NC1 against per-layer probes.',
    criterion=('In each of the three groups, Spearman(downstream NC1, transfer accuracy) is '
               'computed per seed; its mean lies below {downstream_rho_max} by more than {z} '
               'standard errors. ' + _GATES_TEXT),
    constants=dict(TRAINED, downstream_rho_max=-0.5),
    evidence=_evidence_001c, gates=_gates_001c, checks=_checks_001c,
    setting=setting.setting_001c, figure=figures.figure_001c, notes=_trained_notes)


# ---------------------------------------------------------------------------
# 001d: fine-tuning variants.
# ---------------------------------------------------------------------------


def _evidence_001d(study) -> dict[str, Any]:
  read, config = _Reader(study), study.config
  variants = list(config.variants)
  runs = {v: [read.note(study.one(kind='finetune', variant=v, seed=s)) for s in config.seeds]
          for v in variants}
  source = read.pretrain(runs[variants[0]][0].tags['source_seed'])
  return dict(
      variants=variants,
      test_accuracy={v: spread.quantity([r['test_accuracy'] for r in rs])
                     for v, rs in runs.items()},
      trained_params={v: rs[0].final.get('trained_params') for v, rs in runs.items()},
      source_run=source.name, lbfgs_probe=source['transfer'], **read.common())


def _gates_001d(ev, c):
  acc, lbfgs = ev['test_accuracy'], ev['lbfgs_probe']
  ft = [a for v in ev['variants'] for a in acc[v]['values']]
  probe = acc['linear_probe']['mean']
  measured = spread.finite(lbfgs)
  return dict(
      _trained_gates(ev, c),
      finetunes_trained=reproduce.at_least(
          min(ft) / lbfgs if measured and spread.finite(ft) else None, c['trained_fraction'],
          'smallest fine-tuned test accuracy / the L-BFGS probe of the source features'),
      probe_trained=reproduce.at_most(
          lbfgs - probe if measured and probe is not None else None, c['probe_gap_max'],
          'L-BFGS probe - mean head-only (SGD) probe, same frozen features'),
      seeds=reproduce.seeds_gate(min(q['n'] for q in acc.values()), c['min_seeds']))


def _checks_001d(ev, c):
  acc = ev['test_accuracy']
  return dict(
      scl_at_least_layer=spread.exceeds(_shift(acc['scl'], c['scl_tolerance']), acc['layer']),
      layer_well_above_probe=spread.exceeds(_shift(acc['layer'], -c['probe_margin']),
                                            acc['linear_probe']))


CLAIM_001D = reproduce.ClaimSpec(
    id='001d',
    claim='SCL fine-tuning >= layer fine-tuning >> linear probe, with full fine-tuning as the '
          'reference.',
    paper='Table 2: e.g. ResNet-18 ImageNet -> CIFAR-10: 43 / 82 / 85 / 86 (linear probe / '
          'layer FT / SCL FT / full FT).',
    criterion=('Over the seeds, a difference counting only when the mean difference exceeds '
               '{z} standard errors: SCL + {scl_tolerance} exceeds layer FT; layer FT - '
               '{probe_margin} exceeds the linear probe (head only). Full FT and the L-BFGS '
               'probe are reported. ' + _GATES_TEXT + ' Every fine-tuned run reaches >= '
               '{trained_fraction} x the L-BFGS probe of the source features; the head-only '
               'baseline trained: its mean lies at most {probe_gap_max} below that probe.'),
    constants=dict(TRAINED, scl_tolerance=0.005, probe_margin=0.02, probe_gap_max=0.01),
    evidence=_evidence_001d, gates=_gates_001d, checks=_checks_001d,
    setting=setting.setting_001d, figure=figures.figure_001d, notes=_trained_notes)


CLAIMS = [CLAIM_001A, CLAIM_001B, CLAIM_001C, CLAIM_001D]
