"""Paper 003: "Generalization, Robustness and Adaptability of Progressive Neural
Collapse" — claims 003a-003d as one study.

Runs (``configs/papers/p003_progressive.py``), every one a trainer run
(`sweep.train`) that records, per layer, CDNV and NC2 on the training images
at the last epoch and at initialisation (epoch 0), with its final train / test
accuracy and train loss. Each run is tagged; the claims select runs by their
tags (`reproduce.Study.where`), never by name. One run per seed of
``config.seeds`` in every group:

- ``depth<d>_seed<s>`` / ``depth_<model>_seed<s>`` (003a; tags ``kind='depth'``,
  ``group``, ``model``, ``depth``): one model family at several depths;
  afterwards a linear probe on every layer's frozen features.
- ``noise<r>_seed<s>`` (003b; ``kind='label_noise'``, ``label_noise=r``):
  symmetric label noise; the trainer measures CDNV against the noisy training
  labels and, on the same features, against the clean labels
  (``eval_label_sets=('clean',)``); the memorization ratio is their quotient
  (SPEC.md).
- ``corrupt<v>_seed<s>`` (003c; ``kind='corruption'``, ``severity=v``): trained
  on corrupted inputs; CDNV on the corrupted training images and on the same
  images clean (``eval_sets.train_clean``, ``like_train=True``).
- ``source_<name>_seed<s>`` (003d; ``kind='source'``, ``source=name``): models
  trained on different source domains (the same labels, different input
  distributions); CDNV of each layer on the target domain
  (``eval_sets.target``) and a linear probe on the target with little target
  data.

Each claim is a `reproduce.ClaimSpec` in `CLAIMS`: its evidence (per-seed
values and their `spread.summary`), gates (every run read trained, the
collapse happened, a change measured against initialisation, >= 3 seeds) and
checks (differences and trends through `spread.exceeds`, so a difference
counts only beyond 2 SE of its seed noise). Thresholds are the claims'
``constants``, fixed before the run; the criterion sentences are formatted
from them.

References: paper 003 secs 3-4, Figs 1-3, 6, 9, Def 1; SPEC.md "Layers and
noise (003)".
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nc_jax import plots
from nc_jax import train
from nc_jax.data.transforms import CORRUPTION_LEVELS
from nc_jax.probes.correlation import spearman
from nc_jax.studies import reproduce
from nc_jax.studies import spread
from nc_jax.studies import sweep
from nc_jax.studies.common import probe_layers
from nc_jax.train import input as input_lib
from nc_jax.workdir import Workdir

PAPER = '003'
TITLE = 'Generalization, Robustness and Adaptability of Progressive Neural Collapse'

# Preconditions every claim reads (fixed before the run, never tuned).
TRAIN_ACC_MIN = 0.9  # Every run read fits its training labels (noisy ones included).
TEST_ACC_MIN = 0.4  # and learned the task: test accuracy 4x chance (10 classes).
CDNV_COLLAPSE_MAX = 0.5  # Collapse happened: last layer's seed-mean train CDNV.

_GATES = dict(train_acc_min=TRAIN_ACC_MIN, test_acc_min=TEST_ACC_MIN,
              cdnv_collapse_max=CDNV_COLLAPSE_MAX, min_seeds=spread.MIN_SEEDS,
              z=spread.Z)

# What every run records besides its per-layer analysis (summary keys).
_KEEP = ('train_accuracy', 'test_accuracy', 'train_loss')


# ---------------------------------------------------------------------------
# What a run records.
# ---------------------------------------------------------------------------


def _layers(rdir: str) -> list[str]:
  return [l for l in train.finetune.read_model_info(rdir)['feature_dims'] if l != 'projection']


def layer_records(records: Sequence[Mapping[str, Any]], split: str,
                  labels: str | None = None, *, epoch: str | int = 'last'
                  ) -> dict[str, Mapping[str, Any]]:
  """``{layer: record}`` of one split and label set at ``epoch`` ('last' or a number).

  ``labels`` None: the training labels (records without ``"labels"`` or with
  ``"labels": "task"``); else ``'clean'`` and so on.
  """
  want = labels or 'task'
  rs = [r for r in records if r.get('split') == split and (r.get('labels') or 'task') == want]
  if not rs:
    return {}
  at = max(r['epoch'] for r in rs) if epoch == 'last' else epoch
  return {r['layer']: r for r in rs if r['epoch'] == at}


def _analysis(rdir: str, extra_splits: Sequence[str] = ()) -> dict[str, Any]:
  """Per-layer CDNV / NC2 at the last epoch and at initialisation (epoch 0)."""
  records = Workdir(rdir).read_metrics()
  layers = _layers(rdir)
  out: dict[str, Any] = dict(layers=layers)
  for suffix, epoch in (('', 'last'), ('_init', 0)):
    tr = layer_records(records, 'train', epoch=epoch)
    out['cdnv' + suffix] = [tr[l]['cdnv'] for l in layers]
    out['nc2_etf' + suffix] = [tr[l]['nc2_etf'] for l in layers]
    clean = layer_records(records, 'train', 'clean', epoch=epoch)
    if clean:  # Label noise: CDNV against the clean labels, same features.
      out['cdnv_clean_labels' + suffix] = [clean[l]['cdnv'] for l in layers]
      out['memorization_ratio' + suffix] = [
          c / n for c, n in zip(out['cdnv_clean_labels' + suffix], out['cdnv' + suffix])]
    for split in extra_splits:
      recs = layer_records(records, split, epoch=epoch)
      out[f'cdnv_{split}' + suffix] = [recs[l]['cdnv'] for l in layers]
    if 'train_clean' in extra_splits:  # Corrupted inputs: the same images clean.
      out['memorization_ratio' + suffix] = [
          c / n for c, n in zip(out['cdnv_train_clean' + suffix], out['cdnv' + suffix])]
  return out


def _probe(config, rdir: str, tcfg, *, target=None) -> list[float]:
  """Linear-probe test accuracy of every layer's frozen features (layer order)."""
  if target is None:
    tr, te = input_lib.load_data(tcfg)
    rng = np.random.default_rng(0)
    tr = tr.subset(np.sort(rng.choice(len(tr), min(len(tr), config.probe_examples), False)))
    te = te.subset(np.arange(min(len(te), config.probe_test_examples)))
  else:
    tr, te = target
  layers = _layers(rdir)
  res = probe_layers(rdir, tr, te, config.probe, layers=layers, seed=0,
                     batch_size=tcfg.eval_batch_size)
  return [res[l]['probe_top1'] for l in layers]


def _then(config, *, probe: bool = False, target: bool = False,
          extra_splits: Sequence[str] = ()):
  """The analysis `sweep.train` runs after training (merged into the record)."""

  def then(run: sweep.Run, rdir: str) -> dict[str, Any]:
    out = _analysis(rdir, extra_splits)
    if probe:
      out['probe_accuracy'] = _probe(config, rdir, run.config)
    if target:
      out['target_probe_accuracy'] = _probe(config, rdir, run.config,
                                            target=input_lib.load_data(config.target))
    return out

  return then


def _depth_groups(config) -> list[str]:
  """003a's groups, shallow to deep: MLP depths, then named models of one family."""
  return [f'depth{d}' for d in config.depths] + [f'depth_{m}' for m in config.depth_models]


def plan(config, workdir: str) -> list[sweep.Run]:
  del workdir
  b = config.base
  runs = []
  depth_exec = sweep.train(keep=_KEEP, then=_then(config, probe=True))
  for d in config.depths:
    for s in config.seeds:
      runs.append(sweep.Run(
          f'depth{d}_seed{s}', depth_exec,
          sweep.with_overrides(b, {'model_kwargs.depth': d, 'seed': s}), seed=s,
          overrides=dict(depth=d), tags=dict(kind='depth', group=f'depth{d}',
                                             model=b.model, depth=d)))
  for m in config.depth_models:  # Deeper models of one family, by name (ResNet-18/34/50).
    for s in config.seeds:
      runs.append(sweep.Run(
          f'depth_{m}_seed{s}', depth_exec,
          sweep.with_overrides(b, {'model': m, 'seed': s}), seed=s,
          overrides=dict(model=m), tags=dict(kind='depth', group=f'depth_{m}', model=m)))
  noise_exec = sweep.train(keep=_KEEP, then=_then(config))
  for rate in config.noise_rates:
    for s in config.seeds:
      over = dict(label_noise=rate, seed=s, eval_label_sets=('clean',))
      runs.append(sweep.Run(
          f'noise{rate:g}_seed{s}', noise_exec, sweep.with_overrides(b, over), seed=s,
          overrides=dict(label_noise=rate),
          tags=dict(kind='label_noise', label_noise=rate, model=b.model)))
  corrupt_exec = sweep.train(keep=_KEEP, then=_then(config, extra_splits=('train_clean',)))
  for sev in config.severities:
    for s in config.seeds:
      # Every training image, corrupted and clean: both CDNVs read the same images.
      over = dict(corruption=config.corruption, corruption_severity=sev, seed=s,
                  eval_train_examples=0, eval_sets=dict(train_clean=dict(like_train=True)))
      runs.append(sweep.Run(
          f'corrupt{sev}_seed{s}', corrupt_exec, sweep.with_overrides(b, over), seed=s,
          overrides=dict(corruption=config.corruption, severity=sev),
          tags=dict(kind='corruption', corruption=config.corruption, severity=sev)))
  source_exec = sweep.train(keep=_KEEP, then=_then(config, target=True,
                                                   extra_splits=('target',)))
  t = config.target
  for name, src in config.sources.items():
    for s in config.seeds:
      over = dict(dataset=config.domain_dataset, seed=s, **src.to_dict(),
                  eval_sets=dict(target=dict(dataset=config.domain_dataset, split='test',
                                             corruption=t.corruption,
                                             severity=t.corruption_severity,
                                             examples=config.probe_test_examples)))
      runs.append(sweep.Run(
          f'source_{name}_seed{s}', source_exec, sweep.with_overrides(b, over), seed=s,
          overrides=src.to_dict(),
          tags=dict(kind='source', source=name, corruption=src.corruption,
                    severity=src.corruption_severity)))
  return runs


# ---------------------------------------------------------------------------
# Evidence helpers: per-seed values, their spread, noise-aware comparisons.
# ---------------------------------------------------------------------------


def _float(x) -> float:
  try:
    return float(x)  # Recorded NaN / inf come back as strings ('nan').
  except (TypeError, ValueError):
    return float('nan')


def _floats(xs) -> list[float]:
  return [_float(x) for x in xs]


def _finite(xs) -> bool:
  return all(math.isfinite(x) for x in xs)


def _summary(values) -> dict[str, float | int] | None:
  """`spread.summary` of per-seed values; None when empty or not all finite."""
  v = _floats(values)
  return spread.summary(v) if v and _finite(v) else None


def _layer_summaries(curves) -> list:
  """Per-layer `_summary` of per-seed curves ``[[per layer] per seed]``."""
  return [_summary(col) for col in zip(*curves)] if curves else []


def _exceeds(a, b, *, paired: bool = False) -> bool | None:
  """`spread.exceeds`, None when a side is empty or not finite (cannot tell)."""
  va = _floats(a)
  vb = _float(b) if np.ndim(b) == 0 else _floats(b)
  vbs = [vb] if isinstance(vb, float) else vb
  if not va or not vbs or not _finite(va + vbs):
    return None
  if paired and len(va) != len(vbs):
    return None
  return spread.exceeds(va, vb, paired=paired)


def _below(values, threshold) -> bool | None:
  """Mean of ``values`` below ``threshold`` by more than `spread.Z` SE."""
  return _exceeds([-v for v in _floats(values)], -threshold)


def _increasing(groups) -> bool | None:
  """`spread.increasing` (each group exceeds the one before), None if undecidable."""
  groups = [_floats(g) for g in groups]
  if len(groups) < 2 or not all(g and _finite(g) for g in groups):
    return None
  return spread.increasing(groups)


def _last(curves) -> list[float]:
  """The last layer's value of each seed's curve."""
  return [_float(c[-1]) for c in curves if len(c)]


def _log_fall(curve) -> float:
  """log(first layer / last layer) of a CDNV curve (NaN unless both positive)."""
  c = _floats(curve)
  if len(c) < 2 or not _finite(c) or c[0] <= 0 or c[-1] <= 0:
    return float('nan')
  return math.log(c[0] / c[-1])


def _rank(curve) -> float:
  """Spearman(layer index, values) of one curve."""
  c = _floats(curve)
  return _float(spearman(np.arange(len(c)), c)) if len(c) >= 3 else float('nan')


def _health(results: Sequence[sweep.Result]) -> dict[str, list]:
  """Seeds, final train / test accuracy and train loss of the runs of a group."""
  return dict(seeds=[r.seed for r in results],
              train_accuracy=[_float(r['train_accuracy']) for r in results],
              test_accuracy=[_float(r['test_accuracy']) for r in results],
              train_loss=[_float(r['train_loss']) for r in results])


def _curves(results: Sequence[sweep.Result], key: str) -> list[list[float]]:
  return [_floats(r[key]) for r in results]


def _above_one(curves) -> list[int]:
  """Layer indices whose seed-mean ratio exceeds 1 by more than 2 SE."""
  n = min((len(c) for c in curves), default=0)
  return [i for i in range(n) if _exceeds([c[i] for c in curves], 1.0) is True]


def _gate_trained(groups: Sequence[Mapping[str, Any]], c) -> dict[str, reproduce.Gate]:
  """Every run read trained: fits its training labels, beats chance, finite loss."""
  train_acc = [x for g in groups for x in _floats(g['train_accuracy'])]
  test_acc = [x for g in groups for x in _floats(g['test_accuracy'])]
  losses = [x for g in groups for x in _floats(g['train_loss'])]
  low = lambda xs: min(xs) if xs and _finite(xs) else None
  return dict(
      runs_trained=reproduce.at_least(
          low(train_acc), c['train_acc_min'], 'smallest final train accuracy of the runs read'),
      runs_generalize=reproduce.at_least(
          low(test_acc), c['test_acc_min'], 'smallest test accuracy of the runs read '
          '(chance 0.1)'),
      finite_loss=reproduce.at_most(
          sum(not math.isfinite(x) for x in losses) + (0 if losses else 1), 0,
          'runs with a non-finite final train loss (divergence)'))


def _gate_seeds(groups: Sequence[Mapping[str, Any]]) -> reproduce.Gate:
  return reproduce.seeds_gate(min((len(g['seeds']) for g in groups), default=0))


def _gate_collapse(groups: Sequence[Mapping[str, Any]], c, key: str = 'cdnv',
                   about: str = '') -> reproduce.Gate:
  """Collapse happened: the largest seed-mean last-layer CDNV over ``groups``."""
  means = [float(np.mean(_last(g[key]))) if g[key] else float('nan') for g in groups]
  value = max(means) if means and _finite(means) else None
  return reproduce.at_most(value, c['cdnv_collapse_max'],
                           about or 'largest seed-mean train CDNV of the last layer')


def _gate_changed(pairs: Sequence[tuple[Any, Any]], about: str) -> reproduce.Gate:
  """The weakest of `reproduce.changed_gate(after, before)` over ``pairs``.

  A pair with too few or non-finite values gives an unmeasured (failing) gate.
  """
  gates = []
  for after, before in pairs:
    a, b = _floats(after), _floats(before)
    if not a or not b or not _finite(a + b):
      return reproduce.Gate(None, spread.Z, '>', about)
    g = reproduce.changed_gate(a, b, about)
    if g.value is None or math.isnan(g.value):
      return reproduce.Gate(None, spread.Z, '>', about)
    gates.append(g)
  if not gates:
    return reproduce.Gate(None, spread.Z, '>', about)
  return min(gates, key=lambda g: g.value)


def _seed_means(curves) -> list[float]:
  """Per-layer seed means of ``[[per layer] per seed]`` (NaN-aware)."""
  if not curves:
    return []
  n = max(len(c) for c in curves)
  m = np.full((len(curves), n), np.nan)
  for i, c in enumerate(curves):
    m[i, :len(c)] = _floats(c)
  with warnings.catch_warnings():  # An all-NaN layer (a shallower depth) stays NaN.
    warnings.simplefilter('ignore', RuntimeWarning)
    return np.nanmean(m, 0).tolist()


# ---------------------------------------------------------------------------
# The setting, computed from the variant's config.
# ---------------------------------------------------------------------------

_DATA = {'fashion_mnist': ('Fashion-MNIST', 10), 'mnist': ('MNIST', 10),
         'cifar10': ('CIFAR-10', 10), 'cifar10_jpeg': ('CIFAR-10 (JPEG copy)', 10),
         'cifar100': ('CIFAR-100', 100), 'digits': ('scikit-learn digits', 10)}
_NORMS = {'batch': 'BatchNorm', 'layer': 'LayerNorm', None: 'no normalisation',
          '': 'no normalisation'}


def _data_text(dataset: str, per_class: int) -> str:
  name, classes = _DATA.get(dataset, (dataset, 0))
  if per_class and classes:
    return f'{name}, {per_class * classes:,} training images ({per_class} per class)'
  if per_class:
    return f'{name}, {per_class} training images per class'
  return f'{name}, every training image'


def _model_text(model: str, kwargs: Mapping[str, Any], *, depth: bool = True) -> str:
  kw = dict(kwargs)
  if model == 'mlp':
    d = f"{kw.get('depth')} hidden layers, " if depth else ''
    return (f"MLP (width {kw.get('width')}, {d}ReLU, "
            f"{_NORMS.get(kw.get('norm'), kw.get('norm'))})")
  extra = ', '.join(f'{k} {v}' for k, v in kw.items())
  return f'{model}' + (f' ({extra})' if extra else '')


def _corruption_text(kind: str, severity: int) -> str:
  if not kind or not severity:
    return 'clean'
  level = CORRUPTION_LEVELS.get(kind, (None,) * 5)[severity - 1]
  what = {'gaussian_noise': f'Gaussian noise (std {level:g} on [0, 1] pixels)',
          'gaussian_blur': f'Gaussian blur (sigma {level:g} px)'}.get(kind, kind)
  return f'{what}, severity {severity}'


def _training_text(config) -> str:
  b = config.base
  opt = (f'SGD momentum {b.momentum:g}' if b.optimizer == 'sgd' else b.optimizer.upper())
  aug = [f'random crop (padding {b.crop_padding})'] if b.crop_padding else []
  aug += ['horizontal flips'] if b.flip else []
  seeds = tuple(config.seeds)
  evaluated = (f'a fixed random subset of {b.eval_train_examples:,} training images'
               if b.eval_train_examples else 'the training images')
  return (f'{opt}, lr {b.learning_rate:g} ({b.schedule}), weight decay {b.weight_decay:g}, '
          f'batch {b.batch_size}, {b.num_epochs} epochs'
          + (f", {' and '.join(aug)}" if aug else '') +
          f'; {len(seeds)} seed{"s" if len(seeds) != 1 else ""} {seeds} per group; CDNV and '
          f'NC2 of every tracked layer on {evaluated} at the last epoch and at '
          'initialisation')


def _base_text(config, *, depth: bool = True) -> str:
  b = config.base
  text = (f'{_model_text(b.model, b.model_kwargs, depth=depth)} on '
          f'{_data_text(b.dataset, b.train_examples_per_class)}; {_training_text(config)}.')
  if b.model == 'mlp':
    text += ' Each hidden layer plays the role of a block (the paper: ResNet blocks).'
  return text


# ---------------------------------------------------------------------------
# 003a: progressive collapse through the layers, over a depth sweep.
# ---------------------------------------------------------------------------


def _evidence_003a(study: reproduce.Study) -> dict[str, Any]:
  runs = {}
  for label in _depth_groups(study.config):
    rs = study.where(kind='depth', group=label)
    g = _health(rs)
    g['layers'] = list(rs[0]['layers']) if rs else []
    for key in ('cdnv', 'nc2_etf', 'probe_accuracy', 'cdnv_init', 'nc2_etf_init'):
      g[key] = _curves(rs, key)
    g['spearman_cdnv'] = [_rank(c) for c in g['cdnv']]
    g['spearman_nc2'] = [_rank(c) for c in g['nc2_etf']]
    g['spearman_probe'] = [_rank(c) for c in g['probe_accuracy']]
    g['log_cdnv_fall'] = [_log_fall(c) for c in g['cdnv']]
    g['log_cdnv_fall_init'] = [_log_fall(c) for c in g['cdnv_init']]
    g['summary'] = dict(
        {k: _summary(g[k]) for k in ('test_accuracy', 'spearman_cdnv', 'spearman_nc2',
                                     'spearman_probe', 'log_cdnv_fall',
                                     'log_cdnv_fall_init')},
        **{k: _layer_summaries(g[k]) for k in ('cdnv', 'nc2_etf', 'probe_accuracy',
                                                'cdnv_init')})
    runs[label] = g
  return dict(depths=list(runs), runs=runs)


def _gates_003a(ev, c) -> dict[str, reproduce.Gate]:
  groups = [ev['runs'][l] for l in ev['depths']]
  return dict(
      seeds=_gate_seeds(groups), **_gate_trained(groups, c),
      train_collapse=_gate_collapse(groups, c),
      cdnv_fall_vs_init=_gate_changed(
          [(g['log_cdnv_fall'], g['log_cdnv_fall_init']) for g in groups],
          'z of log(CDNV first / last layer), trained vs at initialisation (weakest depth)'))


def _checks_003a(ev, c) -> dict[str, bool | None]:
  checks = {}
  for label in ev['depths']:
    g = ev['runs'][label]
    checks[f'{label}_progressive_cdnv'] = _below(g['spearman_cdnv'], c['progressive_rho_max'])
    checks[f'{label}_probe_rises'] = _exceeds(g['spearman_probe'], c['probe_rho_min'])
  if len(ev['depths']) >= 2:
    deep, second = (ev['runs'][l] for l in ev['depths'][-1:-3:-1])
    # The deepest gains less than depth_gain_max over the second deepest, beyond noise.
    checks['little_gain_past_plateau'] = _exceeds(
        [a + c['depth_gain_max'] for a in _floats(second['test_accuracy'])],
        deep['test_accuracy'])
  else:
    checks['little_gain_past_plateau'] = None
  return checks


def _figure_003a(ev, study) -> list[str]:
  figs = []
  for key, logy in (('cdnv', True), ('nc2_etf', False), ('probe_accuracy', False)):
    curves = {l: _seed_means(ev['runs'][l][key]) for l in ev['depths']}
    deepest = max((len(v) for v in curves.values()), default=0)
    if not deepest:
      continue
    curves = {l: v + [np.nan] * (deepest - len(v)) for l, v in curves.items()}
    fig = f'003a_{key}_by_layer.png'
    plots.curves(study.file(fig), np.arange(1, deepest + 1), curves,
                 xlabel='layer (1 = first hidden)', logy=logy,
                 title=f'{key} by layer (train; seed means)')
    figs.append(fig)
  return figs


def _setting_003a(config) -> str:
  b = config.base
  groups = ([f'MLP with {d} hidden layers' if b.model == 'mlp' else f'{b.model} depth {d}'
             for d in config.depths] + list(config.depth_models))
  return (_base_text(config, depth=False) + f" Depths: {', '.join(groups)}. Linear probes "
          f'(L2 grid of {config.probe.l2_grid_size}) on every layer\'s frozen features, '
          f'{config.probe_examples:,} training / {config.probe_test_examples:,} test images.')


# ---------------------------------------------------------------------------
# 003b: label noise lifts the curves; memorization ratio > 1 only late.
# ---------------------------------------------------------------------------


def _rate_key(rate) -> str:
  return f'{float(rate):g}'


def _evidence_003b(study: reproduce.Study) -> dict[str, Any]:
  runs, layers = {}, []
  for rate in study.config.noise_rates:
    rs = study.where(kind='label_noise', label_noise=rate)
    g = _health(rs)
    for key in ('cdnv', 'cdnv_init', 'memorization_ratio', 'memorization_ratio_init'):
      g[key] = _curves(rs, key)
    g['summary'] = {k: _layer_summaries(g[k]) for k in ('cdnv', 'memorization_ratio',
                                                        'memorization_ratio_init')}
    layers = layers or (list(rs[0]['layers']) if rs else [])
    runs[_rate_key(rate)] = g
  ev = dict(rates=list(runs), layers=layers, runs=runs)
  ev['lifted_layers'] = _lifted(ev)
  ev['layers_above_1'] = {k: [layers[i] for i in _above_one(runs[k]['memorization_ratio'])]
                          for k in _noisy(ev)}
  return ev


def _noisy(ev) -> list[str]:
  return [k for k in ev['rates'] if float(k) > 0]


def _lifted(ev) -> list[bool | None]:
  """Per layer: CDNV rises with the noise rate, each step beyond 2 SE."""
  keys = sorted(ev['rates'], key=float)
  n = len(ev['layers'])
  return [_increasing([[c[i] for c in ev['runs'][k]['cdnv']] for k in keys])
          for i in range(n)]


def _gates_003b(ev, c) -> dict[str, reproduce.Gate]:
  groups = [ev['runs'][k] for k in ev['rates']]
  lowest = ev['runs'][min(ev['rates'], key=float)] if ev['rates'] else dict(cdnv=[])
  above = [len(_above_one(ev['runs'][k]['memorization_ratio'])) for k in _noisy(ev)]
  return dict(
      seeds=_gate_seeds(groups), **_gate_trained(groups, c),
      train_collapse=_gate_collapse(
          [lowest], c, about='seed-mean train CDNV of the last layer at the lowest noise rate'),
      some_layer_above_1=reproduce.at_least(
          max(above, default=0), 1, 'layers whose seed-mean memorization ratio exceeds 1 by '
          '> 2 SE (most over the noise rates > 0); else the location check is vacuous'))


def _checks_003b(ev, c) -> dict[str, bool | None]:
  lifted = _lifted(ev)
  if not lifted or any(v is None for v in lifted):
    frac_ok = None
  else:
    frac_ok = bool(sum(lifted) / len(lifted) >= c['lifted_fraction_min'])
  n = len(ev['layers'])
  above = [_above_one(ev['runs'][k]['memorization_ratio']) for k in _noisy(ev)]
  return dict(curves_lifted_with_noise=frac_ok,
              ratio_below_1_except_last_layers=bool(all(i >= n // 2 for a in above for i in a))
              if above else None)


def _figure_003b(ev, study) -> list[str]:
  n = len(ev['layers'])
  if not n:
    return []
  figs = ['003b_cdnv_by_layer.png', '003b_memorization_ratio.png']
  plots.curves(study.file(figs[0]), np.arange(1, n + 1),
               {f'noise {k}': _seed_means(ev['runs'][k]['cdnv']) for k in ev['rates']},
               xlabel='layer', logy=True, title='CDNV (noisy training labels) by layer')
  plots.curves(study.file(figs[1]), np.arange(1, n + 1),
               {f'noise {k}': _seed_means(ev['runs'][k]['memorization_ratio'])
                for k in _noisy(ev)}, xlabel='layer',
               title='memorization ratio: CDNV(clean labels) / CDNV(noisy labels)')
  return figs


def _setting_003b(config) -> str:
  return (_base_text(config) + f' Symmetric label noise at rates '
          f"{', '.join(f'{r:g}' for r in config.noise_rates)} on the training labels; CDNV "
          'of the training images against the noisy and the clean labels.')


# ---------------------------------------------------------------------------
# 003c: corrupted inputs: memorization ratio > 1 only late, more than label noise.
# ---------------------------------------------------------------------------


def _evidence_003c(study: reproduce.Study) -> dict[str, Any]:
  config = study.config
  runs, noise, layers = {}, {}, []
  for sev in config.severities:
    rs = study.where(kind='corruption', corruption=config.corruption, severity=sev)
    g = _health(rs)
    for key in ('cdnv', 'cdnv_train_clean', 'memorization_ratio', 'memorization_ratio_init'):
      g[key] = _curves(rs, key)
    g['summary'] = {k: _layer_summaries(g[k]) for k in ('cdnv', 'memorization_ratio',
                                                        'memorization_ratio_init')}
    layers = layers or (list(rs[0]['layers']) if rs else [])
    runs[str(sev)] = g
  for rate in config.noise_rates:
    if rate > 0:
      rs = study.where(kind='label_noise', label_noise=rate)
      g = _health(rs)
      g['memorization_ratio'] = _curves(rs, 'memorization_ratio')
      g['summary'] = dict(memorization_ratio=_layer_summaries(g['memorization_ratio']))
      noise[_rate_key(rate)] = g
  ev = dict(severities=list(runs), layers=layers, runs=runs, label_noise=noise)
  ev['layers_above_1'] = {k: [layers[i] for i in _above_one(g['memorization_ratio'])]
                          for k, g in runs.items()}
  ev['label_noise_layers_above_1'] = {
      k: [layers[i] for i in _above_one(g['memorization_ratio'])] for k, g in noise.items()}
  return ev


def _gates_003c(ev, c) -> dict[str, reproduce.Gate]:
  groups = [ev['runs'][k] for k in ev['severities']]
  noise = list(ev['label_noise'].values())
  above = [len(_above_one(g['memorization_ratio'])) for g in groups]
  return dict(
      seeds=_gate_seeds(groups + noise), **_gate_trained(groups + noise, c),
      train_collapse=_gate_collapse(
          groups, c, about='largest seed-mean train CDNV (corrupted images) of the last layer'),
      some_layer_above_1=reproduce.at_least(
          max(above, default=0), 1, 'layers whose seed-mean memorization ratio exceeds 1 by '
          '> 2 SE (most over the severities)'))


def _checks_003c(ev, c) -> dict[str, bool | None]:
  del c
  n = len(ev['layers'])
  above = [_above_one(ev['runs'][k]['memorization_ratio']) for k in ev['severities']]
  noise = [_above_one(g['memorization_ratio']) for g in ev['label_noise'].values()]
  return dict(
      above_1_only_in_last_layers=bool(all(i >= n // 2 for a in above for i in a))
      if above else None,
      more_layers_than_label_noise=bool(max(len(a) for a in above) > max(len(a) for a in noise))
      if above and noise else None)


def _figure_003c(ev, study) -> list[str]:
  n = len(ev['layers'])
  if not n:
    return []
  fig = '003c_memorization_ratio.png'
  curves = {f'severity {k}': _seed_means(ev['runs'][k]['memorization_ratio'])
            for k in ev['severities']}
  curves.update({f'label noise {k}': _seed_means(g['memorization_ratio'])
                 for k, g in ev['label_noise'].items()})
  plots.curves(study.file(fig), np.arange(1, n + 1), curves, xlabel='layer',
               title='memorization ratio: CDNV(clean) / CDNV(trained-on) (seed means)')
  return [fig]


def _setting_003c(config) -> str:
  sevs = '; '.join(_corruption_text(config.corruption, s) for s in config.severities)
  every = (' (these runs evaluate every training image, not a subset)'
           if config.base.eval_train_examples else '')
  return (_base_text(config) + f' Trained on corrupted inputs ({sevs}; data.corrupt, '
          'CIFAR-10-C-style levels); CDNV on the corrupted training images and on the same '
          f"images clean{every}; compared with 003b's label-noise runs.")


# ---------------------------------------------------------------------------
# 003d: domain shift.
# ---------------------------------------------------------------------------


def domain_replicates(runs: Mapping[str, Mapping[str, Any]], sources: Sequence[str]
                      ) -> dict[str, list]:
  """Per seed shared by every source: the across-source spread and the Spearman.

  A replicate is one model per source, all with the same seed. Its spread per
  layer is the std over sources of log target CDNV; its Spearman is that of
  (target CDNV, target probe accuracy) over every (source, layer).

  Returns:
    ``{"seeds", "spread_by_layer": [[per layer] per seed], "spread_first",
    "spread_last", "spearman"}`` (per-seed lists).
  """
  shared = [s for s in (runs[sources[0]]['seeds'] if sources else [])
            if all(s in runs[n]['seeds'] for n in sources)]
  out: dict[str, list] = dict(seeds=shared, spread_by_layer=[], spread_first=[],
                              spread_last=[], spearman=[])
  for s in shared:
    cdnv = np.array([_floats(runs[n]['target_cdnv'][runs[n]['seeds'].index(s)])
                     for n in sources])
    acc = np.array([_floats(runs[n]['target_probe_accuracy'][runs[n]['seeds'].index(s)])
                    for n in sources])
    with np.errstate(all='ignore'):
      sp = np.std(np.log(cdnv), axis=0)
    out['spread_by_layer'].append(sp.tolist())
    out['spread_first'].append(float(sp[0]))
    out['spread_last'].append(float(sp[-1]))
    out['spearman'].append(_float(spearman(cdnv.ravel(), acc.ravel())))
  return out


def _evidence_003d(study: reproduce.Study) -> dict[str, Any]:
  names = list(study.config.sources)
  runs, layers = {}, []
  for name in names:
    rs = study.where(kind='source', source=name)
    g = _health(rs)
    g['cdnv'] = _curves(rs, 'cdnv')
    g['target_cdnv'] = _curves(rs, 'cdnv_target')
    g['target_cdnv_init'] = _curves(rs, 'cdnv_target_init')
    g['target_probe_accuracy'] = _curves(rs, 'target_probe_accuracy')
    g['summary'] = {k: _layer_summaries(g[k]) for k in ('target_cdnv', 'target_cdnv_init',
                                                        'target_probe_accuracy')}
    layers = layers or (list(rs[0]['layers']) if rs else [])
    runs[name] = g
  rep = domain_replicates(runs, names)
  return dict(sources=names, layers=layers, runs=runs, replicate_seeds=rep['seeds'],
              spread_by_layer=rep['spread_by_layer'], spread_first=rep['spread_first'],
              spread_last=rep['spread_last'], spearman=rep['spearman'],
              summary=dict(spread_first=_summary(rep['spread_first']),
                           spread_last=_summary(rep['spread_last']),
                           spearman=_summary(rep['spearman']),
                           spread_by_layer=_layer_summaries(rep['spread_by_layer'])))


def _gates_003d(ev, c) -> dict[str, reproduce.Gate]:
  groups = [ev['runs'][n] for n in ev['sources']]
  return dict(
      seeds=reproduce.seeds_gate(len(ev['replicate_seeds'])), **_gate_trained(groups, c),
      train_collapse=_gate_collapse(
          groups, c, about='largest seed-mean train CDNV (source images) of the last layer'),
      target_collapse_vs_init=_gate_changed(
          [(_last(g['target_cdnv_init']), _last(g['target_cdnv'])) for g in groups],
          'z of last-layer target CDNV at initialisation minus trained (weakest source)'))


def _checks_003d(ev, c) -> dict[str, bool | None]:
  return dict(
      diverge_with_depth=_exceeds(ev['spread_last'], ev['spread_first'], paired=True),
      collapse_predicts_probe=_below(ev['spearman'], c['domain_rho_max']))


def _figure_003d(ev, study) -> list[str]:
  n = len(ev['layers'])
  if not n:
    return []
  names = ev['sources']
  figs = ['003d_target_cdnv.png', '003d_target_probe.png', '003d_cdnv_vs_probe.png']
  x = np.arange(1, n + 1)
  cdnv = {s: _seed_means(ev['runs'][s]['target_cdnv']) for s in names}
  acc = {s: _seed_means(ev['runs'][s]['target_probe_accuracy']) for s in names}
  plots.curves(study.file(figs[0]), x, cdnv, xlabel='layer', logy=True,
               title='CDNV on the target domain, by source (seed means)')
  plots.curves(study.file(figs[1]), x, acc, xlabel='layer',
               title='target linear-probe accuracy, by source (seed means)')
  plots.scatter(study.file(figs[2]), {s: (cdnv[s], acc[s]) for s in names},
                xlabel='target CDNV', ylabel='target probe accuracy', logx=True,
                title='every (source, layer), seed means')
  return figs


def _setting_003d(config) -> str:
  b, t = config.base, config.target
  sources = '; '.join(f'{n}: {_corruption_text(s.corruption, s.corruption_severity)}'
                      for n, s in config.sources.items())
  name = _DATA.get(config.domain_dataset, (config.domain_dataset,))[0]
  return (f'{_model_text(b.model, b.model_kwargs)} trained on '
          f'{_data_text(config.domain_dataset, b.train_examples_per_class)} from '
          f'{len(config.sources)} source domains that share the labels ({sources}); '
          f'{_training_text(config)}. Target: {name} test images, '
          f'{_corruption_text(t.corruption, t.corruption_severity)}: CDNV on '
          f'{config.probe_test_examples:,} target test images; linear probes trained on '
          f'{t.train_examples_per_class} target images per class, tested on {t.test_split}. '
          "The paper's Office-Home is not available offline.")


# ---------------------------------------------------------------------------
# The claims.
# ---------------------------------------------------------------------------

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
        constants=dict(_GATES, progressive_rho_max=-0.8, probe_rho_min=0.8,
                       depth_gain_max=0.02),
        evidence=_evidence_003a, gates=_gates_003a, checks=_checks_003a,
        setting=_setting_003a, figure=_figure_003a),
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
        constants=dict(_GATES, lifted_fraction_min=0.7),
        evidence=_evidence_003b, gates=_gates_003b, checks=_checks_003b,
        setting=_setting_003b, figure=_figure_003b),
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
        constants=dict(_GATES),
        evidence=_evidence_003c, gates=_gates_003c, checks=_checks_003c,
        setting=_setting_003c, figure=_figure_003c),
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
        constants=dict(_GATES, domain_rho_max=-0.5),
        evidence=_evidence_003d, gates=_gates_003d, checks=_checks_003d,
        setting=_setting_003d, figure=_figure_003d),
]
