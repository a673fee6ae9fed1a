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

from nc_jax.probes import correlation
from nc_jax.studies import reproduce
from nc_jax.studies import spread
from nc_jax.studies import sweep
from nc_jax.studies import transfer
from nc_jax.studies.papers.p001_transfer import figures
from nc_jax.studies.papers.p001_transfer import setting
from nc_jax.studies.papers.p001_transfer.plan import coords, lr_rule, rule_name

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
    for group in ('by_layer', 'targets'):
      for where, row in (r.final.get(group) or {}).items():
        for k, v in row.items():
          if not spread.finite(v) and not (k == 'source_nc1_init' and v is None):
            self.nonfinite.append(f'{r.name}: {where} {k}')
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


def _probe_of(final: Mapping[str, Any], target: str) -> dict[str, Any]:
  """A pretraining's probe of ``target`` (``final['targets'][target]``; {} if absent)."""
  return dict((final.get('targets') or {}).get(target) or {})


def _by_target(rows: Mapping[Any, Sequence[sweep.Result]], targets) -> dict[str, Any]:
  """{target: {group: transfer over the seeds}} of every target (reported)."""
  return {t: {g: spread.quantity([_probe_of(r.final, t).get('transfer') for r in rs])
              for g, rs in rows.items()} for t in targets}


def _mse_rule(study) -> dict[str, Any]:
  """The MSE rate rule's pilots (`lr_rule`) and the rate the MSE runs used."""
  config = study.config
  pilots = {float(r): study.records.get(rule_name(r), {}).get('final') or {}
            for r in config.mse_lr_grid}
  if not all(p.get('train_loss') for p in pilots.values()):
    return dict(chosen=None, passes={}, train_loss={})
  chosen, passes = lr_rule(pilots, config.lr_rule.epochs)
  return dict(chosen=chosen, passes={f'{r:g}': ok for r, ok in passes.items()},
              train_loss={f'{r:g}': p['train_loss'] for r, p in pilots.items()})


def _evidence_001a(study) -> dict[str, Any]:
  read = _Reader(study)
  seeds, losses = study.config.seeds, list(study.config.losses)
  rows = {l: [read.pretrain(s, loss=l) for s in seeds] for l in losses}
  key = lambda k: {l: spread.quantity([r[k] for r in rs]) for l, rs in rows.items()}
  nc1 = key('source_nc1')
  ce, sc = nc1['ce']['mean'], nc1.get('supcon_mlp', {}).get('mean')
  return dict(losses=losses, source_nc1=nc1,
              source_nc1_init=key('source_nc1_init'), transfer=key('transfer'),
              transfer_by_target=_by_target(rows, study.config.targets),
              source_accuracy_by_loss=key('test_accuracy'),
              supcon_mlp_over_ce_nc1=sc / ce if ce and sc is not None else None,
              mse_rule=_mse_rule(study), **read.common())


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


def _notes_001a(ev, config) -> str:
  rule = ev.get('mse_rule') or {}
  parts = [_trained_notes(ev, config)]
  if rule.get('passes'):
    chosen = rule['chosen']
    parts.append(
        f"MSE's rate by the rule: {chosen:g} (rates whose pilot loss fell every epoch: "
        + ', '.join(r for r, ok in rule['passes'].items() if ok) + '; the lowest final loss '
        'chosen).' if chosen is not None
        else 'No MSE rate passed the rule; the MSE runs used the grid\'s smallest.')
  ratio = ev.get('supcon_mlp_over_ce_nc1')
  if ratio is not None:
    parts.append(f'SupCon-MLP source NC1 / CE\'s: {ratio:.2f} (the paper: 3.9).')
  return ' '.join(p for p in parts if p)


CLAIM_001A = reproduce.ClaimSpec(
    id='001a',
    claim='Pretraining with MSE gives the most collapsed source features and the worst '
          'transfer; SupCon with an MLP head the least collapsed and the best; CE and SupCon '
          'with a linear head in between.',
    paper='Table 1: ResNet-18, CIFAR-100 -> CIFAR-10: NC1 0.001 / 0.771 / 0.792 / 2.991, '
          'transfer 54.0 / 71.2 / 69.9 / 79.5 (MSE / CE / SupCon linear / SupCon MLP).',
    criterion=('On the primary target, over the seeds, a difference counting only when the '
               'mean difference exceeds {z} standard errors: {most_collapsed} has a lower '
               'source NC1 and a lower transfer accuracy than every other loss; '
               '{least_collapsed} a higher source NC1 and a higher transfer accuracy than '
               'every other loss. ' + _GATES_TEXT +
               ' Each loss\'s trained source NC1 lies below its NC1 at initialisation by more '
               'than {z} standard errors (the collapse compared is the training\'s).'),
    constants=dict(TRAINED, most_collapsed='mse', least_collapsed='supcon_mlp'),
    evidence=_evidence_001a, gates=_gates_001a, checks=_checks_001a,
    setting=setting.setting_001a, figure=figures.figure_001a,
    notes=_notes_001a)


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
    ev[loss] = dict(source_nc1=per(rows, 'source_nc1'), transfer=per(rows, 'transfer'),
                    transfer_by_target=_by_target(dict(enumerate(rows)), study.config.targets))
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
    paper='Fig 1: ResNet-50, CIFAR-100 -> CIFAR-10, heads of 0-3 layers (CE, MSE, SupCon).',
    criterion=('On the primary target, for CE and MSE (deepest head vs none) and SupCon (MLP '
               'vs linear projection): both the pre-head source NC1 and the transfer accuracy '
               'are higher with more head layers, the mean difference over the seeds '
               'exceeding {z} standard errors. ' + _GATES_TEXT),
    constants=dict(TRAINED),
    evidence=_evidence_001b, gates=_gates_001b, checks=_checks_001b,
    setting=setting.setting_001b, figure=figures.figure_001b, notes=_trained_notes)


# ---------------------------------------------------------------------------
# 001c: downstream NC1 against transfer.
# ---------------------------------------------------------------------------


def group_evidence(xs, per_seed: Sequence[Sequence[Mapping[str, Any]]], x_label: str) -> dict:
  """One group's points ``xs`` (per seed, each point's downstream NC1 and transfer):
  the per-seed Spearman correlations (`transfer.nc1_transfer_spearman`) and that of
  the seed means (reported), and the pooled Pearson r (`pooled_pearson`, the test)."""
  nc1 = [[p.get('downstream_nc1') for p in pts] for pts in per_seed]
  acc = [[p.get('transfer') for p in pts] for pts in per_seed]
  rho = [transfer.nc1_transfer_spearman(x, y) for x, y in zip(nc1, acc)]
  of_means = (transfer.nc1_transfer_spearman(*(np.asarray(v, float).mean(axis=0)
                                               for v in (nc1, acc))) if nc1 else math.nan)
  return dict(x_label=x_label, x=list(xs), downstream_nc1=nc1, transfer=acc,
              spearman=spread.quantity(rho),
              spearman_of_means=None if math.isnan(of_means) else of_means,
              pearson=pooled_pearson(nc1, acc))


def _pearson_of_rows(groups: Sequence[np.ndarray]) -> float:
  rows = np.concatenate(groups)
  return float(correlation.pearson(rows[:, 0], rows[:, 1]))


def pooled_pearson(nc1: Sequence[Sequence[Any]], acc: Sequence[Sequence[Any]]) -> dict:
  """Pearson r of (downstream NC1, transfer) over every point of every seed (the paper's
  Fig 3 pools its models in one scatter), its SE by resampling the seeds of each point
  (`spread.bootstrap`; ``nc1[s][i]``: seed s, point i)."""
  if not nc1:
    return dict(mean=None, se=None, n=0, draws=0)
  groups = [[[nc1[s][i], acc[s][i]] for s in range(len(nc1))] for i in range(len(nc1[0]))]
  return spread.bootstrap(_pearson_of_rows, groups)


def _evidence_001c(study) -> dict[str, Any]:
  read, config = _Reader(study), study.config
  seeds, levels = config.seeds, list(range(len(config.aug_ladder)))
  eps = list(config.adv_eps)
  aug = [[read.pretrain(s, aug=k).final for k in levels] for s in seeds]
  adv = [[read.pretrain(s, adv_eps=e).final for e in eps] for s in seeds]
  deep = [read.pretrain(s, net='deep')['by_layer'] for s in seeds]
  layers = list(deep[0]) if deep else []
  extra = [e for e in eps if e]  # eps 0 is the base run, already a level of the ladder.
  models = [a + [p for p, e in zip(d, eps) if e] for a, d in zip(aug, adv)]
  labels = [f'aug {config.aug_ladder[k]}' for k in levels] + [f'PGD {e * 255:g}/255'
                                                               for e in extra]
  groups = dict(
      models=group_evidence(labels, models, 'pretraining (augmentation level, PGD radius)'),
      layers=group_evidence(layers, [[d[l] for l in layers] for d in deep],
                            'layer of the deep MLP'),
      augmentation=group_evidence([config.aug_ladder[k] for k in levels], aug,
                                  'augmentation level'),
      adversarial=group_evidence(eps, adv, 'PGD eps'))
  second = {t: group_evidence(labels, [[_probe_of(r, t) for r in row] for row in models],
                             'pretraining')
            for t in config.targets if t != config.primary}
  return dict(groups=groups, tested=list(TESTED_001C), seeds=list(seeds),
              other_targets={t: dict(pearson=g['pearson']) for t, g in second.items()},
              **read.common())


TESTED_001C = ('models', 'layers')  # The pooled tests; the other groups are reported.


def _gates_001c(ev, c):
  n = min((len(g['downstream_nc1']) for g in ev['groups'].values()), default=0)
  return dict(_trained_gates(ev, c), seeds=reproduce.seeds_gate(n, c['min_seeds']))


def _checks_001c(ev, c):
  return {f'{g}_negative': spread.below(ev['groups'][g]['pearson'], c['pearson_max'])
          for g in ev['tested']}


CLAIM_001C = reproduce.ClaimSpec(
    id='001c',
    claim='Downstream NC1 (of the downstream data\'s features) correlates negatively with '
          'transfer accuracy: across pretrainings of different augmentation and '
          'adversarial-training strengths, and across the layers of one deep network.',
    paper='Figs 3, 5, 6: ResNet-50s on CIFAR-100 -> CIFAR-10 and three other targets '
          '(augmentation levels and PGD radii pooled in one scatter, "negative (almost '
          'linear)"); a 12 x 3072 MLP, per-layer downstream NC1 against per-layer probes.',
    criterion=('On the primary target, Pearson r of (downstream NC1, transfer accuracy) '
               'pooled over every pretraining of the augmentation ladder and the PGD radii '
               '(every seed a point), and over every layer of the deep MLP (every seed), each '
               'lies below {pearson_max} by more than {z} standard errors (SE: resampling the '
               'seeds of each point, 2,000 draws). ' + _GATES_TEXT),
    constants=dict(TRAINED, pearson_max=-0.5),
    evidence=_evidence_001c, gates=_gates_001c, checks=_checks_001c,
    setting=setting.setting_001c, figure=figures.figure_001c, notes=_trained_notes)


# ---------------------------------------------------------------------------
# 001d: fine-tuning variants.
# ---------------------------------------------------------------------------


def _evidence_001d(study) -> dict[str, Any]:
  read, config = _Reader(study), study.config
  seeds = list(config.ft_seeds)
  lbfgs = [read.pretrain(s)['transfer'] for s in seeds]
  by_block, best, acc = {}, {}, {}
  for v in config.variants:
    blocks = transfer.tuned_blocks(v, config.ft_blocks)
    by_block[v] = {b: spread.quantity([
        read.note(study.one(kind='finetune', variant=v, block=b, seed=s))['test_accuracy']
        for s in seeds]) for b in blocks}
    means = {b: q['mean'] for b, q in by_block[v].items()}
    best[v] = max(means, key=lambda b: -math.inf if means[b] is None else means[b])
    acc[v] = by_block[v][best[v]]
  d = spread.difference(acc['scl']['values'], acc['layer']['values'], paired=True) if (
      spread.finite(acc['scl']['values']) and spread.finite(acc['layer']['values'])) else None
  scl_minus_layer = None if d is None or not math.isfinite(d.se) else dict(
      mean=d.mean, se=d.se, n=d.n, low=d.mean - spread.Z * d.se, high=d.mean + spread.Z * d.se)
  return dict(variants=list(config.variants), seeds=seeds, lbfgs_probe=spread.quantity(lbfgs),
              test_accuracy=acc, best_block=best, by_block=by_block,
              scl_minus_layer=scl_minus_layer, **read.common())


def _gates_001d(ev, c):
  acc, lbfgs = ev['test_accuracy'], ev['lbfgs_probe']['mean']
  ft = [a for v in ev['variants'] for a in acc[v]['values']]
  return dict(
      _trained_gates(ev, c),
      finetunes_trained=reproduce.at_least(
          min(ft) / lbfgs if lbfgs and spread.finite(ft) else None, c['trained_fraction'],
          'smallest fine-tuned test accuracy / mean L-BFGS probe of the source features'),
      seeds=reproduce.seeds_gate(min([q['n'] for q in acc.values()]
                                     + [ev['lbfgs_probe']['n']]), c['min_seeds']))


def _checks_001d(ev, c):
  acc, lbfgs = ev['test_accuracy'], ev['lbfgs_probe']
  return dict(
      scl_above_layer=spread.exceeds(acc['scl'], acc['layer'], paired=True),
      layer_well_above_probe=spread.exceeds(_shift(acc['layer'], -c['probe_margin']),
                                            lbfgs, paired=True))


def _notes_001d(ev, config) -> str:
  d = ev.get('scl_minus_layer')
  parts = [_trained_notes(ev, config)]
  if d:
    parts.append(f"SCL - layer FT (best blocks {ev['best_block']['scl']} / "
                 f"{ev['best_block']['layer']}): {d['mean']:+.4f}, interval "
                 f"[{d['low']:+.4f}, {d['high']:+.4f}] (mean +- {spread.Z:g} SE, paired).")
  return ' '.join(p for p in parts if p)


CLAIM_001D = reproduce.ClaimSpec(
    id='001d',
    claim='Fine-tuning one block with a skip connection to the penultimate layer (SCL) beats '
          'fine-tuning that block alone, which beats the linear probe of the frozen features '
          'by a wide margin; full fine-tuning is the reference.',
    paper='Table 2: e.g. ResNet-18 ImageNet -> CIFAR-10: 43 / 82 / 85 / 86 (linear probe / '
          'layer FT / SCL FT / full FT), each block variant at its best block.',
    criterion=('Over the pretraining seeds (paired: each seed\'s fine-tunings start from its '
               'own CE pretraining), a difference counting only when the mean difference '
               'exceeds {z} standard errors: SCL FT exceeds layer FT; layer FT - {probe_margin} '
               'exceeds the L-BFGS probe of the same frozen features (SPEC.md\'s linear probe). '
               'Layer and SCL FT at their best block by the seed mean, as the paper reports '
               'its best layer; full FT and the head-only SGD probe are reported. '
               + _GATES_TEXT + ' Every fine-tuned run reaches >= {trained_fraction} x the mean '
               'L-BFGS probe.'),
    constants=dict(TRAINED, probe_margin=0.02),
    evidence=_evidence_001d, gates=_gates_001d, checks=_checks_001d,
    setting=setting.setting_001d, figure=figures.figure_001d, notes=_notes_001d)


CLAIMS = [CLAIM_001A, CLAIM_001B, CLAIM_001C, CLAIM_001D]
