"""Paper 002's runs: what is trained (`plan`) and the analyses after training.

`plan` turns the study's config into its runs, each tagged for the claims
(see the package docstring); the analyses read a finished run's checkpoints
back (`RunDir`): the variances of every checkpoint and hidden layer
(cascade), the train variance of every pretraining checkpoint, the final
running loss (sizes).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np

from nc_jax import metrics
from nc_jax.rundir import RunDir
from nc_jax.studies import sweep
from nc_jax.studies.common import probe_layers, say
from nc_jax.train import input as input_lib


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


def fit_and_final(run_dir: RunDir, layer: str = 'penultimate',
                  fitted: float = 0.99) -> dict[str, Any]:
  """The train collapse of a run from its evaluation records (current class means).

  ``fit_epoch``: the first evaluated epoch whose train accuracy is at least
  ``fitted`` (the training set is fitted: the terminal phase begins);
  ``fit_train_variance``: the layer's train variance (SPEC.md
  `train_variance`) there; ``final_train_variance``: at the last evaluation.
  None where the run never fitted.
  """
  epochs, acc = run_dir.series('accuracy', split='train', layer=layer)
  _, tv = run_dir.series('squared_distance', split='train', layer=layer)
  hit = np.flatnonzero(acc >= fitted)
  first = int(hit[0]) if len(hit) else None
  return dict(fit_epoch=None if first is None else int(epochs[first]),
              fit_train_variance=None if first is None else float(tv[first]),
              final_train_variance=float(tv[-1]) if len(tv) else None)


def _layer_curves(run_dir: RunDir, layers) -> dict[str, Any]:
  """Per layer, the train variance (current means) at every evaluation."""
  out = {}
  for layer in layers:
    epochs, tv = run_dir.series('squared_distance', split='train', layer=layer)
    out['eval_epochs'] = [int(e) for e in epochs]
    out[f'eval_train_variance_{layer}'] = [float(v) for v in tv]
  _, acc = run_dir.series('accuracy', split='train', layer=layers[-1])
  out['eval_train_accuracy'] = [float(a) for a in acc]
  return out


def _prestudy(run: sweep.Run, rdir: str) -> dict[str, Any]:
  """After a pre-study run: its train collapse (the rule reads nothing else)."""
  del run
  return fit_and_final(RunDir(rdir))


def _train_variance(h: np.ndarray, ds) -> float:
  """SPEC.md train variance of features ``h`` of ``ds`` (the current class means)."""
  return float(metrics.train_variance(h, ds.labels, num_classes=ds.num_classes))


def final_means_test_variances(h_t: np.ndarray, h_final: np.ndarray, labels: np.ndarray,
                               num_classes: int, centroids: np.ndarray) -> tuple[float, float]:
  """Paper 002's StrongTestVariance(t) and WeakTestVariance(t), in float64.

  Strong: the test features of the model at t around the final model's test
  class means (`final_means_variance` on test features); weak: around
  ``centroids``, k-means centres of the final model's test features.
  """
  strong = final_means_variance(h_t, h_final, labels, num_classes)
  with jax.enable_x64(True):
    weak = float(metrics.weak_test_variance_of(np.asarray(h_t, np.float64),
                                               np.asarray(centroids, np.float64)))
  return strong, weak


def _cascade_analysis(config):
  """After training: the variances at every checkpoint and hidden layer, and
  the evaluation records' per-layer train variance (every `evals.every`)."""

  def analysis(run: sweep.Run, rdir: str) -> dict[str, Any]:
    t, layers, run_dir = run.config, config.cascade_layers, RunDir(rdir)
    sets = input_lib.eval_sets(t, *input_lib.load_data(t))
    tr, te = sets['train'], sets['test']
    k, epochs = tr.num_classes, run_dir.checkpoint_epochs
    feats = [run_dir.features({'train': tr, 'test': te}, e, layers=layers,
                              batch_size=t.evals.batch_size) for e in epochs]
    out: dict[str, Any] = {'epochs': epochs, **fit_and_final(run_dir, layers[-1]),
                           **_layer_curves(run_dir, layers)}
    for layer in layers:
      final = feats[-1]['train'][layer]
      out[f'train_variance_final_means_{layer}'] = [
          final_means_variance(f['train'][layer], final, tr.labels, k) for f in feats]
      out[f'train_variance_{layer}'] = [_train_variance(f['train'][layer], tr) for f in feats]
    test = [f['test'][layers[-1]] for f in feats]
    out['strong_test_variance'] = [
        float(metrics.strong_test_variance(h, te.labels, num_classes=k)) for h in test]
    out['weak_test_variance'] = [
        float(metrics.weak_test_variance(h, num_clusters=k, key=t.seed,
                                         num_restarts=config.kmeans_restarts)) for h in test]
    centres = np.asarray(metrics.kmeans(test[-1], num_clusters=k, key=t.seed,
                                        num_restarts=config.kmeans_restarts).centroids)
    final_means = [final_means_test_variances(h, test[-1], te.labels, k, centres)
                   for h in test]
    out['strong_test_variance_final_means'] = [v[0] for v in final_means]
    out['weak_test_variance_final_means'] = [v[1] for v in final_means]
    say(f"{run.name}: TV {out[f'train_variance_{layers[-1]}'][-1]:.3g} (fitted at epoch "
        f"{out['fit_epoch']}: {out['fit_train_variance']}), strong "
        f"{out['strong_test_variance'][-1]:.3g}, weak {out['weak_test_variance'][-1]:.3g}")
    return out

  return analysis


def _size_analysis(run: sweep.Run, rdir: str) -> dict[str, Any]:
  """After a size run: its train collapse from the evaluation records."""
  del run
  return fit_and_final(RunDir(rdir))


def _pretrain_analysis(config, group):
  """After pretraining, at every checkpoint: the train variance (current
  means, the super-class labels) and a linear probe's test accuracy on the
  fine-tuning task's frozen features (L-BFGS over an L2 grid chosen on a
  validation split of the fine-tuning images)."""

  def analysis(run: sweep.Run, rdir: str) -> dict[str, Any]:
    t, run_dir = run.config, RunDir(rdir)
    tr, _ = input_lib.load_data(t)
    down_train, down_test = input_lib.load_data(group.finetune)
    tv, probe = [], []
    for e in group.epochs:
      h = run_dir.features({'train': tr}, e, batch_size=t.evals.batch_size)['train']
      tv.append(_train_variance(h['penultimate'], tr))
      p = probe_layers(rdir, down_train, down_test, config.probe, layers=('penultimate',),
                       seed=run.seed, batch_size=t.evals.batch_size, epoch=e)
      probe.append(p['penultimate']['probe_top1'])
    say(f'{run.name}: checkpoint TV {[round(v, 4) for v in tv]}, probe {probe}')
    return dict(checkpoint_epochs=list(group.epochs), checkpoint_train_variance=tv,
                checkpoint_probe_accuracy=probe, **fit_and_final(run_dir))

  return analysis


def _tolerating_divergence(execute, *missing: str):
  """A setting that diverges is a result, not a crash of the study: its
  record says ``diverged`` and holds None for the ``missing`` keys."""

  def run(run: sweep.Run, rdir: str) -> dict[str, Any]:
    try:
      return dict(execute(run, rdir), diverged=False)
    except FloatingPointError as err:
      say(f'{run.name}: {err}')
      return dict({k: None for k in missing}, diverged=True)

  return run


_ACCURACIES = ('train_accuracy', 'test_accuracy')
_SIZE_KEYS = _ACCURACIES + ('train_squared_distance', 'test_squared_distance', 'epoch')
_FINETUNE = _tolerating_divergence(sweep.train(keep=('val_accuracy',) + _ACCURACIES),
                                   'val_accuracy', *_ACCURACIES)
_PRESTUDY = _tolerating_divergence(
    sweep.train(keep=_ACCURACIES + ('train_loss',), then=_prestudy),
    *_ACCURACIES, 'fit_epoch', 'fit_train_variance', 'final_train_variance')


def setting_overrides(candidate) -> dict[str, Any]:
  """The trainer overrides of a pre-study candidate ``{learning_rate,
  weight_decay, norm}`` (norm '' = none, the model's default)."""
  over = {'optimizer.learning_rate': candidate['learning_rate'],
          'optimizer.weight_decay': candidate['weight_decay']}
  if candidate['norm']:
    over['model.kwargs.norm'] = candidate['norm']
  return over


def prestudy_runs(config) -> list[sweep.Run]:
  """The pre-study: each candidate setting once, at the pre-study's seed."""
  pre, seed = config.prestudy, config.prestudy.seed
  runs = []
  for name in pre.order:  # The candidates, nearest the paper first.
    over = setting_overrides(pre.candidates[name])
    runs.append(sweep.Run(f'prestudy_{name}', _PRESTUDY,
                          sweep.with_overrides(pre.base, dict(over, seed=seed)), seed=seed,
                          overrides=over, tags=dict(kind='prestudy', setting=name)))
  return runs


def plan(config, workdir: str) -> list[sweep.Run]:
  """The study's runs: cascade seeds, train-set sizes x seeds, transfer chains."""
  runs = prestudy_runs(config)
  cascade = sweep.train(keep=_ACCURACIES + ('train_loss', 'terminal_phase_epoch'),
                        then=_cascade_analysis(config))
  c = config.cascade
  for seed in config.cascade_seeds:
    runs.append(sweep.Run(f'cascade_seed{seed}', cascade,
                          sweep.with_overrides(c, {'seed': seed}), seed=seed,
                          tags=dict(kind='cascade', model=c.model.name,
                                    dataset=c.data.name)))
  size = sweep.train(keep=_SIZE_KEYS, then=_size_analysis)
  s = config.size
  for n in config.sizes:
    for seed in config.size_seeds:
      epochs = config.size_images_seen // n  # Every size: as many images seen.
      over = {'data.examples_per_class': n // 10, 'seed': seed, 'num_epochs': epochs,
              'evals.every': max(1, epochs // 16)}
      runs.append(sweep.Run(f'size{n}_seed{seed}', size,
                            sweep.with_overrides(s, over), seed=seed,
                            overrides=dict(train_size=n),
                            tags=dict(kind='size', train_size=n, model=s.model.name,
                                      dataset=s.data.name)))
  for group, g in config.transfer.items():
    pretrain = sweep.train(keep=_ACCURACIES + ('train_loss',), then=_pretrain_analysis(config, g))
    for seed in g.seeds:
      # One chain keeps the names it had before pretraining seeds existed.
      suffix = '' if len(g.seeds) == 1 else f'_seed{seed}'
      pre = f'{group}_pretrain{suffix}'
      runs.append(sweep.Run(pre, pretrain, sweep.with_overrides(g.pretrain, {'seed': seed}),
                            seed=seed, tags=dict(kind='pretrain', group=group)))
      pdir = os.path.abspath(sweep.run_dir(workdir, pre))
      for e in g.epochs:
        for lr in g.lrs:
          over = {'init.workdir': pdir, 'init.epoch': e, 'optimizer.learning_rate': lr,
                  'seed': seed}
          runs.append(sweep.Run(
              f'{group}_finetune{suffix}_e{e}_lr{lr:g}', _FINETUNE,
              sweep.with_overrides(g.finetune, over), seed=seed,
              overrides=dict(init_epoch=e, learning_rate=lr), deps=(pre,),
              tags=dict(kind='finetune', group=group, init_epoch=e, learning_rate=lr)))
  return runs
