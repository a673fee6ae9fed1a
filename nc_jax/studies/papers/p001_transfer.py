"""Paper 001: "What deep representations should we learn? A neural collapse
perspective" — claims 001a-001d as one study.

Every pretraining is a trainer run on the source task; transfer is a linear
probe (L-BFGS, frozen features) on the downstream task, read at the layer
transfer uses: the encoder output ('pre_head' when a classifier-side head is
present, else 'penultimate'; SupCon's projection is never used). Each run
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
  from the CE model of the first seed, as trainer runs (``init_from``).

Each claim is a `reproduce.ClaimSpec`: evidence (per-seed values and their
`spread.summary`), gates (every run trained, numbers finite, enough seeds;
001a: NC1 below its value at initialisation; 001d: the head-only baseline
trained), checks (`spread.exceeds`: a difference counts beyond 2 SE), figure
and text. The constants below are fixed before the run. References: paper
001 secs 3.1-3.3, Table 1-2, Figs 1, 3-6; SPEC.md "Transfer (000, 001)".
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from nc_jax import plots
from nc_jax import records as records_lib
from nc_jax.probes.correlation import spearman
from nc_jax.rundir import RunDir
from nc_jax.studies import reproduce
from nc_jax.studies import spread
from nc_jax.studies import sweep
from nc_jax.studies.common import probe_layers, say
from nc_jax.train import input as input_lib

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


def transfer_layer(dims: Mapping[str, Any]) -> str:
  return 'pre_head' if 'pre_head' in dims else 'penultimate'


def _probe(config, rdir: str, layers) -> dict[str, dict[str, float]]:
  """{layer: probe top-1 and downstream nc1} on the downstream task."""
  tr, te = input_lib.load_data(config.downstream)
  res = probe_layers(rdir, tr, te, config.probe, layers=layers, seed=0,
                     batch_size=config.downstream.eval_batch_size)
  return {l: dict(transfer=r['probe_top1'], downstream_nc1=r['downstream_nc1'])
          for l, r in res.items()}


def _source_nc1(run: RunDir, layer: str) -> tuple[float | None, float]:
  """(train NC1 of ``layer`` at initialisation (epoch 0; None if not logged), at the end)."""
  epochs, nc1 = records_lib.series(run.records, 'nc1', split='train', layer=layer)
  return (float(nc1[0]) if epochs[0] == 0 else None), float(nc1[-1])


def _analysis(config, *, all_layers: bool = False):
  """``then`` of a pretraining: its source NC1 (end and init) and downstream probe."""

  def then(run, rdir):
    rd = RunDir(rdir)
    dims = rd.model_info['feature_dims']
    layer = transfer_layer(dims)
    layers = [l for l in dims if l != 'projection'] if all_layers else [layer]
    probes = _probe(config, rdir, layers)
    nc1 = {l: _source_nc1(rd, l) for l in layers}
    out = dict(layer=layer, source_nc1_init=nc1[layer][0], source_nc1=nc1[layer][1],
               transfer=probes[layer]['transfer'],
               downstream_nc1=probes[layer]['downstream_nc1'])
    if all_layers:
      out['by_layer'] = {l: dict(probes[l], source_nc1_init=nc1[l][0], source_nc1=nc1[l][1])
                         for l in layers}
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
  deep = sweep.train(keep=_SOURCE_KEEP, then=_analysis(config, all_layers=True))
  for s in seeds:
    add(_seeded('deep', s, first), config.deep.to_dict(), s, execute=deep, net='deep')
  src = f'ce_seed{first}'  # The FT source: the CE base run of the first seed.
  pdir = os.path.abspath(sweep.run_dir(workdir, src))
  finetune = sweep.train(keep=_SOURCE_KEEP, then=_trained_params)
  for variant in config.variants:
    for s in seeds:
      over = dict(init_from=pdir, finetune=variant, seed=s,
                  finetune_block=config.ft_block if variant in ('layer', 'scl') else '')
      runs.append(sweep.Run(f'ft_{variant}_seed{s}', finetune,
                            sweep.with_overrides(config.finetune, over), seed=s,
                            overrides=dict(finetune=variant), deps=(src,),
                            tags=dict(kind='finetune', variant=variant, source_seed=first)))
  return runs


# ---------------------------------------------------------------------------
# Numbers: per-seed values, their spread, comparisons that cannot tell.
# ---------------------------------------------------------------------------


def _finite(v) -> bool:
  return isinstance(v, (int, float, np.number)) and math.isfinite(float(v))


def _float(v) -> float | None:
  return None if v is None else float(v)


def _no_nan(v) -> float | None:
  return None if v is None or math.isnan(float(v)) else float(v)


def _values(x) -> list:
  return list(x['values']) if isinstance(x, Mapping) else list(x)


def _stat(values: Iterable[Any]) -> dict[str, Any]:
  """Per-seed values with `spread.summary` (mean, se, n); None where undefined."""
  values = [_float(v) for v in values]
  if values and all(_finite(v) for v in values):
    s = spread.summary(values)
    return dict(values=values, mean=s['mean'], se=None if math.isnan(s['se']) else s['se'],
                n=s['n'])
  return dict(values=values, mean=None, se=None, n=len(values))


def _mean(x) -> float | None:
  v = _values(x)
  return float(np.mean(v)) if v and all(_finite(a) for a in v) else None


def _exceeds(a, b) -> bool | None:
  """`spread.exceeds` (a beyond b by 2 SE); None when a value is missing or not finite."""
  a = _values(a)
  b = b if isinstance(b, (int, float)) else _values(b)
  if not a or not all(_finite(v) for v in a) or (
      not isinstance(b, (int, float)) and (not b or not all(_finite(v) for v in b))):
    return None
  return spread.exceeds(a, b)


def _shift(x, by: float) -> list[float | None]:
  return [None if v is None else v + by for v in _values(x)]


def _all(results: Sequence[bool | None]) -> bool | None:
  """False if any is False; else None if any is None (or none given); else True."""
  if any(r is False for r in results):
    return False
  return None if not results or any(r is None for r in results) else True


def _z_drop(before, after) -> float | None:
  """z-score of before - after (`spread.z_score`); None if not measurable."""
  b, a = _values(before), _values(after)
  if not a or not b or not all(_finite(v) for v in a + b):
    return None
  z = spread.z_score(b, a)
  return None if math.isnan(z) else z


class _Reader:
  """Reads pretrainings by their tags and keeps what every claim's gates need."""

  def __init__(self, study: reproduce.Study):
    self.study = study
    self.accuracy: dict[str, float | None] = {}
    self.nonfinite: list[str] = []

  def note(self, r: sweep.Result) -> sweep.Result:
    for k in _NUMBERS:
      if k in r.final and not _finite(r[k]):
        self.nonfinite.append(f'{r.name}: {k}')
    for layer, row in (r.final.get('by_layer') or {}).items():
      for k, v in row.items():
        if not _finite(v) and not (k == 'source_nc1_init' and v is None):
          self.nonfinite.append(f'{r.name}: {layer} {k}')
    return r

  def pretrain(self, seed: int, **coords) -> sweep.Result:
    r = self.study.one(**_coords(self.study.config, **coords), seed=seed)
    self.accuracy[r.name] = _float(r.final.get('test_accuracy'))
    return self.note(r)

  def common(self) -> dict[str, Any]:
    """The reference (CE, base) source accuracy, every read run's, non-finite numbers."""
    ref = [self.pretrain(s)['test_accuracy'] for s in self.study.config.seeds]
    return dict(reference_accuracy=_stat(ref), source_accuracy=dict(self.accuracy),
                nonfinite=list(self.nonfinite))


def _trained_gates(ev, c) -> dict[str, reproduce.Gate]:
  ref = _mean(ev['reference_accuracy'])
  acc = list(ev['source_accuracy'].values())
  low = min(acc) if acc and all(_finite(a) for a in acc) else None
  ratio = None if low is None or not ref else low / ref
  return dict(
      reference_trained=reproduce.at_least(
          ref, c['reference_accuracy_min'], 'mean source test accuracy of CE, the reference'),
      runs_trained=reproduce.at_least(
          ratio, c['trained_fraction'],
          "smallest source test accuracy of the runs read / CE's mean"),
      finite=reproduce.at_most(len(ev['nonfinite']), 0, 'non-finite numbers in the runs read'))


def _seeds_gate(stats: Iterable[Any], c) -> reproduce.Gate:
  return reproduce.seeds_gate(min((len(_values(s)) for s in stats), default=0), c['min_seeds'])


def _trained_notes(ev, config) -> str:
  ref = _mean(ev['reference_accuracy'])
  if ref is None:
    return ''
  floor = TRAINED['trained_fraction'] * ref
  low = {n: a for n, a in ev['source_accuracy'].items() if not _finite(a) or a < floor}
  if not low:
    return ''
  return ('Runs below the accuracy floor ' + f'({floor:.3f}): ' +
          ', '.join(f'{n} ({a:.3f})' if _finite(a) else f'{n} ({a})' for n, a in low.items())
          + '.')


def _nan(v) -> float:
  return float('nan') if v is None else float(v)


# ---------------------------------------------------------------------------
# Settings, computed from the variant's config.
# ---------------------------------------------------------------------------


_DATA = {'fashion_mnist': ('Fashion-MNIST', 10), 'mnist': ('MNIST', 10),
         'cifar10': ('CIFAR-10', 10), 'cifar100': ('CIFAR-100', 100),
         'cifar10_jpeg': ('CIFAR-10 (JPEG copy)', 10), 'digits': ('scikit-learn digits', 10)}


def _data(c) -> str:
  name, classes = _DATA.get(c.dataset, (c.dataset, None))
  if c.train_examples_per_class and classes:
    return f'{name} ({c.train_examples_per_class * classes:,} training images)'
  return f'{name} (the full training set)'


def _test(c) -> str:
  m = re.fullmatch(r'\w+\[:(\d+)\]', c.test_split)
  return f'{int(m.group(1)):,} test images' if m else f'the {c.test_split} split'


def _model(model: str, k) -> str:
  if model == 'mlp':
    return f"MLP {k.depth} x {k.width} (ReLU{', BatchNorm' if k.get('norm') == 'batch' else ''})"
  stem = ', CIFAR stem' if k.get('stem') == 'cifar' else ''
  return f"{model.replace('resnet', 'ResNet-')} (width {k.get('width')}{stem})"


def _optimiser(c) -> str:
  opt = (f'SGD momentum {c.momentum:g}' if c.optimizer == 'sgd' else 'AdamW')
  return (f'{opt}, lr {c.learning_rate:g} {c.schedule}, weight decay {c.weight_decay:g}, '
          f'batch {c.batch_size}, {c.num_epochs} epoch{"s" if c.num_epochs != 1 else ""}')


def _augmentation(c) -> str:
  parts = ([f'random crop (padding {c.crop_padding})'] * bool(c.crop_padding) +
           ['horizontal flip'] * bool(c.flip) +
           [f'pixel noise {c.augment_noise:g}'] * bool(c.augment_noise))
  return ' and '.join(parts) if parts else 'no augmentation'


def _seeds(config) -> str:
  seeds = tuple(config.seeds)
  return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"


def setting_pretrain(config) -> str:
  p, d, q = config.pretrain, config.downstream, config.probe
  evals = (f'{p.eval_train_examples:,} training images' if p.eval_train_examples
           else 'the training set')
  return (f'{_model(p.model, p.model_kwargs)} pretrained on {_data(p)}: {_optimiser(p)}, '
          f'{_augmentation(p)}; losses {", ".join(config.losses)} (SupCon: temperature '
          f'{p.supcon_temperature:g}, two views, an online linear classifier); {_seeds(config)}. '
          f'Source NC1 of the transfer layer (pre_head with a head, else penultimate) on '
          f'{evals}, at the end and at initialisation. Transfer: L-BFGS linear probe '
          f'({q.l2_grid_size} L2 values in [{q.l2_min:g}, {q.l2_max:g}], {q.val_fraction:.0%} '
          f'held out) of the frozen transfer-layer features on {_data(d)}, tested on '
          f'{_test(d)}.')


def _setting_001b(config) -> str:
  return (setting_pretrain(config) + f' Classifier-side head layers '
          f'{tuple(config.head_depths)} for CE and MSE, {_seeds(config)}; SupCon: linear '
          '(1 layer) vs MLP (2 layers) projection (the runs of 001a).')


def _setting_001c(config) -> str:
  deep = sweep.with_overrides(config.pretrain, config.deep.to_dict())
  noise = (f' and pixel noise {config.noise_per_strength:g} k' if config.noise_per_strength
           else '')
  return (setting_pretrain(config) + f' Augmentation strengths k = '
          f'{tuple(config.aug_strengths)} (random crop padding k px{noise}; k = '
          f'{config.base_aug} is the CE model); FGSM training at eps {tuple(config.adv_eps)} '
          f'(pixels in [0, 1]); one deep network, {_model(deep.model, deep.model_kwargs)}, '
          f'probed at every layer. Each group for {_seeds(config)}: one Spearman correlation '
          'per seed.')


def _setting_001d(config) -> str:
  f = config.finetune
  return (f'From the CE model of seed {config.seeds[0]} (see 001a): the linear probe (a new '
          f'head only), layer FT and SCL FT of block {config.ft_block} (SCL: identity skip, '
          f'equal widths), and full FT, each {f.num_epochs} epochs at lr {f.learning_rate:g} '
          f'(SGD momentum {f.momentum:g}, weight decay {f.weight_decay:g}, batch '
          f'{f.batch_size}) on {_data(f)}, {_seeds(config)}; test on {_test(f)}. The L-BFGS '
          'probe of the same frozen features (001a) is the head-only baseline\'s reference.')


# ---------------------------------------------------------------------------
# 001a: the loss table.
# ---------------------------------------------------------------------------


def _evidence_001a(study) -> dict[str, Any]:
  read = _Reader(study)
  seeds, losses = study.config.seeds, list(study.config.losses)
  rows = {l: [read.pretrain(s, loss=l) for s in seeds] for l in losses}
  key = lambda k: {l: _stat(r[k] for r in rs) for l, rs in rows.items()}
  return dict(losses=losses, source_nc1=key('source_nc1'),
              source_nc1_init=key('source_nc1_init'), transfer=key('transfer'),
              **read.common())


def _gates_001a(ev, c):
  gates = _trained_gates(ev, c)
  gates['seeds'] = _seeds_gate(ev['source_nc1'].values(), c)
  for l in ev['losses']:
    z = _z_drop(ev['source_nc1_init'][l], ev['source_nc1'][l])
    gates[f'nc1_below_init_{l}'] = reproduce.Gate(
        z, c['z'], '>', f'z of (NC1 at initialisation - trained NC1), {l}')
  return gates


def _checks_001a(ev, c):
  nc1, acc, others = ev['source_nc1'], ev['transfer'], ev['losses']
  low, high = c['most_collapsed'], c['least_collapsed']
  return dict(
      mse_most_collapsed=_all([_exceeds(nc1[l], nc1[low]) for l in others if l != low]),
      supcon_mlp_least_collapsed=_all([_exceeds(nc1[high], nc1[l])
                                       for l in others if l != high]),
      mse_worst_transfer=_all([_exceeds(acc[l], acc[low]) for l in others if l != low]),
      supcon_mlp_best_transfer=_all([_exceeds(acc[high], acc[l])
                                     for l in others if l != high]))


def _figure_001a(ev, study):
  fig = '001a_nc1_vs_transfer.png'
  plots.scatter(study.file(fig),
                {l: ([_nan(v) for v in ev['source_nc1'][l]['values']],
                     [_nan(v) for v in ev['transfer'][l]['values']]) for l in ev['losses']},
                xlabel='source NC1 (train, transfer layer)', ylabel='transfer (probe top-1)',
                logx=True, title='Losses: source collapse vs transfer (one point per seed)')
  return [fig]


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
    setting=setting_pretrain, figure=_figure_001a,
    notes=_trained_notes)


# ---------------------------------------------------------------------------
# 001b: classifier-side head layers.
# ---------------------------------------------------------------------------


def _evidence_001b(study) -> dict[str, Any]:
  read = _Reader(study)
  seeds, depths = study.config.seeds, list(study.config.head_depths)
  ev = dict(head_depths=depths)
  for loss in ('ce', 'mse'):
    rows = [[read.pretrain(s, loss=loss, head_depth=d) for s in seeds] for d in depths]
    ev[loss] = dict(source_nc1=[_stat(r['source_nc1'] for r in rs) for rs in rows],
                    transfer=[_stat(r['transfer'] for r in rs) for rs in rows])
  rows = [[read.pretrain(s, loss=l) for s in seeds] for l in ('supcon_linear', 'supcon_mlp')]
  ev['supcon'] = dict(head_layers=[1, 2],
                      source_nc1=[_stat(r['source_nc1'] for r in rs) for rs in rows],
                      transfer=[_stat(r['transfer'] for r in rs) for rs in rows])
  return dict(ev, **read.common())


def _gates_001b(ev, c):
  return dict(_trained_gates(ev, c), seeds=_seeds_gate(
      [s for g in ('ce', 'mse', 'supcon') for k in ('source_nc1', 'transfer') for s in ev[g][k]],
      c))


def _checks_001b(ev, c):
  checks = {}
  for g in ('ce', 'mse', 'supcon'):  # Deepest head (SupCon: MLP) against none (linear).
    for key, name in (('source_nc1', 'nc1'), ('transfer', 'transfer')):
      checks[f'{g}_{name}_rises'] = _exceeds(ev[g][key][-1], ev[g][key][0])
  return checks


def _figure_001b(ev, study):
  figs = []
  for key, logy in (('source_nc1', True), ('transfer', False)):
    fig = f'001b_{key}_vs_head_layers.png'
    plots.curves(study.file(fig), ev['head_depths'],
                 {l: [_nan(s['mean']) for s in ev[l][key]] for l in ('ce', 'mse')},
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
  """Evidence of one group: per seed, its points' downstream NC1 and transfer."""
  nc1 = [[_float(p['downstream_nc1']) for p in pts] for pts in per_seed]
  acc = [[_float(p['transfer']) for p in pts] for pts in per_seed]
  rho = [float(spearman([_nan(v) for v in x], [_nan(v) for v in y]))
         for x, y in zip(nc1, acc)]
  mean = lambda rows: [float(np.mean([_nan(r[i]) for r in rows])) for i in range(len(xs))]
  return dict(x_label=x_label, x=list(xs), downstream_nc1=nc1, transfer=acc,
              spearman=_stat(_no_nan(r) for r in rho),
              spearman_of_means=_no_nan(spearman(mean(nc1), mean(acc))) if nc1 else None)


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
  return dict(_trained_gates(ev, c),
              seeds=_seeds_gate([g['spearman'] for g in ev['groups'].values()], c))


def _checks_001c(ev, c):
  # Mean Spearman below rho_max by more than z SE: (rho_max - rho) exceeds 0.
  return {f'{g}_negative': _exceeds([None if r is None else c['downstream_rho_max'] - r
                                     for r in _values(v['spearman'])], 0.0)
          for g, v in ev['groups'].items()}


def _figure_001c(ev, study):
  fig = '001c_downstream_nc1_vs_transfer.png'
  flat = lambda rows: [_nan(v) for row in rows for v in row]
  plots.scatter(study.file(fig),
                {g: (flat(v['downstream_nc1']), flat(v['transfer']))
                 for g, v in ev['groups'].items()},
                xlabel='downstream NC1 (downstream features)', ylabel='transfer (probe top-1)',
                logx=True, title='Downstream collapse vs transfer (all seeds)')
  return [fig]


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
      test_accuracy={v: _stat(r['test_accuracy'] for r in rs) for v, rs in runs.items()},
      trained_params={v: rs[0].final.get('trained_params') for v, rs in runs.items()},
      source_run=source.name, lbfgs_probe=_float(source['transfer']), **read.common())


def _gates_001d(ev, c):
  acc, lbfgs = ev['test_accuracy'], ev['lbfgs_probe']
  ft = [a for v in ev['variants'] for a in _values(acc[v])]
  low = min(ft) if ft and all(_finite(a) for a in ft) else None
  probe = _mean(acc['linear_probe'])
  return dict(
      _trained_gates(ev, c),
      finetunes_trained=reproduce.at_least(
          None if low is None or not _finite(lbfgs) else low / lbfgs, c['trained_fraction'],
          'smallest fine-tuned test accuracy / the L-BFGS probe of the source features'),
      probe_trained=reproduce.at_most(
          None if probe is None or not _finite(lbfgs) else lbfgs - probe, c['probe_gap_max'],
          'L-BFGS probe - mean head-only (SGD) probe, same frozen features'),
      seeds=_seeds_gate(acc.values(), c))


def _checks_001d(ev, c):
  acc = ev['test_accuracy']
  return dict(
      scl_at_least_layer=_exceeds(_shift(acc['scl'], c['scl_tolerance']), acc['layer']),
      layer_well_above_probe=_exceeds(_shift(acc['layer'], -c['probe_margin']),
                                      acc['linear_probe']))


def _figure_001d(ev, study):
  fig = '001d_finetuning.png'
  n = max((a['n'] for a in ev['test_accuracy'].values()), default=0)
  config = study.config
  plots.bars(study.file(fig),
             dict({f'{v}\n(mean of {n})': _nan(a['mean'])
                   for v, a in ev['test_accuracy'].items()},
                  **{'L-BFGS probe\n(frozen)': _nan(ev['lbfgs_probe'])}),
             title=f'{config.pretrain.dataset} -> {config.finetune.dataset}: fine-tuning')
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
