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
from nc_jax.studies.common import say
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
                              batch_size=t.evals.batch_size) for e in epochs]
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
      h = run_dir.features({'train': tr}, e, batch_size=t.evals.batch_size)['train']
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
  """The study's runs: cascade seeds, train-set sizes x seeds, transfer chains."""
  runs = []
  cascade = sweep.train(keep=_ACCURACIES + ('train_loss', 'terminal_phase_epoch'),
                        then=_cascade_analysis(config))
  c = config.cascade
  for seed in config.cascade_seeds:
    runs.append(sweep.Run(f'cascade_seed{seed}', cascade,
                          sweep.with_overrides(c, {'seed': seed}), seed=seed,
                          tags=dict(kind='cascade', model=c.model.name,
                                    dataset=c.data.name)))
  size = sweep.train(keep=_SIZE_KEYS, then=_final_running_loss)
  s = config.size
  for n in config.sizes:
    for seed in config.size_seeds:
      over = {'data.examples_per_class': n // 10, 'seed': seed}
      runs.append(sweep.Run(f'size{n}_seed{seed}', size,
                            sweep.with_overrides(s, over), seed=seed,
                            overrides=dict(train_size=n),
                            tags=dict(kind='size', train_size=n, model=s.model.name,
                                      dataset=s.data.name)))
  for group, g in config.transfer.items():
    pretrain = sweep.train(keep=_ACCURACIES + ('train_loss',), then=_pretrain_analysis(g))
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
