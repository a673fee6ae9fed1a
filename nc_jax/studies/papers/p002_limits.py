"""Paper 002: "Limitations of Neural Collapse for Understanding Generalization in
Deep Learning" (Hui, Belkin, Nakkiran) — claims 002a-002d as one study.

Runs (``configs/papers/p002_limits.py``), selected by their tags:

- ``kind='cascade'`` (002a, 002d; one run per seed of ``cascade_seeds``):
  the paper's 3 x 1024 MLP on 1,000 MNIST images, checkpointed along
  training from initialisation; afterwards, at every checkpoint, the train
  variance with the current class means and with the final model's means
  (the paper's definition), the strong test variance and the weak test
  variance (k-means on the test features), at every hidden layer.
- ``kind='size', train_size=n`` (002b; ``size_seeds`` per size): one run
  per train-set size, each stopped when its training loss falls below
  ``stop_at_train_loss``.
- ``kind='pretrain', group=g`` then ``kind='finetune', group=g,
  init_epoch=e, learning_rate=lr`` (002c; one chain per seed of the group's
  ``seeds``): pretraining on MNIST parity labels, then every checkpoint
  fine-tuned (all layers, a new 10-class head) on 500 new images for each
  learning rate of a sweep, with the pretraining's seed; the learning rate is
  chosen on 100 held-out validation images, and the test accuracy of that
  choice is set against the checkpoint's train variance.

Train variance (SPEC.md ``train_variance`` = ``squared_distance`` on train
features) is measured with the current model's class means (what the trainer
records) and, as paper 002 sec 3.1 defines it, with the class means of the
final model: E||h_t(x) - mu_y(T)||^2 / E_i||mu_i(T) - mu(T)||^2. Each figure
says which it uses.

Each claim is a `reproduce.ClaimSpec` (`CLAIMS`): evidence read through the
runs' tags, gates (every run trained, the train collapse the paper's claims
presuppose happened, >= 3 seeds, the fall measured against the untrained
network), checks (every comparison between seed groups through
`spread.exceeds`), a criterion written over the same constants. The check
thresholds (``gap_min`` ... ``transfer_rho_min``) were fixed before the first
run; the gates' thresholds (`TRAIN_ACCURACY_MIN`, `TEST_ACCURACY_MIN`,
`COLLAPSE_MAX`) before the first run under gates.

References: paper 002 secs 3-5, Figs 2-6; SPEC.md lines 50-52.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import numpy as np

from nc_jax import metrics
from nc_jax import plots
from nc_jax.probes.correlation import spearman
from nc_jax.studies import reproduce
from nc_jax.studies import spread
from nc_jax.studies import sweep
from nc_jax.studies.common import features_at, say
from nc_jax.train import checkpoints
from nc_jax.train import input as input_lib
from nc_jax.workdir import Workdir

PAPER = '002'
TITLE = 'Limitations of Neural Collapse for Understanding Generalization in Deep Learning'

# Gates: what every claim's runs must show before its checks are read.
TRAIN_ACCURACY_MIN = 0.99  # Every run fitted its training set (the terminal phase).
TEST_ACCURACY_MIN = 0.5  # Every 10-class run learned (chance 0.1): not a broken run.
COLLAPSE_MAX = 0.1  # Train collapse happened: the last hidden layer's train
# variance (within-class over between-class spread) at most this.

# The study's thresholds (fixed before the first run; never tuned afterwards).
CRITERIA = dict(
    gap_min=5.0,          # 002a: final test variances exceed this x final train variance.
    train_fall_max=0.5,   # 002a: this x TV(T/2) exceeds TV(T): train collapse continues.
    test_level_min=0.7,   # 002a: strong test variance(T) exceeds this x its value at T/2.
    size_rho_min=0.8,     # 002b: |Spearman(size, variance)| of the seed means.
    transfer_rho_min=0.5,  # 002c: Spearman(checkpoint TV, fine-tuned accuracy).
    half=0.5,             # 002d: a layer's variance falls below this x its initial value.
)

_GATES = dict(train_accuracy_min=TRAIN_ACCURACY_MIN, test_accuracy_min=TEST_ACCURACY_MIN,
              collapse_max=COLLAPSE_MAX, min_seeds=spread.MIN_SEEDS, z=spread.Z)


def final_means_variance(h_t: np.ndarray, h_final: np.ndarray, labels: np.ndarray,
                         num_classes: int) -> float:
  """Paper 002's TrainVariance(t): E||h_t - mu_y(T)||^2 / E_i||mu_i(T) - mu(T)||^2.

  The class means mu(T) are the final model's, computed in float64;
  `metrics.variance_to_means` then runs in float64 too. Its averages weight
  the classes equally, which on balanced classes (the study's) is the
  paper's sample average.
  """
  h_t, h_final = np.asarray(h_t, np.float64), np.asarray(h_final, np.float64)
  labels = np.asarray(labels)
  mu = np.stack([h_final[labels == k].mean(0) for k in range(num_classes)])
  with jax.enable_x64(True):
    return float(metrics.variance_to_means(h_t, labels, mu, num_classes=num_classes))


# ---------------------------------------------------------------------------
# Runs.
# ---------------------------------------------------------------------------


def _cascade_analysis(config):
  """After training: the variances at every checkpoint and hidden layer."""

  def analysis(run: sweep.Run, rdir: str) -> dict[str, Any]:
    tcfg = run.config
    train_ds, test_ds = input_lib.load_data(tcfg)
    sets = input_lib.eval_sets(tcfg, train_ds, test_ds)
    tr, te = sets['train'], sets['test']
    k = tr.num_classes
    layers = config.cascade_layers
    epochs = sorted(checkpoints.epochs(rdir))
    feats = {e: features_at(rdir, e, {'train': tr, 'test': te}, layers=layers,
                            batch_size=tcfg.eval_batch_size) for e in epochs}
    last = epochs[-1]
    out: dict[str, Any] = {'epochs': epochs}
    for layer in layers:
      out[f'train_variance_final_means_{layer}'] = [
          final_means_variance(feats[e]['train'][layer], feats[last]['train'][layer],
                               tr.labels, k) for e in epochs]
      out[f'train_variance_{layer}'] = [
          float(metrics.train_variance(feats[e]['train'][layer], tr.labels, num_classes=k))
          for e in epochs]
    pen = 'penultimate'
    out['strong_test_variance'] = [
        float(metrics.strong_test_variance(feats[e]['test'][pen], te.labels, num_classes=k))
        for e in epochs]
    out['weak_test_variance'] = [
        float(metrics.weak_test_variance(feats[e]['test'][pen], num_clusters=k,
                                         key=tcfg.seed, num_restarts=config.kmeans_restarts))
        for e in epochs]
    say(f"{run.name}: TV {out['train_variance_penultimate'][-1]:.3g}, strong "
        f"{out['strong_test_variance'][-1]:.3g}, weak {out['weak_test_variance'][-1]:.3g}")
    return out

  return analysis


def _final_running_loss(run: sweep.Run, rdir: str) -> dict[str, Any]:
  fits = [r for r in Workdir(rdir).read_metrics() if 'running_loss' in r]
  return dict(final_running_loss=fits[-1]['running_loss'] if fits else None)


def _pretrain_analysis(group):
  """After pretraining: the train variance (current means) at every checkpoint."""

  def analysis(run: sweep.Run, rdir: str) -> dict[str, Any]:
    tcfg = run.config
    tr, _ = input_lib.load_data(tcfg)
    tv = []
    for e in group.epochs:
      h = features_at(rdir, e, {'train': tr}, batch_size=tcfg.eval_batch_size)['train']
      tv.append(float(metrics.train_variance(h['penultimate'], tr.labels,
                                             num_classes=tr.num_classes)))
    return dict(checkpoint_epochs=list(group.epochs), checkpoint_train_variance=tv)

  return analysis


def _tolerating_divergence(execute):
  """A learning rate of the sweep that diverges is a result, not a crash of the study."""

  def run(run: sweep.Run, rdir: str) -> dict[str, Any]:
    try:
      return dict(execute(run, rdir))
    except FloatingPointError as err:
      say(f'{run.name}: {err}')
      return dict(diverged=True, val_accuracy=None, test_accuracy=None, train_accuracy=None)

  return run


_ACCURACIES = ('train_accuracy', 'test_accuracy')
_SIZE_KEYS = _ACCURACIES + ('train_squared_distance', 'test_squared_distance', 'epoch',
                            'stopped_at_train_loss')
_FINETUNE = _tolerating_divergence(sweep.train(
    keep=('val_accuracy',) + _ACCURACIES, then=lambda run, rdir: dict(diverged=False)))


def plan(config, workdir: str) -> list[sweep.Run]:
  runs = []
  cascade = sweep.train(keep=_ACCURACIES + ('train_loss', 'terminal_phase_epoch'),
                        then=_cascade_analysis(config))
  for seed in config.cascade_seeds:
    runs.append(sweep.Run(f'cascade_seed{seed}', cascade,
                          sweep.with_overrides(config.cascade, dict(seed=seed)), seed=seed,
                          tags=dict(kind='cascade', model=config.cascade.model,
                                    dataset=config.cascade.dataset)))
  size = sweep.train(keep=_SIZE_KEYS, then=_final_running_loss)
  for n in config.sizes:
    for seed in config.size_seeds:
      over = dict(train_examples_per_class=n // 10, seed=seed)
      runs.append(sweep.Run(f'size{n}_seed{seed}', size,
                            sweep.with_overrides(config.size, over), seed=seed,
                            overrides=dict(train_size=n),
                            tags=dict(kind='size', train_size=n, model=config.size.model,
                                      dataset=config.size.dataset)))
  for group, g in config.transfer.items():
    pretrain = sweep.train(keep=_ACCURACIES + ('train_loss',), then=_pretrain_analysis(g))
    for seed in g.seeds:
      # One chain keeps the names it had before pretraining seeds existed.
      suffix = '' if len(g.seeds) == 1 else f'_seed{seed}'
      pre = f'{group}_pretrain{suffix}'
      runs.append(sweep.Run(pre, pretrain, sweep.with_overrides(g.pretrain, dict(seed=seed)),
                            seed=seed, tags=dict(kind='pretrain', group=group)))
      pdir = os.path.abspath(sweep.run_dir(workdir, pre))
      for e in g.epochs:
        for lr in g.lrs:
          over = dict(init_from=pdir, init_epoch=e, learning_rate=lr, seed=seed)
          runs.append(sweep.Run(
              f'{group}_finetune{suffix}_e{e}_lr{lr:g}', _FINETUNE,
              sweep.with_overrides(g.finetune, over), seed=seed,
              overrides=dict(init_epoch=e, learning_rate=lr), deps=(pre,),
              tags=dict(kind='finetune', group=group, init_epoch=e, learning_rate=lr)))
  return runs


# ---------------------------------------------------------------------------
# Numbers, spread and gates shared by the claims.
# ---------------------------------------------------------------------------


def _num(v) -> float | None:
  """A recorded number as a float (NaN/inf are recorded as strings); None stays None."""
  return None if v is None else float(v)


def _finite(values: Sequence[Any]) -> bool:
  return all(v is not None and math.isfinite(float(v)) for v in values)


def _q(values: Sequence[Any]) -> dict[str, Any]:
  """Per-seed values with their `spread.summary` (mean, se, n); None where not finite."""
  vals = [_num(v) for v in values]
  if vals and _finite(vals):
    return dict(values=vals, **spread.summary(vals))
  return dict(values=vals, mean=None, se=None, n=len(vals))


def _vals(q: Mapping[str, Any]) -> list[float | None]:
  return list(q['values'])


def _exceeds(a: Sequence[Any], b: Sequence[Any] | float, *, paired: bool = False
             ) -> bool | None:
  """`spread.exceeds`, None when a side is empty or holds a missing / non-finite value."""
  bs = [b] if np.ndim(b) == 0 else list(b)
  if not a or not bs or not _finite(list(a)) or not _finite(bs):
    return None
  if paired and len(a) != len(bs):
    return None
  return spread.exceeds([float(x) for x in a],
                        float(b) if np.ndim(b) == 0 else [float(x) for x in bs],
                        paired=paired)


def _scaled(values: Sequence[Any], factor: float) -> list[float | None]:
  return [None if v is None else factor * float(v) for v in values]


def _all(checks: Sequence[bool | None]) -> bool | None:
  """Every step holds: False if one fails, None if one cannot be told."""
  if any(c is False for c in checks):
    return False
  return None if not checks or any(c is None for c in checks) else True


def _extreme(values: Sequence[Any], fn) -> float | None:
  """min / max of the values; None (the gate is not measured) if empty or not finite."""
  return float(fn(float(v) for v in values)) if values and _finite(values) else None


def _gate_seeds(qs: Sequence[Mapping[str, Any]]) -> reproduce.Gate:
  return reproduce.seeds_gate(min((q['n'] for q in qs), default=0))


def _gate_fitted(values, c, what='run') -> reproduce.Gate:
  return reproduce.at_least(_extreme(values, min), c['train_accuracy_min'],
                            f'smallest final train accuracy of the {what}s read')


def _gate_learned(values, c, what='run') -> reproduce.Gate:
  return reproduce.at_least(_extreme(values, min), c['test_accuracy_min'],
                            f'smallest final test accuracy of the {what}s read (chance 0.1)')


def _gate_finite(qs: Sequence[Mapping[str, Any]]) -> reproduce.Gate:
  bad = sum(1 for q in qs for v in q['values'] if not _finite([v]))
  return reproduce.at_most(bad, 0, 'compared numbers that are missing, NaN or inf')


def _gate_collapse(values, c, about: str) -> reproduce.Gate:
  return reproduce.at_most(_extreme(values, max), c['collapse_max'], about)


def _gate_fell(init: Mapping[str, Any], end: Mapping[str, Any], about: str) -> reproduce.Gate:
  """The value at initialisation exceeds the trained one beyond its noise."""
  if not init['values'] or not _finite(init['values']) or not _finite(end['values']):
    return reproduce.Gate(None, spread.Z, '>', about)
  return reproduce.changed_gate(init['values'], end['values'], about)


# ---------------------------------------------------------------------------
# Settings, computed from the variant's config.
# ---------------------------------------------------------------------------

_DATA = {'mnist': 'MNIST', 'fashion_mnist': 'Fashion-MNIST', 'cifar10': 'CIFAR-10'}
_SLICE = re.compile(r'^(?P<split>\w+)\[(?P<start>\d*):(?P<stop>\d*)\]$')


def _slice(split: str) -> tuple[int, int] | None:
  m = _SLICE.match(split)
  if not m or not m['stop']:
    return None
  return int(m['start'] or 0), int(m['stop'])


def _split_text(split: str, what: str) -> str:
  s = _slice(split)
  if s is None:
    return f'the {what} split'
  start, stop = s
  return (f'the first {stop:,} {what} images' if start == 0 else
          f'{stop - start:,} {what} images (indices {start:,}-{stop - 1:,})')


def _model_text(t) -> str:
  kw = t.model_kwargs
  if t.model == 'mlp':
    norm = kw.get('norm', '') or 'no normalisation'
    return f"MLP {kw.get('depth')} x {kw.get('width')} (ReLU, {norm})"
  return f"{t.model} (width {kw.get('width')})"


def _train_images(t) -> str:
  data = _DATA.get(t.dataset, t.dataset)
  labels = f', labels {t.label_map!r}' if t.label_map else ''
  if t.train_examples_per_class:
    where = '' if _slice(t.train_split) is None else f' of {_split_text(t.train_split, "training")}'
    return f'{data}, {t.train_examples_per_class:,} training images per class{where}{labels}'
  return f'{data}, {_split_text(t.train_split, "training")}{labels}'


def _n_train(t) -> int | None:
  if t.train_examples_per_class and not t.label_map:
    return t.train_examples_per_class * 10  # MNIST, Fashion-MNIST: 10 classes.
  s = _slice(t.train_split)
  return None if t.train_examples_per_class or s is None else s[1] - s[0]


def _optim_text(t) -> str:
  opt = (f'SGD momentum {t.momentum:g}' if t.optimizer == 'sgd' else t.optimizer)
  n = _n_train(t)
  its = f' = {(n // t.batch_size) * t.num_epochs:,} iterations' if n else ''
  stop = (f', stopped after the first epoch whose running training loss is below '
          f'{t.stop_at_train_loss:g} (at most {t.num_epochs:,} epochs)'
          if t.stop_at_train_loss else f', {t.num_epochs:,} epochs{its}')
  return (f'{opt}, lr {t.learning_rate:g} {t.schedule}, weight decay {t.weight_decay:g}, '
          f'batch {t.batch_size}{stop}')


def _test_text(t) -> str:
  if t.eval_test_examples:
    return f'{t.eval_test_examples:,} test images'
  s = _slice(t.test_split)
  data = _DATA.get(t.dataset, t.dataset)
  return f'the full {data} test split' if s is None else _split_text(t.test_split, 'test')


def _seeds_text(seeds) -> str:
  seeds = list(seeds)
  return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(str(s) for s in seeds)}"


def _setting_cascade(config) -> str:
  t = config.cascade
  epochs = ', '.join(f'{e:,}' for e in ((0,) if t.checkpoint_init else ()) +
                     tuple(t.checkpoint_epochs))
  return (f'{_model_text(t)} on {_train_images(t)}, {_optim_text(t)}, '
          f'{_seeds_text(config.cascade_seeds)}; variances at the checkpoints of epochs '
          f'{epochs} on the training images and {_test_text(t)}, at the hidden layers '
          f"{', '.join(config.cascade_layers)}; weak test variance by k-means "
          f'({config.kmeans_restarts} restarts).')


def _setting_size(config) -> str:
  t = config.size
  return (f'{_model_text(t)} on {_DATA.get(t.dataset, t.dataset)} subsets of '
          f"{', '.join(f'{n:,}' for n in config.sizes)} training images (balanced), "
          f'{_optim_text(t)}, {_seeds_text(config.size_seeds)} per size; variances on '
          f'{_test_text(t)}.')


def _setting_transfer(config) -> str:
  parts = []
  for group, g in config.transfer.items():
    p, f = g.pretrain, g.finetune
    val = ', '.join(f"{_split_text(v.split, 'training')} ({name})"
                    for name, v in f.eval_sets.items())
    parts.append(
        f'{group}: {_model_text(p)} pretrained on {_train_images(p)}, {_optim_text(p)}, '
        f'{_seeds_text(g.seeds)} (one chain each); its checkpoints at epochs '
        f"{', '.join(f'{e:,}' for e in g.epochs)} each fine-tuned ({f.finetune}, a new head) "
        f'on {_train_images(f)}, {_optim_text(f)}, at lr '
        f"{', '.join(f'{lr:g}' for lr in g.lrs)} with the chain's seed; the learning rate "
        f'chosen on {val}; test accuracy on {_test_text(f)}.')
  if 'cifar' not in config.transfer:
    parts.append('The CIFAR-10 part: :gpu only.')
  return ' '.join(parts)


# ---------------------------------------------------------------------------
# 002a: train collapse without test collapse.
# ---------------------------------------------------------------------------


def _mid(epochs: Sequence[int]) -> int:
  """The index of the checkpoint nearest half the last epoch."""
  e = np.asarray(epochs)
  return int(np.argmin(np.abs(e - e[-1] / 2)))


def _cascade_health(rs) -> dict[str, Any]:
  return dict(seeds=[r.seed for r in rs],
              train_accuracy=_q([r['train_accuracy'] for r in rs]),
              test_accuracy=_q([r['test_accuracy'] for r in rs]))


def _at_init(r, key: str) -> float | None:
  """A curve's value at epoch 0 (the untrained network); None without that checkpoint."""
  return r[key][0] if r['epochs'] and r['epochs'][0] == 0 else None


def _evidence_002a(study: reproduce.Study) -> dict[str, Any]:
  rs = study.where(kind='cascade')
  layer = study.config.cascade_layers[-1]
  tv, tvf = f'train_variance_{layer}', f'train_variance_final_means_{layer}'
  mids = [_mid(r['epochs']) for r in rs]
  return dict(
      layer=layer, **_cascade_health(rs),
      end_epoch=[r['epochs'][-1] for r in rs],
      mid_epoch=[r['epochs'][i] for r, i in zip(rs, mids)],
      train_variance_init=_q([_at_init(r, tv) for r in rs]),
      train_variance_mid=_q([r[tv][i] for r, i in zip(rs, mids)]),
      train_variance_end=_q([r[tv][-1] for r in rs]),
      train_variance_final_means_end=_q([r[tvf][-1] for r in rs]),
      strong_test_variance_mid=_q([r['strong_test_variance'][i] for r, i in zip(rs, mids)]),
      strong_test_variance_end=_q([r['strong_test_variance'][-1] for r in rs]),
      weak_test_variance_end=_q([r['weak_test_variance'][-1] for r in rs]))


_QUANTITIES_002A = ('train_variance_init', 'train_variance_mid', 'train_variance_end',
                    'train_variance_final_means_end', 'strong_test_variance_mid',
                    'strong_test_variance_end', 'weak_test_variance_end')


def _gates_002a(ev, c) -> dict[str, reproduce.Gate]:
  return dict(
      seeds=_gate_seeds([ev[k] for k in _QUANTITIES_002A]),
      runs_fitted=_gate_fitted(_vals(ev['train_accuracy']), c),
      runs_trained=_gate_learned(_vals(ev['test_accuracy']), c),
      finite=_gate_finite([ev[k] for k in _QUANTITIES_002A]),
      train_collapse=_gate_collapse(
          _vals(ev['train_variance_final_means_end']), c,
          'largest final train variance (final means) of the last hidden layer over the seeds'),
      train_variance_fell=_gate_fell(
          ev['train_variance_init'], ev['train_variance_end'],
          'z-score of (at initialisation - at T), last hidden layer'))


def _checks_002a(ev, c) -> dict[str, bool | None]:
  tv_end = _vals(ev['train_variance_end'])
  return dict(
      strong_test_far_above_train=_exceeds(
          _vals(ev['strong_test_variance_end']), _scaled(tv_end, c['gap_min']), paired=True),
      weak_test_far_above_train=_exceeds(
          _vals(ev['weak_test_variance_end']), _scaled(tv_end, c['gap_min']), paired=True),
      train_keeps_falling=_exceeds(
          _scaled(_vals(ev['train_variance_mid']), c['train_fall_max']), tv_end, paired=True),
      test_levels_off=_exceeds(
          _vals(ev['strong_test_variance_end']),
          _scaled(_vals(ev['strong_test_variance_mid']), c['test_level_min']), paired=True))


def _figure_002a(ev, study) -> list[str]:
  rs = study.where(kind='cascade')
  if not rs:
    return []
  r, layer = rs[0], ev['layer']
  fig = '002a_train_vs_test_variance.png'
  plots.curves(study.file(fig), r['epochs'], {
      'train variance (current means)': r[f'train_variance_{layer}'],
      'train variance (final means, paper)': r[f'train_variance_final_means_{layer}'],
      'strong test variance': r['strong_test_variance'],
      'weak test variance (k-means)': r['weak_test_variance']},
      xlabel='epoch', logy=True,
      title=f'{_model_text(study.config.cascade)}, seed {r.seed}, last hidden layer')
  return [fig]


# ---------------------------------------------------------------------------
# 002b: more training data: weaker train collapse, stronger test collapse.
# ---------------------------------------------------------------------------


def _evidence_002b(study: reproduce.Study) -> dict[str, Any]:
  sizes = sorted(study.config.sizes)
  groups = [study.where(kind='size', train_size=n) for n in sizes]
  ev = dict(
      sizes=sizes, stop_at_train_loss=study.config.size.stop_at_train_loss,
      train_variance=[_q([r['train_squared_distance'] for r in g]) for g in groups],
      strong_test_variance=[_q([r['test_squared_distance'] for r in g]) for g in groups],
      train_accuracy=[_q([r['train_accuracy'] for r in g]) for g in groups],
      test_accuracy=[_q([r['test_accuracy'] for r in g]) for g in groups],
      reached_loss=[[bool(r['stopped_at_train_loss']) for r in g] for g in groups],
      final_running_loss=[[r['final_running_loss'] for r in g] for g in groups],
      epochs=[[r['epoch'] for r in g] for g in groups])
  ev.update(_correlations_002b(ev))
  return ev


def _correlations_002b(ev) -> dict[str, float | None]:
  """Spearman(train size, seed mean) of both variances; None where not measurable."""
  out = {}
  for key in ('train_variance', 'strong_test_variance'):
    means = [q['mean'] for q in ev[key]]
    rho = (float(spearman(ev['sizes'], means)) if len(means) == len(ev['sizes']) and
           _finite(means) else float('nan'))
    out[f'spearman_{key}'] = rho if math.isfinite(rho) else None
  return out


def _gates_002b(ev, c) -> dict[str, reproduce.Gate]:
  quantities = ev['train_variance'] + ev['strong_test_variance']
  flat = lambda key: [v for q in ev[key] for v in q['values']]
  reached = [r for g in ev['reached_loss'] for r in g]
  return dict(
      seeds=_gate_seeds(quantities),
      runs_fitted=_gate_fitted(flat('train_accuracy'), c),
      runs_trained=_gate_learned(flat('test_accuracy'), c),
      finite=_gate_finite(quantities),
      reached_the_loss=reproduce.at_most(
          reached.count(False) if reached else None, 0,
          'runs that stopped before their training loss fell below the threshold'),
      train_collapse=_gate_collapse(
          flat('train_variance'), c, 'largest final train variance of the runs read'))


def _checks_002b(ev, c) -> dict[str, bool | None]:
  rho = _correlations_002b(ev)  # From the per-seed values, not a copy in the evidence.
  tv, st = ev['train_variance'], ev['strong_test_variance']
  r_train, r_test = rho['spearman_train_variance'], rho['spearman_strong_test_variance']
  return dict(
      train_variance_rises_with_size=None if r_train is None else
      bool(r_train >= c['size_rho_min']),
      train_variance_largest_exceeds_smallest=_exceeds(
          _vals(tv[-1]), _vals(tv[0])) if tv else None,
      test_variance_falls_with_size=None if r_test is None else
      bool(r_test <= -c['size_rho_min']),
      test_variance_smallest_exceeds_largest=_exceeds(
          _vals(st[0]), _vals(st[-1])) if st else None)


def _figure_002b(ev, study) -> list[str]:
  if not _finite([q['mean'] for q in ev['train_variance'] + ev['strong_test_variance']]):
    return []
  fig = '002b_variance_vs_train_size.png'
  n = min((q['n'] for q in ev['train_variance']), default=0)
  plots.curves(study.file(fig), ev['sizes'],
               {'train variance': [q['mean'] for q in ev['train_variance']],
                'strong test variance': [q['mean'] for q in ev['strong_test_variance']]},
               xlabel='training images', logy=True,
               title=f"End of training (loss < {ev['stop_at_train_loss']:g}), mean of "
                     f'{n} seed{"s" if n != 1 else ""}')
  return [fig]


# ---------------------------------------------------------------------------
# 002c: super-class pretraining: more collapse, worse transfer.
# ---------------------------------------------------------------------------


def _best(tries: Sequence[sweep.Result]) -> sweep.Result | None:
  """The fine-tuning run of highest validation accuracy (the smaller lr on ties)."""
  usable = [t for t in tries if not t.final.get('diverged') and _finite([t['val_accuracy']])]
  if not usable:
    return None
  return max(usable, key=lambda t: (t['val_accuracy'], -t.tags['learning_rate']))


def _chain(study, group: str, g, seed: int) -> dict[str, Any]:
  pre = study.where(kind='pretrain', group=group, seed=seed)
  tv_at = (dict(zip(pre[0]['checkpoint_epochs'], pre[0]['checkpoint_train_variance']))
           if pre else {})
  rows = []
  for e in g.epochs:
    tries = study.where(kind='finetune', group=group, seed=seed, init_epoch=e)
    best = _best(tries)
    rows.append(dict(
        epoch=e, train_variance=_num(tv_at.get(e)),
        best_lr=None if best is None else best.tags['learning_rate'],
        val_accuracy=None if best is None else best['val_accuracy'],
        test_accuracy=None if best is None else best['test_accuracy'],
        diverged_lrs=[t.tags['learning_rate'] for t in tries if t.final.get('diverged')]))
  tv = [r['train_variance'] for r in rows]
  acc = [r['test_accuracy'] for r in rows]
  rho = float(spearman(tv, acc)) if rows and _finite(tv) and _finite(acc) else float('nan')
  return dict(seed=seed, spearman=rho if math.isfinite(rho) else None,
              pretrain_train_accuracy=pre[0]['train_accuracy'] if pre else None,
              most_collapsed=_extreme(tv, min), checkpoints=rows)


def _evidence_002c(study: reproduce.Study) -> dict[str, Any]:
  ev = {}
  for group, g in study.config.transfer.items():
    chains = [_chain(study, group, g, s) for s in g.seeds]
    rows = [r for ch in chains for r in ch['checkpoints']]
    ev[group] = dict(
        seeds=list(g.seeds), chains=chains,
        spearman=_q([ch['spearman'] for ch in chains]),
        pretrain_train_accuracy=_q([ch['pretrain_train_accuracy'] for ch in chains]),
        most_collapsed_train_variance=_q([ch['most_collapsed'] for ch in chains]),
        selected_test_accuracy=_q([r['test_accuracy'] for r in rows]),
        checkpoints_without_a_run=sum(r['best_lr'] is None for r in rows))
  return ev


def _gates_002c(ev, c) -> dict[str, reproduce.Gate]:
  gates = {}
  for group, e in ev.items():
    gates.update({
        f'{group}_seeds': _gate_seeds([e['spearman']]),
        f'{group}_pretraining_fitted': _gate_fitted(
            _vals(e['pretrain_train_accuracy']), c, 'pretraining'),
        f'{group}_every_checkpoint_fine_tuned': reproduce.at_most(
            e['checkpoints_without_a_run'], 0,
            'checkpoints whose every learning rate diverged'),
        f'{group}_fine_tuning_trained': _gate_learned(
            _vals(e['selected_test_accuracy']), c, 'chosen fine-tuning run'),
        f'{group}_finite': _gate_finite([e['spearman'], e['most_collapsed_train_variance']]),
        f'{group}_train_collapse': _gate_collapse(
            _vals(e['most_collapsed_train_variance']), c,
            "largest over the seeds of the most collapsed checkpoint's train variance"),
    })
  return gates


def _checks_002c(ev, c) -> dict[str, bool | None]:
  return {f'{group}_more_collapse_worse_transfer':
          _exceeds(_vals(e['spearman']), c['transfer_rho_min']) for group, e in ev.items()}


def _figure_002c(ev, study) -> list[str]:
  points = {}
  for group, e in ev.items():
    for ch in e['chains']:
      rows = [r for r in ch['checkpoints']
              if _finite([r['train_variance'], r['test_accuracy']])]
      if rows:
        points[f"{group} seed {ch['seed']}"] = ([r['train_variance'] for r in rows],
                                                [r['test_accuracy'] for r in rows])
  if not points:
    return []
  fig = '002c_transfer_vs_train_variance.png'
  plots.scatter(study.file(fig), points,
                xlabel='train variance of the checkpoint (super-class labels, current means)',
                ylabel='test accuracy after fine-tuning', logx=True,
                title='Super-class pretraining, then full fine-tuning on the fine classes')
  return [fig]


# ---------------------------------------------------------------------------
# 002d: cascading collapse.
# ---------------------------------------------------------------------------


def _half_epoch(r, key: str, half: float) -> int | None:
  """The first checkpoint epoch where the curve is below ``half`` x its initial value."""
  v = np.asarray(r[key], float)
  below = np.flatnonzero(v <= half * v[0])
  return int(r['epochs'][below[0]]) if len(below) else None


def _evidence_002d(study: reproduce.Study) -> dict[str, Any]:
  rs = study.where(kind='cascade')
  layers = list(study.config.cascade_layers)
  half = CRITERIA['half']
  return dict(
      layers=layers, **_cascade_health(rs),
      train_variance_init={l: _q([_at_init(r, f'train_variance_{l}') for r in rs])
                           for l in layers},
      train_variance_end={l: _q([r[f'train_variance_{l}'][-1] for r in rs]) for l in layers},
      train_variance_final_means_end={
          l: _q([r[f'train_variance_final_means_{l}'][-1] for r in rs]) for l in layers},
      half_epoch={l: [_half_epoch(r, f'train_variance_{l}', half) if _at_init(
          r, f'train_variance_{l}') is not None else None for r in rs] for l in layers})


def _gates_002d(ev, c) -> dict[str, reproduce.Gate]:
  last = ev['layers'][-1]
  quantities = list(ev['train_variance_end'].values()) + list(ev['train_variance_init'].values())
  return dict(
      seeds=_gate_seeds(quantities),
      runs_fitted=_gate_fitted(_vals(ev['train_accuracy']), c),
      runs_trained=_gate_learned(_vals(ev['test_accuracy']), c),
      finite=_gate_finite(quantities),
      train_collapse=_gate_collapse(
          _vals(ev['train_variance_final_means_end'][last]), c,
          'largest final train variance (final means) of the last hidden layer over the seeds'),
      train_variance_fell=_gate_fell(
          ev['train_variance_init'][last], ev['train_variance_end'][last],
          'z-score of (at initialisation - at T), last hidden layer'))


def _checks_002d(ev, c) -> dict[str, bool | None]:
  layers, end, half = ev['layers'], ev['train_variance_end'], ev['half_epoch']
  last = layers[-1]
  furthest = _all([_exceeds(_vals(end[a]), _vals(end[b]), paired=True)
                   for a, b in zip(layers, layers[1:])])
  n = len(half[last])
  first = None if n == 0 else bool(all(
      half[last][i] is not None and all(half[l][i] is None or half[last][i] <= half[l][i]
                                        for l in layers[:-1])
      for i in range(n)))
  return dict(last_layer_furthest=furthest, last_layer_first=first)


def _figure_002d(ev, study) -> list[str]:
  rs = study.where(kind='cascade')
  if not rs:
    return []
  r, figs = rs[0], []
  for kind, label in (('', 'current means'), ('final_means_', 'final means (paper)')):
    fig = f'002d_cascade_{kind or "current_means_"}per_layer.png'
    plots.curves(study.file(fig), r['epochs'],
                 {l: r[f'train_variance_{kind}{l}'] for l in ev['layers']}, xlabel='epoch',
                 logy=True, title=f'Train variance per layer ({label}), seed {r.seed}')
    figs.append(fig)
  return figs


# ---------------------------------------------------------------------------
# The claims.
# ---------------------------------------------------------------------------

_GATE_TEXT = ('Gates: >= {min_seeds} seeds; every run read has train accuracy >= '
              '{train_accuracy_min} and test accuracy >= {test_accuracy_min}; ')


def _constants(*keys: str) -> dict[str, Any]:
  return dict(_GATES, **{k: CRITERIA[k] for k in keys})


CLAIMS = [
    reproduce.ClaimSpec(
        '002a',
        claim='Train collapse without test collapse: the train variance keeps falling while '
              'the strong and weak test variances level off far above it.',
        paper='Figs 1-3: ResNet-18 on CIFAR-10 (and other models / data sets), 80k SGD '
              'iterations, batch 128, lr 0.1, cosine, no augmentation.',
        criterion=_GATE_TEXT + (
            'the train collapse happened: the last hidden layer\'s train variance (final '
            'means) at the last checkpoint T <= {collapse_max} in every seed, and its value at '
            'initialisation exceeds its value at T by > {z:g} SE. Checks, at the last hidden '
            'layer over the seeds (paired; "a exceeds b": mean(a - b) > {z:g} SE): the strong '
            'and the weak test variance at T each exceed {gap_min:g} x the train variance at '
            'T (current means); {train_fall_max} x the train variance at T/2 exceeds the one '
            'at T; the strong test variance at T exceeds {test_level_min} x its value at T/2.'),
        constants=_constants('gap_min', 'train_fall_max', 'test_level_min'),
        evidence=_evidence_002a, gates=_gates_002a, checks=_checks_002a,
        setting=_setting_cascade, figure=_figure_002a),
    reproduce.ClaimSpec(
        '002b',
        claim='With more training data, train collapse at the end of training is weaker and '
              'test collapse stronger.',
        paper='Fig 4: ResNet-18 on CIFAR-10 with 12.5k-50k images and VGG-11-BN on '
              'Fashion-MNIST subsets, each trained until the training loss is 1e-6.',
        criterion=_GATE_TEXT + (
            'every run reached the loss threshold; the train collapse happened: every run\'s '
            'final train variance <= {collapse_max}. Checks: over the seed means, '
            'Spearman(train size, train variance) >= {size_rho_min} and Spearman(train size, '
            'strong test variance) <= -{size_rho_min}; and the direction beyond the noise: '
            'the train variance at the largest size exceeds the one at the smallest, the '
            'strong test variance at the smallest size exceeds the one at the largest (mean '
            'difference > {z:g} SE).'),
        constants=_constants('size_rho_min'),
        evidence=_evidence_002b, gates=_gates_002b, checks=_checks_002b,
        setting=_setting_size, figure=_figure_002b),
    reproduce.ClaimSpec(
        '002c',
        claim='Pretraining on super-classes: checkpoints with more train collapse transfer '
              'worse to the fine classes.',
        paper='Fig 5: MNIST parity labels, 3 x 1024 MLP, the first 1,000 images, lr 0.001, '
              '100k iterations; checkpoints fine-tuned (all layers) on 500 new images, best '
              'accuracy over lr 0.0005-0.25 against the checkpoint train variance. Also '
              'ResNet-18 on CIFAR-10 objects vs animals (8 classes, deer and dog dropped).',
        criterion=(
            'Gates, for each pretraining: >= {min_seeds} pretraining seeds; every pretraining '
            'has train accuracy >= {train_accuracy_min}; the train collapse happened: in every '
            'seed the most collapsed checkpoint\'s train variance (last hidden layer, current '
            'means) <= {collapse_max}; every checkpoint has a fine-tuning run that did not '
            'diverge, and every chosen run has test accuracy >= {test_accuracy_min}. Check: '
            'per pretraining seed, Spearman(checkpoint train variance, test accuracy of the '
            'fine-tuning run whose learning rate is chosen on the validation images) over the '
            'checkpoints; their mean over the seeds exceeds {transfer_rho_min} by > {z:g} SE.'),
        constants=_constants('transfer_rho_min'),
        evidence=_evidence_002c, gates=_gates_002c, checks=_checks_002c,
        setting=_setting_transfer, figure=_figure_002c),
    reproduce.ClaimSpec(
        '002d',
        claim='Cascading collapse: the last hidden layer\'s train variance falls first and '
              'furthest, the earlier layers\' later and less.',
        paper='Fig 6: 3 x 1024 MLP, MNIST, 100 images per class, lr 0.001, cosine, 80k '
              'iterations; train variance per layer over steps.',
        criterion=_GATE_TEXT + (
            'the train collapse happened: the last hidden layer\'s train variance (final '
            'means) at the last checkpoint T <= {collapse_max} in every seed, and its value at '
            'initialisation exceeds its value at T by > {z:g} SE. Checks (current class '
            'means): the final train variance of each hidden layer exceeds the next layer\'s '
            '(paired over the seeds, mean difference > {z:g} SE), from the first to the last '
            'hidden layer; and in every seed the last hidden layer is the first (or tied '
            'first) to fall below {half} x its value at initialisation.'),
        constants=_constants('half'),
        evidence=_evidence_002d, gates=_gates_002d, checks=_checks_002d,
        setting=_setting_cascade, figure=_figure_002d),
]
