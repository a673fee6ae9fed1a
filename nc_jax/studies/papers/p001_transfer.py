"""Paper 001: "What deep representations should we learn? A neural collapse
perspective" — claims 001a-001d as one study.

Every pretraining is a trainer run on the source task; transfer is a linear
probe (L-BFGS, frozen features) on the downstream task, read at the layer
transfer uses (`transfer.transfer_layer`: 'pre_head' when a classifier-side
head is present, else 'penultimate'; SupCon's projection is never used). The
probes and the fine-tuning runs are `nc_jax.studies.transfer`'s. Each run
records its source accuracy and loss, the source NC1 of that layer at the end
and at initialisation (epoch 0 of its records), the probe's accuracy and the
downstream NC1. Runs (``configs/papers/p001_transfer.py``), every one for each
of ``config.seeds`` and tagged with its coordinates (`_coords`: ``loss``,
``head_depth``, ``aug``, ``adv_eps``, ``net``; claims select runs by these
tags, never by name):

- ``<loss>_seed<s>`` (001a): MSE, CE, SupCon with a linear and with an MLP
  projection head;
- ``<ce|mse>_head<L>[_seed<s>]`` (001b): L classifier-side head layers;
- ``aug<k>[_seed<s>]``, ``adv<eps>[_seed<s>]``, ``deep[_seed<s>]`` (001c):
  augmentation strengths, FGSM-training strengths, and one deep MLP probed at
  every layer (the first seed's runs keep their original, unsuffixed names);
- ``ft_<variant>_seed<s>`` (001d): the fine-tuning variants of 001 sec 3.3
  from the CE model of the first seed (`transfer.finetune_run`).

Each claim is a `reproduce.ClaimSpec`: evidence (per-seed values as
`spread.quantity`), gates (every run trained, numbers finite, enough seeds;
001a: NC1 below its value at initialisation; 001d: the head-only baseline
trained), checks (`spread.exceeds`: a difference counts beyond 2 SE), figure
and text. The constants below are fixed before the run. References: paper
001 secs 3.1-3.3, Table 1-2, Figs 1, 3-6; SPEC.md "Transfer (000, 001)".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nc_jax import plots
from nc_jax.rundir import RunDir
from nc_jax.studies import reproduce
from nc_jax.studies import settings
from nc_jax.studies import spread
from nc_jax.studies import sweep
from nc_jax.studies import transfer
from nc_jax.studies.common import say

PAPER = '001'
TITLE = 'What deep representations should we learn? A neural collapse perspective'

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
_SOURCE_KEEP = ('test_accuracy', 'train_accuracy', 'train_loss')  # From the trainer summary.


# ---------------------------------------------------------------------------
# Runs.
# ---------------------------------------------------------------------------


def _coords(config, **over) -> dict[str, Any]:
  """A pretraining's tags: the base model (CE, no head, base augmentation, no
  adversary, the base network) with ``over`` changed."""
  return dict(dict(kind='pretrain', loss='ce', head_depth=0, aug=config.base_aug,
                   adv_eps=0.0, net='base'), **over)


def _source_nc1(run: RunDir, layer: str) -> dict[str, float | None]:
  """Train NC1 of ``layer`` at initialisation (epoch 0; None if not logged) and at the end."""
  epochs, nc1 = run.series('nc1', split='train', layer=layer)
  return dict(source_nc1_init=float(nc1[0]) if epochs[0] == 0 else None,
              source_nc1=float(nc1[-1]))


def _analysis(config, *, every_layer: bool = False):
  """``then`` of a pretraining: source NC1 and downstream probe (`transfer.layerwise_probes`)
  of the transfer layer; with ``every_layer``, of every layer too (``by_layer``)."""

  def then(run, rdir):
    rd = RunDir(rdir)
    layer = transfer.transfer_layer(rd.model_info['feature_dims'])
    probes = transfer.layerwise_probes(rdir, config.downstream, config.probe,
                                       layers=None if every_layer else [layer])
    rows = {l: dict(transfer=p['probe_top1'], downstream_nc1=p['downstream_nc1'],
                    **_source_nc1(rd, l)) for l, p in probes.items()}
    out = dict(layer=layer, **rows[layer])
    if every_layer:
      out['by_layer'] = rows
    say(f"{run.name}: source nc1 {out['source_nc1']:.4g}, transfer {out['transfer']:.4f}")
    return out

  return then


def _trained_params(run, rdir):
  return dict(trained_params=RunDir(rdir).summary['num_params'])


def _seeded(stem: str, seed: int, first: int) -> str:
  # The first seed keeps the name these runs had when they had one seed.
  return stem if seed == first else f'{stem}_seed{seed}'


def plan(config, workdir: str) -> list[sweep.Run]:
  seeds = tuple(config.seeds)
  first = seeds[0]
  pretrain = sweep.train(keep=_SOURCE_KEEP, then=_analysis(config))
  runs = []

  def add(name, over, seed, execute=pretrain, **tags):
    runs.append(sweep.Run(name, execute,
                          sweep.with_overrides(config.pretrain, dict(over, seed=seed)),
                          seed=seed, overrides=dict(over), tags=_coords(config, **tags)))

  for loss, over in config.losses.items():
    for s in seeds:
      add(f'{loss}_seed{s}', over.to_dict(), s, loss=loss)
  for loss in ('ce', 'mse'):
    for depth in config.head_depths:
      if depth:
        for s in seeds:
          add(_seeded(f'{loss}_head{depth}', s, first),
              {'loss': loss, 'model_kwargs.head_depth': depth}, s, loss=loss, head_depth=depth)
  for k in config.aug_strengths:
    if k != config.base_aug:
      for s in seeds:
        add(_seeded(f'aug{k}', s, first),
            dict(crop_padding=k, augment_noise=config.noise_per_strength * k), s, aug=k)
  for eps in config.adv_eps:
    if eps:
      for s in seeds:
        add(_seeded(f'adv{eps:g}', s, first), dict(adversarial_eps=eps), s, adv_eps=eps)
  deep = sweep.train(keep=_SOURCE_KEEP, then=_analysis(config, every_layer=True))
  for s in seeds:
    add(_seeded('deep', s, first), config.deep.to_dict(), s, execute=deep, net='deep')
  src = f'ce_seed{first}'  # The FT source: the CE base run of the first seed.
  finetune = sweep.train(keep=_SOURCE_KEEP, then=_trained_params)
  for variant in config.variants:
    for s in seeds:
      runs.append(transfer.finetune_run(
          f'ft_{variant}_seed{s}', config.finetune, sweep.run_dir(workdir, src), variant,
          block=config.ft_block, seed=s, execute=finetune, deps=(src,),
          overrides=dict(finetune=variant), tags=dict(source_seed=first)))
  return runs


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

  def pretrain(self, seed: int, **coords) -> sweep.Result:
    r = self.study.one(**_coords(self.study.config, **coords), seed=seed)
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


def _scatter(study, fig: str, points, *, xlabel: str, title: str) -> list[str]:
  """Groups of (x, transfer) points, x on a log axis."""
  plots.scatter(study.file(fig), points, xlabel=xlabel, ylabel='transfer (probe top-1)',
                logx=True, title=title)
  return [fig]


# ---------------------------------------------------------------------------
# Settings, computed from the variant's config.
# ---------------------------------------------------------------------------


def _setting_001a(config) -> str:
  p, d, q = config.pretrain, config.downstream, config.probe
  evals = (f'{settings.number(p.eval_train_examples)} training images'
           if p.eval_train_examples else 'the training set')
  return (f'{settings.model(p)} pretrained on {settings.data(p)}: {settings.optimizer(p)}, '
          f'{settings.augmentation(p)}; losses {", ".join(config.losses)} (SupCon: temperature '
          f'{p.supcon_temperature:g}, two views, an online linear classifier); '
          f'{settings.seeds(config.seeds)}. Source NC1 of the transfer layer (pre_head with a '
          f'head, else penultimate) on {evals}, at the end and at initialisation. Transfer: '
          f'L-BFGS linear probe ({q.l2_grid_size} L2 values in [{q.l2_min:g}, {q.l2_max:g}], '
          f'{q.val_fraction:.0%} held out) of the frozen transfer-layer features on '
          f'{settings.data(d)}, tested on {settings.test_data(d)}.')


def _setting_001b(config) -> str:
  return (_setting_001a(config) + f' Classifier-side head layers '
          f'{tuple(config.head_depths)} for CE and MSE, {settings.seeds(config.seeds)}; '
          'SupCon: linear (1 layer) vs MLP (2 layers) projection (the runs of 001a).')


def _setting_001c(config) -> str:
  deep = sweep.with_overrides(config.pretrain, config.deep.to_dict())
  noise = (f' and pixel noise {config.noise_per_strength:g} k' if config.noise_per_strength
           else '')
  return (_setting_001a(config) + f' Augmentation strengths k = '
          f'{tuple(config.aug_strengths)} (random crop padding k px{noise}; k = '
          f'{config.base_aug} is the CE model); FGSM training at eps {tuple(config.adv_eps)} '
          f'(pixels in [0, 1]); one deep network, {settings.model(deep)}, probed at every '
          f'layer. Each group for {settings.seeds(config.seeds)}: one Spearman correlation '
          'per seed.')


def _setting_001d(config) -> str:
  f = config.finetune
  return (f'From the CE model of seed {config.seeds[0]} (see 001a): the linear probe (a new '
          f'head only), layer FT and SCL FT of block {config.ft_block} (SCL: identity skip, '
          f'equal widths), and full FT, each on {settings.data(f)}: {settings.optimizer(f)}; '
          f'{settings.seeds(config.seeds)}; test on {settings.test_data(f)}. The L-BFGS '
          'probe of the same frozen features (001a) is the head-only baseline\'s reference.')


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


def _figure_001a(ev, study):
  return _scatter(study, '001a_nc1_vs_transfer.png',
                  {l: (ev['source_nc1'][l]['values'], ev['transfer'][l]['values'])
                   for l in ev['losses']},
                  xlabel='source NC1 (train, transfer layer)',
                  title='Losses: source collapse vs transfer (one point per seed)')


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
    setting=_setting_001a, figure=_figure_001a,
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


def _figure_001b(ev, study):
  figs = []
  for key, logy in (('source_nc1', True), ('transfer', False)):
    fig = f'001b_{key}_vs_head_layers.png'
    plots.curves(study.file(fig), ev['head_depths'],
                 {l: [q['mean'] for q in ev[l][key]] for l in ('ce', 'mse')},
                 xlabel='head layers', logy=logy,
                 title=f'{key} (pre-head features, seed mean) vs head layers')
    figs.append(fig)
  return figs


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
    setting=_setting_001b, figure=_figure_001b, notes=_trained_notes)


# ---------------------------------------------------------------------------
# 001c: downstream NC1 against transfer.
# ---------------------------------------------------------------------------


def _group(xs, per_seed: Sequence[Sequence[Mapping[str, Any]]], x_label: str) -> dict:
  """Evidence of one group: per seed, its points' downstream NC1 and transfer and their
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
      augmentation=_group(config.aug_strengths,
                          [[read.pretrain(s, aug=k).final for k in config.aug_strengths]
                           for s in seeds], 'augmentation strength k'),
      adversarial=_group(config.adv_eps,
                         [[read.pretrain(s, adv_eps=e).final for e in config.adv_eps]
                          for s in seeds], 'FGSM eps'))
  deep = [read.pretrain(s, net='deep')['by_layer'] for s in seeds]
  layers = list(deep[0]) if deep else []
  groups['layers'] = _group(layers, [[d[l] for l in layers] for d in deep],
                            'layer of the deep MLP')
  return dict(groups=groups, seeds=list(seeds), **read.common())


def _gates_001c(ev, c):
  return dict(_trained_gates(ev, c), seeds=reproduce.seeds_gate(
      min(g['spearman']['n'] for g in ev['groups'].values()), c['min_seeds']))


def _checks_001c(ev, c):
  return {f'{g}_negative': spread.below(v['spearman'], c['downstream_rho_max'])
          for g, v in ev['groups'].items()}


def _figure_001c(ev, study):
  flat = lambda rows: [v for row in rows for v in row]
  return _scatter(study, '001c_downstream_nc1_vs_transfer.png',
                  {g: (flat(v['downstream_nc1']), flat(v['transfer']))
                   for g, v in ev['groups'].items()},
                  xlabel='downstream NC1 (downstream features)',
                  title='Downstream collapse vs transfer (all seeds)')


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
    setting=_setting_001c, figure=_figure_001c, notes=_trained_notes)


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


def _figure_001d(ev, study):
  fig = '001d_finetuning.png'
  n = max((q['n'] for q in ev['test_accuracy'].values()), default=0)
  transfer.finetune_figure(
      study.file(fig), ev['lbfgs_probe'],
      {f'{v}\n(mean of {n})': q['mean'] for v, q in ev['test_accuracy'].items()},
      source=study.config.pretrain.dataset, target=study.config.finetune.dataset)
  return [fig]


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
    setting=_setting_001d, figure=_figure_001d, notes=_trained_notes)


CLAIMS = [CLAIM_001A, CLAIM_001B, CLAIM_001C, CLAIM_001D]
