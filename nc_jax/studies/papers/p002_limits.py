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
runs' tags (per-seed values as `spread.quantity`), gates (every run trained,
the train collapse the paper's claims presuppose happened, >= 3 seeds, the
fall measured against the untrained network), checks (every comparison
between seed groups through `spread.exceeds`), a criterion written over the
same constants. The check thresholds (``gap_min`` ... ``transfer_rho_min``)
were fixed before the first run; the gates' thresholds (`TRAIN_ACCURACY_MIN`,
`TEST_ACCURACY_MIN`, `COLLAPSE_MAX`) before the first run under gates.

References: paper 002 secs 3-5, Figs 2-6; SPEC.md lines 50-52.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from nc_jax import metrics
from nc_jax import plots
from nc_jax.probes.correlation import spearman
from nc_jax.rundir import RunDir
from nc_jax.studies import reproduce
from nc_jax.studies import settings
from nc_jax.studies import spread
from nc_jax.studies import sweep
from nc_jax.studies.common import say
from nc_jax.train import input as input_lib

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


def _train_variance(h: np.ndarray, ds) -> float:
  """SPEC.md train variance of features ``h`` of ``ds`` (the current class means)."""
  return float(metrics.train_variance(h, ds.labels, num_classes=ds.num_classes))


def _cascade_analysis(config):
  """After training: the variances at every checkpoint and hidden layer."""

  def analysis(run: sweep.Run, rdir: str) -> dict[str, Any]:
    t, layers, run_dir = run.config, config.cascade_layers, RunDir(rdir)
    sets = input_lib.eval_sets(t, *input_lib.load_data(t))
    tr, te = sets['train'], sets['test']
    k, epochs = tr.num_classes, run_dir.checkpoint_epochs
    feats = [run_dir.features({'train': tr, 'test': te}, e, layers=layers,
                              batch_size=t.eval_batch_size) for e in epochs]
    out: dict[str, Any] = {'epochs': epochs}
    for layer in layers:
      final = feats[-1]['train'][layer]
      out[f'train_variance_final_means_{layer}'] = [
          final_means_variance(f['train'][layer], final, tr.labels, k) for f in feats]
      out[f'train_variance_{layer}'] = [_train_variance(f['train'][layer], tr) for f in feats]
    test = [f['test']['penultimate'] for f in feats]
    out['strong_test_variance'] = [
        float(metrics.strong_test_variance(h, te.labels, num_classes=k)) for h in test]
    out['weak_test_variance'] = [
        float(metrics.weak_test_variance(h, num_clusters=k, key=t.seed,
                                         num_restarts=config.kmeans_restarts)) for h in test]
    say(f"{run.name}: TV {out['train_variance_penultimate'][-1]:.3g}, strong "
        f"{out['strong_test_variance'][-1]:.3g}, weak {out['weak_test_variance'][-1]:.3g}")
    return out

  return analysis


def _final_running_loss(run: sweep.Run, rdir: str) -> dict[str, Any]:
  fits = RunDir(rdir).fits
  return dict(final_running_loss=fits[-1]['running_loss'] if fits else None)


def _pretrain_analysis(group):
  """After pretraining: the train variance (current means) at every checkpoint."""

  def analysis(run: sweep.Run, rdir: str) -> dict[str, Any]:
    t, run_dir = run.config, RunDir(rdir)
    tr, _ = input_lib.load_data(t)
    tv = []
    for e in group.epochs:
      h = run_dir.features({'train': tr}, e, batch_size=t.eval_batch_size)['train']
      tv.append(_train_variance(h['penultimate'], tr))
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
# Gates and correlations shared by the claims.
# ---------------------------------------------------------------------------


def _extreme(fn, values: Sequence[Any]) -> float | None:
  """min / max of the values; None (not measured) unless every one is finite."""
  return float(fn(float(v) for v in values)) if spread.finite(values) else None


def _gate_fitted(values, c, what='run') -> reproduce.Gate:
  return reproduce.at_least(_extreme(min, values), c['train_accuracy_min'],
                            f'smallest final train accuracy of the {what}s read')


def _gate_learned(values, c, what='run') -> reproduce.Gate:
  return reproduce.at_least(_extreme(min, values), c['test_accuracy_min'],
                            f'smallest final test accuracy of the {what}s read (chance 0.1)')


def _gate_finite(quantities: Sequence[dict[str, Any]]) -> reproduce.Gate:
  return reproduce.finite_gate([v for q in quantities for v in q['values']],
                               'compared numbers that are missing, NaN or inf')


def _gate_collapse(values, c, about: str) -> reproduce.Gate:
  return reproduce.at_most(_extreme(max, values), c['collapse_max'], about)


def _run_gates(quantities, train_accuracy, test_accuracy, c) -> dict[str, reproduce.Gate]:
  """Enough seeds in every compared quantity, each of them finite; every run
  read fitted its training set and learned."""
  return dict(seeds=reproduce.seeds_gate(min((q['n'] for q in quantities), default=0)),
              runs_fitted=_gate_fitted(train_accuracy, c),
              runs_trained=_gate_learned(test_accuracy, c),
              finite=_gate_finite(quantities))


def _cascade_gates(ev, c, quantities, init, end, final_means_end) -> dict[str, reproduce.Gate]:
  """002a's and 002d's gates: `_run_gates`, then the last hidden layer's train
  variance collapsed (final means) and fell from initialisation."""
  return dict(
      **_run_gates(quantities, ev['train_accuracy']['values'],
                   ev['test_accuracy']['values'], c),
      train_collapse=_gate_collapse(
          final_means_end['values'], c,
          'largest final train variance (final means) of the last hidden layer over the seeds'),
      train_variance_fell=reproduce.changed_gate(
          init, end, 'z-score of (at initialisation - at T), last hidden layer'))


def _spearman(x: Sequence[Any], y: Sequence[Any]) -> float | None:
  """Spearman(x, y); None unless both are finite, of one length, and it is finite."""
  if not (spread.finite(x) and spread.finite(y)) or len(x) != len(y):
    return None
  rho = float(spearman([float(v) for v in x], [float(v) for v in y]))
  return rho if math.isfinite(rho) else None


# ---------------------------------------------------------------------------
# Settings, computed from the variant's config.
# ---------------------------------------------------------------------------

_SLICE = re.compile(r'^\w+\[(?P<start>\d*):(?P<stop>\d+)\]$')


def _slice(split: str) -> tuple[int, int] | None:
  """'train[1000:1500]' -> (1000, 1500); None for a split without a bounded slice."""
  m = _SLICE.match(split)
  return (int(m['start'] or 0), int(m['stop'])) if m else None


def _iterations(t) -> str:
  """' (7,000 iterations)': the SGD steps of a run of known train-set size, else ''."""
  n, s = None, _slice(t.train_split)
  if t.train_examples_per_class and not t.label_map:
    n = t.train_examples_per_class * 10  # MNIST, Fashion-MNIST: 10 classes.
  elif not t.train_examples_per_class and s:
    n = s[1] - s[0]
  if not n or t.stop_at_train_loss:
    return ''
  return f' ({(n // t.batch_size) * t.num_epochs:,} iterations)'


def _trainer(t) -> str:
  return f'{settings.model(t)} on {settings.data(t)}; {settings.optimizer(t)}{_iterations(t)}'


def _numbers(values) -> str:
  """(1000, 2000) -> '1,000, 2,000'."""
  return ', '.join(settings.number(e) for e in values)


def _setting_cascade(config) -> str:
  t = config.cascade
  epochs = ((0,) if t.checkpoint_init else ()) + tuple(t.checkpoint_epochs)
  return (f'{_trainer(t)}; {settings.seeds(config.cascade_seeds)}; variances at the '
          f'checkpoints of epochs {_numbers(epochs)} on the training images and '
          f"{settings.test_data(t)}, at the hidden layers {', '.join(config.cascade_layers)}; "
          f'weak test variance by k-means ({config.kmeans_restarts} restarts).')


def _setting_size(config) -> str:
  t = config.size
  return (f'{settings.model(t)} on {settings.DATA_NAMES.get(t.dataset, t.dataset)} subsets '
          f'of {_numbers(config.sizes)} training images (balanced); {settings.optimizer(t)}; '
          f'{settings.seeds(config.size_seeds)} per size; variances on '
          f'{settings.test_data(t)}.')


def _held_out(t) -> str:
  """Where the learning rate is chosen: '100 training images (indices 1,500-1,599) (val)'."""

  def images(split):
    s = _slice(split)
    return (f'the {split} split' if s is None else
            f'{s[1] - s[0]:,} training images (indices {s[0]:,}-{s[1] - 1:,})')

  return ', '.join(f'{images(v.split)} ({name})' for name, v in t.eval_sets.items())


def _setting_transfer(config) -> str:
  parts = []
  for group, g in config.transfer.items():
    f = g.finetune
    parts.append(
        f'{group}: pretraining {_trainer(g.pretrain)}; {settings.seeds(g.seeds)} (one chain '
        f'each). Its checkpoints at epochs {_numbers(g.epochs)} each fine-tuned '
        f"({f.finetune}, a new head, the chain's seed): {_trainer(f)}; "
        f"{settings.grid({'lr': g.lrs})}, chosen on {_held_out(f)}; test accuracy on "
        f'{settings.test_data(f)}.')
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
              train_accuracy=spread.quantity([r['train_accuracy'] for r in rs]),
              test_accuracy=spread.quantity([r['test_accuracy'] for r in rs]))


def _at_init(r, key: str) -> float | None:
  """A curve's value at epoch 0 (the untrained network); None without that checkpoint."""
  return r[key][0] if r['epochs'] and r['epochs'][0] == 0 else None


def _evidence_002a(study: reproduce.Study) -> dict[str, Any]:
  rs = study.where(kind='cascade')
  layer = study.config.cascade_layers[-1]
  tv, tvf = f'train_variance_{layer}', f'train_variance_final_means_{layer}'
  st = 'strong_test_variance'
  mids = [_mid(r['epochs']) for r in rs]
  at_mid = lambda key: spread.quantity([r[key][i] for r, i in zip(rs, mids)])
  at_end = lambda key: spread.quantity([r[key][-1] for r in rs])
  return dict(
      layer=layer, **_cascade_health(rs),
      end_epoch=[r['epochs'][-1] for r in rs],
      mid_epoch=[r['epochs'][i] for r, i in zip(rs, mids)],
      train_variance_init=spread.quantity([_at_init(r, tv) for r in rs]),
      train_variance_mid=at_mid(tv), train_variance_end=at_end(tv),
      train_variance_final_means_end=at_end(tvf),
      strong_test_variance_mid=at_mid(st), strong_test_variance_end=at_end(st),
      weak_test_variance_end=at_end('weak_test_variance'))


_QUANTITIES_002A = ('train_variance_init', 'train_variance_mid', 'train_variance_end',
                    'train_variance_final_means_end', 'strong_test_variance_mid',
                    'strong_test_variance_end', 'weak_test_variance_end')


def _gates_002a(ev, c) -> dict[str, reproduce.Gate]:
  return _cascade_gates(ev, c, [ev[k] for k in _QUANTITIES_002A], ev['train_variance_init'],
                        ev['train_variance_end'], ev['train_variance_final_means_end'])


def _times(factor: float, q) -> list[float | None]:
  """``factor`` x each per-seed value of a `spread.quantity` (None stays None)."""
  return [None if v is None else factor * v for v in q['values']]


def _checks_002a(ev, c) -> dict[str, bool | None]:
  tv_end, st_end = ev['train_variance_end'], ev['strong_test_variance_end']
  gap = _times(c['gap_min'], tv_end)
  return dict(
      strong_test_far_above_train=spread.exceeds(st_end, gap, paired=True),
      weak_test_far_above_train=spread.exceeds(ev['weak_test_variance_end'], gap, paired=True),
      train_keeps_falling=spread.exceeds(
          _times(c['train_fall_max'], ev['train_variance_mid']), tv_end, paired=True),
      test_levels_off=spread.exceeds(
          st_end, _times(c['test_level_min'], ev['strong_test_variance_mid']), paired=True))


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
      title=f'{settings.model(study.config.cascade)}, seed {r.seed}, last hidden layer')
  return [fig]


# ---------------------------------------------------------------------------
# 002b: more training data: weaker train collapse, stronger test collapse.
# ---------------------------------------------------------------------------


def _evidence_002b(study: reproduce.Study) -> dict[str, Any]:
  sizes = sorted(study.config.sizes)
  groups = [study.where(kind='size', train_size=n) for n in sizes]
  per_size = lambda key: [spread.quantity([r[key] for r in g]) for g in groups]
  listed = lambda key: [[r[key] for r in g] for g in groups]
  ev = dict(
      sizes=sizes, stop_at_train_loss=study.config.size.stop_at_train_loss,
      train_variance=per_size('train_squared_distance'),
      strong_test_variance=per_size('test_squared_distance'),
      train_accuracy=per_size('train_accuracy'), test_accuracy=per_size('test_accuracy'),
      reached_loss=[[bool(r['stopped_at_train_loss']) for r in g] for g in groups],
      final_running_loss=listed('final_running_loss'), epochs=listed('epoch'))
  ev.update(_correlations_002b(ev))
  return ev


def _correlations_002b(ev) -> dict[str, float | None]:
  """Spearman(train size, seed mean) of both variances; None where not measurable."""
  return {f'spearman_{key}': _spearman(ev['sizes'], [q['mean'] for q in ev[key]])
          for key in ('train_variance', 'strong_test_variance')}


def _gates_002b(ev, c) -> dict[str, reproduce.Gate]:
  flat = lambda key: [v for q in ev[key] for v in q['values']]
  reached = [r for g in ev['reached_loss'] for r in g]
  return dict(
      **_run_gates(ev['train_variance'] + ev['strong_test_variance'],
                   flat('train_accuracy'), flat('test_accuracy'), c),
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
      r_train >= c['size_rho_min'],
      train_variance_largest_exceeds_smallest=spread.exceeds(tv[-1], tv[0]) if tv else None,
      test_variance_falls_with_size=None if r_test is None else
      r_test <= -c['size_rho_min'],
      test_variance_smallest_exceeds_largest=spread.exceeds(st[0], st[-1]) if st else None)


def _figure_002b(ev, study) -> list[str]:
  tv = [q['mean'] for q in ev['train_variance']]
  st = [q['mean'] for q in ev['strong_test_variance']]
  if not spread.finite(tv + st):
    return []
  fig = '002b_variance_vs_train_size.png'
  n = min((q['n'] for q in ev['train_variance']), default=0)
  plots.curves(study.file(fig), ev['sizes'],
               {'train variance': tv, 'strong test variance': st},
               xlabel='training images', logy=True,
               title=f"End of training (loss < {ev['stop_at_train_loss']:g}), mean of "
                     f'{n} seed{"s" if n != 1 else ""}')
  return [fig]


# ---------------------------------------------------------------------------
# 002c: super-class pretraining: more collapse, worse transfer.
# ---------------------------------------------------------------------------


def _best(tries: Sequence[sweep.Result]) -> sweep.Result | None:
  """The fine-tuning run of highest validation accuracy (the smaller lr on ties)."""
  usable = [t for t in tries if not t.final.get('diverged') and spread.finite(t['val_accuracy'])]
  if not usable:
    return None
  return max(usable, key=lambda t: (t['val_accuracy'], -t.tags['learning_rate']))


def _chain(study, group: str, g, seed: int) -> dict[str, Any]:
  """One pretraining seed: per checkpoint its train variance and the chosen fine-tuning run."""
  pre = study.where(kind='pretrain', group=group, seed=seed)
  tv_at = (dict(zip(pre[0]['checkpoint_epochs'], pre[0]['checkpoint_train_variance']))
           if pre else {})
  rows = []
  for e in g.epochs:
    tries = study.where(kind='finetune', group=group, seed=seed, init_epoch=e)
    best = _best(tries)
    rows.append(dict(
        epoch=e, train_variance=tv_at.get(e),
        best_lr=None if best is None else best.tags['learning_rate'],
        val_accuracy=None if best is None else best['val_accuracy'],
        test_accuracy=None if best is None else best['test_accuracy'],
        diverged_lrs=[t.tags['learning_rate'] for t in tries if t.final.get('diverged')]))
  tv = [r['train_variance'] for r in rows]
  return dict(seed=seed, spearman=_spearman(tv, [r['test_accuracy'] for r in rows]),
              pretrain_train_accuracy=pre[0]['train_accuracy'] if pre else None,
              most_collapsed=_extreme(min, tv), checkpoints=rows)


def _evidence_002c(study: reproduce.Study) -> dict[str, Any]:
  ev = {}
  for group, g in study.config.transfer.items():
    chains = [_chain(study, group, g, s) for s in g.seeds]
    per_chain = lambda key: spread.quantity([ch[key] for ch in chains])
    rows = [r for ch in chains for r in ch['checkpoints']]
    ev[group] = dict(
        seeds=list(g.seeds), chains=chains, spearman=per_chain('spearman'),
        pretrain_train_accuracy=per_chain('pretrain_train_accuracy'),
        most_collapsed_train_variance=per_chain('most_collapsed'),
        selected_test_accuracy=spread.quantity([r['test_accuracy'] for r in rows]),
        checkpoints_without_a_run=sum(r['best_lr'] is None for r in rows))
  return ev


def _gates_002c(ev, c) -> dict[str, reproduce.Gate]:
  gates = {}
  for group, e in ev.items():
    gates.update({
        f'{group}_seeds': reproduce.seeds_gate(e['spearman']['n']),
        f'{group}_pretraining_fitted': _gate_fitted(
            e['pretrain_train_accuracy']['values'], c, 'pretraining'),
        f'{group}_every_checkpoint_fine_tuned': reproduce.at_most(
            e['checkpoints_without_a_run'], 0,
            'checkpoints whose every learning rate diverged'),
        f'{group}_fine_tuning_trained': _gate_learned(
            e['selected_test_accuracy']['values'], c, 'chosen fine-tuning run'),
        f'{group}_finite': _gate_finite([e['spearman'], e['most_collapsed_train_variance']]),
        f'{group}_train_collapse': _gate_collapse(
            e['most_collapsed_train_variance']['values'], c,
            "largest over the seeds of the most collapsed checkpoint's train variance"),
    })
  return gates


def _checks_002c(ev, c) -> dict[str, bool | None]:
  return {f'{group}_more_collapse_worse_transfer':
          spread.exceeds(e['spearman'], c['transfer_rho_min']) for group, e in ev.items()}


def _figure_002c(ev, study) -> list[str]:
  points = {}
  for group, e in ev.items():
    for ch in e['chains']:
      rows = [r for r in ch['checkpoints']
              if spread.finite([r['train_variance'], r['test_accuracy']])]
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
  """The first checkpoint epoch where the curve is below ``half`` x its value at
  initialisation; None without a checkpoint at epoch 0, or if it never is."""
  if _at_init(r, key) is None:
    return None
  v = np.asarray(r[key], float)
  below = np.flatnonzero(v <= half * v[0])
  return int(r['epochs'][below[0]]) if len(below) else None


def _evidence_002d(study: reproduce.Study) -> dict[str, Any]:
  rs = study.where(kind='cascade')
  layers = list(study.config.cascade_layers)
  per_layer = lambda fn: {l: spread.quantity([fn(r, l) for r in rs]) for l in layers}
  return dict(
      layers=layers, **_cascade_health(rs),
      train_variance_init=per_layer(lambda r, l: _at_init(r, f'train_variance_{l}')),
      train_variance_end=per_layer(lambda r, l: r[f'train_variance_{l}'][-1]),
      train_variance_final_means_end=per_layer(
          lambda r, l: r[f'train_variance_final_means_{l}'][-1]),
      half_epoch={l: [_half_epoch(r, f'train_variance_{l}', CRITERIA['half']) for r in rs]
                  for l in layers})


def _gates_002d(ev, c) -> dict[str, reproduce.Gate]:
  last = ev['layers'][-1]
  init, end = ev['train_variance_init'], ev['train_variance_end']
  return _cascade_gates(ev, c, list(end.values()) + list(init.values()), init[last], end[last],
                        ev['train_variance_final_means_end'][last])


def _last_layer_first(half: dict[str, list[int | None]], layers: Sequence[str]) -> bool | None:
  """In every seed the last layer halves, no later than each earlier layer that halves."""
  last = half[layers[-1]]
  if not last:
    return None
  return all(e is not None and all(half[l][i] is None or e <= half[l][i] for l in layers[:-1])
             for i, e in enumerate(last))


def _checks_002d(ev, c) -> dict[str, bool | None]:
  layers, end = ev['layers'], ev['train_variance_end']
  return dict(
      last_layer_furthest=spread.all_of([spread.exceeds(end[a], end[b], paired=True)
                                         for a, b in zip(layers, layers[1:])]),
      last_layer_first=_last_layer_first(ev['half_epoch'], layers))


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
_CASCADE_GATE_TEXT = _GATE_TEXT + (
    'the train collapse happened: the last hidden layer\'s train variance (final means) at '
    'the last checkpoint T <= {collapse_max} in every seed, and its value at initialisation '
    'exceeds its value at T by > {z:g} SE. ')


def _constants(*keys: str) -> dict[str, Any]:
  return dict(_GATES, **{k: CRITERIA[k] for k in keys})


CLAIMS = [
    reproduce.ClaimSpec(
        '002a',
        claim='Train collapse without test collapse: the train variance keeps falling while '
              'the strong and weak test variances level off far above it.',
        paper='Figs 1-3: ResNet-18 on CIFAR-10 (and other models / data sets), 80k SGD '
              'iterations, batch 128, lr 0.1, cosine, no augmentation.',
        criterion=_CASCADE_GATE_TEXT + (
            'Checks, at the last hidden layer over the seeds (paired; "a exceeds b": mean(a - '
            'b) > {z:g} SE): the strong and the weak test variance at T each exceed {gap_min:g} '
            'x the train variance at T (current means); {train_fall_max} x the train variance '
            'at T/2 exceeds the one at T; the strong test variance at T exceeds '
            '{test_level_min} x its value at T/2.'),
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
        criterion=_CASCADE_GATE_TEXT + (
            'Checks (current class means): the final train variance of each hidden layer '
            'exceeds the next layer\'s (paired over the seeds, mean difference > {z:g} SE), '
            'from the first to the last hidden layer; and in every seed the last hidden layer '
            'is the first (or tied first) to fall below {half} x its value at initialisation.'),
        constants=_constants('half'),
        evidence=_evidence_002d, gates=_gates_002d, checks=_checks_002d,
        setting=_setting_cascade, figure=_figure_002d),
]
