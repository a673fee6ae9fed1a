"""Paper 003: "Generalization, Robustness and Adaptability of Progressive Neural
Collapse" — claims 003a-003d as one study.

Runs (``configs/papers/p003_progressive.py``), every one a trainer run
(`sweep.train`) that records, per layer, CDNV and NC2 on the training images
at the last epoch and at initialisation (epoch 0), read from the run's
records (`RunDir`), with its final train / test accuracy and train loss.
Each run is tagged; the claims select runs by their tags
(`reproduce.Study.where`), never by name. One run per seed of
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
checks (differences and trends through `spread`, so a difference counts only
beyond 2 SE of its seed noise). Thresholds are the claims' ``constants``,
fixed before the run; the criterion sentences are formatted from them; the
setting sentences are composed from `settings`.

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
from nc_jax import records
from nc_jax.data.transforms import CORRUPTION_LEVELS
from nc_jax.probes.correlation import spearman
from nc_jax.rundir import RunDir
from nc_jax.studies import reproduce
from nc_jax.studies import settings
from nc_jax.studies import spread
from nc_jax.studies import sweep
from nc_jax.studies.common import probe_layers
from nc_jax.train import input as input_lib

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


def _tracked_layers(run: RunDir) -> list[str]:
  """The tracked layers, input to output (no ``projection`` head)."""
  return [l for l in run.model_info['feature_dims'] if l != 'projection']


def _per_layer(run: RunDir, layers: Sequence[str], epoch: int | None, split: str,
               key: str = 'cdnv', labels: str = records.TASK) -> list[Any]:
  """``key`` of each layer's record of a split and label set at ``epoch`` (None: the last)."""
  if epoch is None:
    at = run.last(split, labels=labels)
  else:
    at = {r['layer']: r for r in run.eval(split=split, labels=labels) if r['epoch'] == epoch}
  return [at[l][key] for l in layers]


def _analysis(rdir: str, extra_splits: Sequence[str] = ()) -> dict[str, Any]:
  """Per-layer CDNV / NC2 at the last epoch and at initialisation (key suffix ``_init``).

  Also CDNV on ``extra_splits`` (``cdnv_<split>``) and the memorization ratio:
  CDNV against the clean labels over CDNV against the (noisy) training labels
  when the run evaluates the clean labels, else CDNV on ``train_clean`` (the
  training images without their corruption) over CDNV on the training images.
  """
  run = RunDir(rdir)
  layers = _tracked_layers(run)
  noisy = bool(run.eval(split='train', labels='clean'))
  out: dict[str, Any] = dict(layers=layers)
  for suffix, epoch in (('', None), ('_init', 0)):
    out['cdnv' + suffix] = _per_layer(run, layers, epoch, 'train')
    out['nc2_etf' + suffix] = _per_layer(run, layers, epoch, 'train', 'nc2_etf')
    if noisy:
      out['cdnv_clean_labels' + suffix] = _per_layer(run, layers, epoch, 'train',
                                                     labels='clean')
    for split in extra_splits:
      out[f'cdnv_{split}' + suffix] = _per_layer(run, layers, epoch, split)
    clean = out.get('cdnv_clean_labels' + suffix, out.get('cdnv_train_clean' + suffix))
    if clean is not None:
      out['memorization_ratio' + suffix] = [
          c / n for c, n in zip(clean, out['cdnv' + suffix])]
  return out


def _probe(config, rdir: str, tcfg, data=None) -> list[float]:
  """Linear-probe test accuracy of every layer's frozen features (layer order).

  ``data``: the probe's (train, test) data sets; None: a fixed random subset
  of ``config.probe_examples`` of the run's training images and its first
  ``config.probe_test_examples`` test images.
  """
  if data is None:
    tr, te = input_lib.load_data(tcfg)
    rng = np.random.default_rng(0)
    tr = tr.subset(np.sort(rng.choice(len(tr), min(len(tr), config.probe_examples), False)))
    data = tr, te.subset(np.arange(min(len(te), config.probe_test_examples)))
  layers = _tracked_layers(RunDir(rdir))
  res = probe_layers(rdir, *data, config.probe, layers=layers, seed=0,
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
                                            input_lib.load_data(config.target))
    return out

  return then


def _depth_groups(config) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
  """003a's groups, shallow to deep: ``{group: (config overrides, recorded overrides)}``.

  MLP depths, then named models of one family (ResNet-18/34/50).
  """
  groups = {f'depth{d}': ({'model_kwargs.depth': d}, dict(depth=d)) for d in config.depths}
  groups.update({f'depth_{m}': ({'model': m}, dict(model=m)) for m in config.depth_models})
  return groups


def _per_seed(config, name: str, execute, over: Mapping[str, Any],
              overrides: Mapping[str, Any], tags: Mapping[str, Any]) -> list[sweep.Run]:
  """``<name>_seed<s>`` for every seed: ``config.base`` with ``over`` and the seed."""
  return [sweep.Run(f'{name}_seed{s}', execute,
                    sweep.with_overrides(config.base, {**over, 'seed': s}), seed=s,
                    overrides=dict(overrides), tags=dict(tags)) for s in config.seeds]


def plan(config, workdir: str) -> list[sweep.Run]:
  del workdir
  b, t = config.base, config.target
  runs = []
  depth = sweep.train(keep=_KEEP, then=_then(config, probe=True))
  for group, (over, recorded) in _depth_groups(config).items():
    runs += _per_seed(config, group, depth, over, recorded,
                      {'kind': 'depth', 'group': group, 'model': b.model, **recorded})
  noise = sweep.train(keep=_KEEP, then=_then(config))
  for rate in config.noise_rates:
    runs += _per_seed(config, f'noise{rate:g}', noise,
                      dict(label_noise=rate, eval_label_sets=('clean',)),
                      dict(label_noise=rate),
                      dict(kind='label_noise', label_noise=rate, model=b.model))
  corrupt = sweep.train(keep=_KEEP, then=_then(config, extra_splits=('train_clean',)))
  for sev in config.severities:
    # Every training image, corrupted and clean: both CDNVs read the same images.
    runs += _per_seed(config, f'corrupt{sev}', corrupt,
                      dict(corruption=config.corruption, corruption_severity=sev,
                           eval_train_examples=0,
                           eval_sets=dict(train_clean=dict(like_train=True))),
                      dict(corruption=config.corruption, severity=sev),
                      dict(kind='corruption', corruption=config.corruption, severity=sev))
  source = sweep.train(keep=_KEEP, then=_then(config, target=True, extra_splits=('target',)))
  target = dict(dataset=config.domain_dataset, split='test', corruption=t.corruption,
                severity=t.corruption_severity, examples=config.probe_test_examples)
  for name, src in config.sources.items():
    runs += _per_seed(config, f'source_{name}', source,
                      dict(dataset=config.domain_dataset, **src.to_dict(),
                           eval_sets=dict(target=target)),
                      src.to_dict(),
                      dict(kind='source', source=name, corruption=src.corruption,
                           severity=src.corruption_severity))
  return runs


# ---------------------------------------------------------------------------
# Evidence helpers: per-seed values, their spread, noise-aware comparisons.
# ---------------------------------------------------------------------------


def _group(results: Sequence[sweep.Result], keys: Sequence[str] = (),
           summarized: Sequence[str] = (), rename: Mapping[str, str] | None = None
           ) -> dict[str, Any]:
  """The runs of one group, per seed: seeds, final train / test accuracy and
  train loss, the recorded ``keys`` (under ``rename``'s names) and
  ``summary``: the per-layer `_summary` of the ``summarized`` curves."""
  rename = rename or {}
  g = dict(seeds=[r.seed for r in results])
  g.update({rename.get(k, k): [r[k] for r in results] for k in _KEEP + tuple(keys)})
  if summarized:
    g['summary'] = {k: _layer_summaries(g[k]) for k in summarized}
  return g


def _recorded_layers(study: reproduce.Study, kind: str) -> list[str]:
  """The tracked layers of the first finished run of ``kind`` ([] if none)."""
  rs = study.where(kind=kind)
  return list(rs[0]['layers']) if rs else []


def _summary(values) -> dict[str, float | int] | None:
  """`spread.summary` of per-seed values; None unless every one is finite."""
  return spread.summary(values) if spread.finite(values) else None


def _layer_summaries(curves) -> list:
  """Per-layer `_summary` of per-seed curves ``[[per layer] per seed]``."""
  return [_summary(col) for col in zip(*curves)]


def _last(curves) -> list:
  """The last layer's value of each seed's curve."""
  return [c[-1] for c in curves if len(c)]


def _log_fall(curve) -> float:
  """log(first layer / last layer) of a CDNV curve (NaN unless both positive)."""
  c = np.asarray(curve, float)
  if len(c) < 2 or not (np.isfinite(c).all() and c[0] > 0 and c[-1] > 0):
    return float('nan')
  return math.log(c[0] / c[-1])


def _rank(curve) -> float:
  """Spearman(layer index, values) of one curve (NaN under 3 layers)."""
  c = np.asarray(curve, float)
  return float(spearman(np.arange(len(c)), c)) if len(c) >= 3 else float('nan')


def _above_one(curves) -> list[int]:
  """Layer indices whose seed-mean ratio exceeds 1 by more than 2 SE."""
  n = min((len(c) for c in curves), default=0)
  return [i for i in range(n) if spread.exceeds([c[i] for c in curves], 1.0) is True]


def _late(above: Sequence[Sequence[int]], n: int) -> bool | None:
  """Every layer index of ``above`` in the second half of ``n`` layers (None: no groups)."""
  return all(i >= n // 2 for a in above for i in a) if above else None


def _seed_means(curves) -> list[float]:
  """Per-layer seed means of ``[[per layer] per seed]`` (NaN-aware, ragged curves)."""
  if not curves:
    return []
  m = np.full((len(curves), max(len(c) for c in curves)), np.nan)
  for i, c in enumerate(curves):
    m[i, :len(c)] = np.asarray(c, float)
  with warnings.catch_warnings():  # An all-NaN layer (a shallower depth) stays NaN.
    warnings.simplefilter('ignore', RuntimeWarning)
    return np.nanmean(m, 0).tolist()


# ---------------------------------------------------------------------------
# Gates.
# ---------------------------------------------------------------------------


def _gate_runs(groups: Sequence[Mapping[str, Any]], c, seeds: int | None = None
               ) -> dict[str, reproduce.Gate]:
  """Enough seeds (default: the fewest of a group); every run read trained:
  fits its training labels, beats chance, ends with a finite loss."""
  every = lambda key: [x for g in groups for x in g[key]]
  low = lambda xs: min(xs) if spread.finite(xs) else None
  if seeds is None:
    seeds = min((len(g['seeds']) for g in groups), default=0)
  return dict(
      seeds=reproduce.seeds_gate(seeds),
      runs_trained=reproduce.at_least(
          low(every('train_accuracy')), c['train_acc_min'],
          'smallest final train accuracy of the runs read'),
      runs_generalize=reproduce.at_least(
          low(every('test_accuracy')), c['test_acc_min'],
          'smallest test accuracy of the runs read (chance 0.1)'),
      finite_loss=reproduce.finite_gate(
          every('train_loss'), 'runs with a non-finite final train loss (divergence)'))


def _gate_collapse(groups: Sequence[Mapping[str, Any]], c,
                   about: str = 'largest seed-mean train CDNV of the last layer'
                   ) -> reproduce.Gate:
  """Collapse happened: the largest seed-mean last-layer train CDNV over ``groups``."""
  means = [spread.quantity(_last(g['cdnv']))['mean'] for g in groups]
  return reproduce.at_most(max(means) if means and None not in means else None,
                           c['cdnv_collapse_max'], about)


def _gate_changed(pairs: Sequence[tuple[Any, Any]], about: str) -> reproduce.Gate:
  """The weakest `reproduce.changed_gate(after, before)` over ``pairs``; not
  measured (value None: it fails) when a pair is not measurable or there is none."""
  gates = [reproduce.changed_gate(after, before, about) for after, before in pairs]
  if not gates or any(math.isnan(g.value) for g in gates):
    return reproduce.Gate(None, spread.Z, '>', about)
  return min(gates, key=lambda g: g.value)


def _gate_above_one(counts: Sequence[int], most_over: str) -> reproduce.Gate:
  """Some layer's ratio exceeds 1 (``counts``: `_above_one`'s per group), else
  the check of where such layers lie is vacuous."""
  return reproduce.at_least(max(counts, default=0), 1, 'layers whose seed-mean '
                            f'memorization ratio exceeds 1 by > 2 SE {most_over}')


# ---------------------------------------------------------------------------
# The setting, composed from `settings` and the variant's config.
# ---------------------------------------------------------------------------


def _corruption_text(kind: str, severity: int) -> str:
  """'Gaussian noise (std 0.08 on [0, 1] pixels), severity 3', or 'clean'."""
  if not kind or not severity:
    return 'clean'
  level = CORRUPTION_LEVELS.get(kind, (None,) * 5)[severity - 1]
  what = {'gaussian_noise': f'Gaussian noise (std {level:g} on [0, 1] pixels)',
          'gaussian_blur': f'Gaussian blur (sigma {level:g} px)'}.get(kind, kind)
  return f'{what}, severity {severity}'


def _ran(config, t, model: str | None = None) -> str:
  """What a claim's runs share: ``model`` (default `settings.model`) trained
  as ``t`` says, the seeds, and what every run measures."""
  evaluated = (f'a fixed random subset of {t.eval_train_examples:,} training images'
               if t.eval_train_examples else 'the training images')
  text = (f'{model or settings.model(t)} on {settings.data(t)}; {settings.optimizer(t)}; '
          f'{settings.augmentation(t)}; {settings.seeds(config.seeds)} per group; CDNV and '
          f'NC2 of every tracked layer on {evaluated} at the last epoch and at '
          'initialisation.')
  if t.model == 'mlp':
    text += ' Each hidden layer plays the role of a block (the paper: ResNet blocks).'
  return text


# ---------------------------------------------------------------------------
# 003a: progressive collapse through the layers, over a depth sweep.
# ---------------------------------------------------------------------------


def _evidence_003a(study: reproduce.Study) -> dict[str, Any]:
  runs = {}
  for label in _depth_groups(study.config):
    rs = study.where(kind='depth', group=label)
    g = _group(rs, ('layers', 'cdnv', 'nc2_etf', 'probe_accuracy', 'cdnv_init',
                    'nc2_etf_init'))
    g['layers'] = list(g['layers'][0]) if rs else []  # The same for every seed.
    for key, curves in (('spearman_cdnv', 'cdnv'), ('spearman_nc2', 'nc2_etf'),
                        ('spearman_probe', 'probe_accuracy')):
      g[key] = [_rank(c) for c in g[curves]]
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
      **_gate_runs(groups, c), train_collapse=_gate_collapse(groups, c),
      cdnv_fall_vs_init=_gate_changed(
          [(g['log_cdnv_fall'], g['log_cdnv_fall_init']) for g in groups],
          'z of log(CDNV first / last layer), trained vs at initialisation (weakest depth)'))


def _checks_003a(ev, c) -> dict[str, bool | None]:
  checks = {}
  for label in ev['depths']:
    g = ev['runs'][label]
    checks[f'{label}_progressive_cdnv'] = spread.below(g['spearman_cdnv'],
                                                       c['progressive_rho_max'])
    checks[f'{label}_probe_rises'] = spread.exceeds(g['spearman_probe'], c['probe_rho_min'])
  checks['little_gain_past_plateau'] = None
  if len(ev['depths']) >= 2:
    deep, second = (ev['runs'][l]['test_accuracy'] for l in ev['depths'][-1:-3:-1])
    # The deepest gains less than depth_gain_max over the second deepest, beyond noise.
    checks['little_gain_past_plateau'] = spread.exceeds(
        np.asarray(second, float) + c['depth_gain_max'], deep)
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
  models = [settings.model(sweep.with_overrides(config.base, over))
            for over, _ in _depth_groups(config).values()]
  return (_ran(config, config.base, ', '.join(models)) + ' Linear probes (L2 grid of '
          f"{config.probe.l2_grid_size}) on every layer's frozen features, "
          f'{config.probe_examples:,} training / {config.probe_test_examples:,} test images.')


# ---------------------------------------------------------------------------
# 003b: label noise lifts the curves; memorization ratio > 1 only late.
# ---------------------------------------------------------------------------


def _rate_key(rate) -> str:
  return f'{float(rate):g}'


def _evidence_003b(study: reproduce.Study) -> dict[str, Any]:
  runs = {_rate_key(rate): _group(
      study.where(kind='label_noise', label_noise=rate),
      ('cdnv', 'cdnv_init', 'memorization_ratio', 'memorization_ratio_init'),
      summarized=('cdnv', 'memorization_ratio', 'memorization_ratio_init'))
      for rate in study.config.noise_rates}
  layers = _recorded_layers(study, 'label_noise')
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
  return [spread.increasing([[c[i] for c in ev['runs'][k]['cdnv']] for k in keys])
          for i in range(len(ev['layers']))]


def _gates_003b(ev, c) -> dict[str, reproduce.Gate]:
  groups = [ev['runs'][k] for k in ev['rates']]
  lowest = ev['runs'][min(ev['rates'], key=float)] if ev['rates'] else dict(cdnv=[])
  return dict(
      **_gate_runs(groups, c),
      train_collapse=_gate_collapse(
          [lowest], c, 'seed-mean train CDNV of the last layer at the lowest noise rate'),
      some_layer_above_1=_gate_above_one(
          [len(_above_one(ev['runs'][k]['memorization_ratio'])) for k in _noisy(ev)],
          '(most over the noise rates > 0); else the location check is vacuous'))


def _checks_003b(ev, c) -> dict[str, bool | None]:
  lifted = _lifted(ev)
  fraction_ok = (None if not lifted or None in lifted
                 else sum(lifted) / len(lifted) >= c['lifted_fraction_min'])
  above = [_above_one(ev['runs'][k]['memorization_ratio']) for k in _noisy(ev)]
  return dict(curves_lifted_with_noise=fraction_ok,
              ratio_below_1_except_last_layers=_late(above, len(ev['layers'])))


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
  return (_ran(config, config.base) + ' Symmetric label noise on the training labels, '
          f"{settings.grid({'rate': config.noise_rates})}; CDNV of the training images "
          'against the noisy and the clean labels.')


# ---------------------------------------------------------------------------
# 003c: corrupted inputs: memorization ratio > 1 only late, more than label noise.
# ---------------------------------------------------------------------------


def _evidence_003c(study: reproduce.Study) -> dict[str, Any]:
  config = study.config
  runs = {str(sev): _group(
      study.where(kind='corruption', corruption=config.corruption, severity=sev),
      ('cdnv', 'cdnv_train_clean', 'memorization_ratio', 'memorization_ratio_init'),
      summarized=('cdnv', 'memorization_ratio', 'memorization_ratio_init'))
      for sev in config.severities}
  noise = {_rate_key(rate): _group(study.where(kind='label_noise', label_noise=rate),
                                   ('memorization_ratio',), summarized=('memorization_ratio',))
           for rate in config.noise_rates if rate > 0}
  layers = _recorded_layers(study, 'corruption')
  above = lambda groups: {k: [layers[i] for i in _above_one(g['memorization_ratio'])]
                          for k, g in groups.items()}
  return dict(severities=list(runs), layers=layers, runs=runs, label_noise=noise,
              layers_above_1=above(runs), label_noise_layers_above_1=above(noise))


def _gates_003c(ev, c) -> dict[str, reproduce.Gate]:
  groups = [ev['runs'][k] for k in ev['severities']]
  return dict(
      **_gate_runs(groups + list(ev['label_noise'].values()), c),
      train_collapse=_gate_collapse(
          groups, c, 'largest seed-mean train CDNV (corrupted images) of the last layer'),
      some_layer_above_1=_gate_above_one(
          [len(_above_one(g['memorization_ratio'])) for g in groups],
          '(most over the severities)'))


def _checks_003c(ev, c) -> dict[str, bool | None]:
  del c
  above = [_above_one(ev['runs'][k]['memorization_ratio']) for k in ev['severities']]
  noise = [_above_one(g['memorization_ratio']) for g in ev['label_noise'].values()]
  return dict(
      above_1_only_in_last_layers=_late(above, len(ev['layers'])),
      more_layers_than_label_noise=max(map(len, above)) > max(map(len, noise))
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
  return (_ran(config, config.base) + f' Trained on corrupted inputs ({sevs}; data.corrupt, '
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
    at = lambda key: np.asarray([runs[n][key][runs[n]['seeds'].index(s)] for n in sources],
                                float)
    cdnv, acc = at('target_cdnv'), at('target_probe_accuracy')
    with np.errstate(all='ignore'):
      sp = np.std(np.log(cdnv), axis=0)
    out['spread_by_layer'].append(sp.tolist())
    out['spread_first'].append(float(sp[0]))
    out['spread_last'].append(float(sp[-1]))
    out['spearman'].append(float(spearman(cdnv.ravel(), acc.ravel())))
  return out


def _evidence_003d(study: reproduce.Study) -> dict[str, Any]:
  names = list(study.config.sources)
  runs = {name: _group(
      study.where(kind='source', source=name),
      ('cdnv', 'cdnv_target', 'cdnv_target_init', 'target_probe_accuracy'),
      summarized=('target_cdnv', 'target_cdnv_init', 'target_probe_accuracy'),
      rename=dict(cdnv_target='target_cdnv', cdnv_target_init='target_cdnv_init'))
      for name in names}
  rep = domain_replicates(runs, names)
  return dict(sources=names, layers=_recorded_layers(study, 'source'), runs=runs,
              replicate_seeds=rep['seeds'], spread_by_layer=rep['spread_by_layer'],
              spread_first=rep['spread_first'], spread_last=rep['spread_last'],
              spearman=rep['spearman'],
              summary=dict(spread_first=_summary(rep['spread_first']),
                           spread_last=_summary(rep['spread_last']),
                           spearman=_summary(rep['spearman']),
                           spread_by_layer=_layer_summaries(rep['spread_by_layer'])))


def _gates_003d(ev, c) -> dict[str, reproduce.Gate]:
  groups = [ev['runs'][n] for n in ev['sources']]
  return dict(
      **_gate_runs(groups, c, seeds=len(ev['replicate_seeds'])),
      train_collapse=_gate_collapse(
          groups, c, 'largest seed-mean train CDNV (source images) of the last layer'),
      target_collapse_vs_init=_gate_changed(
          [(_last(g['target_cdnv_init']), _last(g['target_cdnv'])) for g in groups],
          'z of last-layer target CDNV at initialisation minus trained (weakest source)'))


def _checks_003d(ev, c) -> dict[str, bool | None]:
  return dict(
      diverge_with_depth=spread.exceeds(ev['spread_last'], ev['spread_first'], paired=True),
      collapse_predicts_probe=spread.below(ev['spearman'], c['domain_rho_max']))


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
  t = config.target
  sources = '; '.join(f'{n}: {_corruption_text(s.corruption, s.corruption_severity)}'
                      for n, s in config.sources.items())
  name = settings.DATA_NAMES.get(config.domain_dataset, config.domain_dataset)
  return (_ran(config, sweep.with_overrides(config.base, {'dataset': config.domain_dataset}))
          + f' Trained on {len(config.sources)} source domains that share the labels '
          f'({sources}). Target: {name} test images, '
          f'{_corruption_text(t.corruption, t.corruption_severity)}: CDNV on '
          f'{config.probe_test_examples:,} target test images; linear probes trained on '
          f'{t.train_examples_per_class} target images per class, tested on '
          f"{settings.test_data(t)}. The paper's Office-Home is not available offline.")


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
