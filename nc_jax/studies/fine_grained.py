"""Fine-grained structure inside collapsed classes (paper 004), on the trainer.

`analyze_run` reads a finished trainer run trained on coarse labels
(``data.label_map='mod:<C~>'``, every analysed epoch checkpointed) and measures,
over the ORIGINAL classes: the class distance matrix and its MSDR at chosen
epochs, t-SNE views of each super-class, Cluster-and-Linear-Probe (CLP) on
the original test labels next to a linear probe trained with the true
labels. `fine_grained_study` is the standalone study behind
``experiments/fine_grained.py``: train, then `analyze_run`.

References:
  Paper 004 secs 4.1-4.3 (Figs 3-12); SPEC.md "Fine-grained structure".
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import ml_collections
import numpy as np

from nc_jax import data
from nc_jax import metrics
from nc_jax import plots
from nc_jax import train
from nc_jax.probes import clp as clp_lib
from nc_jax.probes import linear
from nc_jax.rundir import RunDir
from nc_jax.studies.common import features_at, l2_grid, say
from nc_jax.train import input as input_lib
from nc_jax.workdir import Workdir


def analysis_sets(tcfg, num_examples: int) -> tuple[data.Dataset, data.Dataset]:
  """(a fixed random train subset of ``num_examples``, the test set) of a config."""
  train_ds, test_ds = input_lib.load_data(tcfg)
  rng = np.random.default_rng(tcfg.seed)
  n = min(num_examples or len(train_ds), len(train_ds))
  return train_ds.subset(np.sort(rng.choice(len(train_ds), n, replace=False))), test_ds


def distances_over_epochs(run_dir: str, tcfg, epochs: Sequence[int],
                          sub_ds: data.Dataset, fine_labels: np.ndarray,
                          num_fine: int, groups: np.ndarray, *, with_nc1: bool = False):
  """Class distance matrices over the ``fine_labels`` classes, and MSDR by epoch.

  Args:
    groups: the super-class of each of the ``num_fine`` classes (MSDR groups).
    with_nc1: also return NC1 (penultimate) over the ``fine_labels`` classes
      by epoch (SPEC.md `nc1`).

  Returns:
    ``(distances, msdr)`` (or ``(distances, msdr, nc1)``), dicts by epoch.
  """
  saved = set(RunDir(run_dir).checkpoint_epochs)
  missing = [e for e in epochs if e not in saved]
  if missing:
    raise ValueError(f'{run_dir}: no checkpoint for epochs {missing} (saved: '
                     f'{sorted(saved)}); list them in the trainer config\'s '
                     'checkpoint.epochs (saved and kept for good; epoch 0, the '
                     'initialisation, is saved only with checkpoint.init)')
  distances, msdr, nc1 = {}, {}, {}
  for epoch in sorted(epochs):
    h = features_at(run_dir, epoch, {'train': sub_ds},
                    batch_size=tcfg.evals.batch_size)['train']['penultimate']
    d = np.asarray(metrics.class_distance_matrix(h, fine_labels,
                                                 num_classes=num_fine))
    distances[epoch], msdr[epoch] = d, float(metrics.msdr(d, groups))
    if with_nc1:
      nc1[epoch] = float(metrics.collapse_report(h, fine_labels, num_classes=num_fine)['nc1'])
    say(f'{os.path.basename(run_dir)} epoch {epoch}: MSDR {msdr[epoch]:.4g}')
  return (distances, msdr, nc1) if with_nc1 else (distances, msdr)


def analyze_run(run_dir: str, tcfg, *, analysis_epochs: Sequence[int],
                analysis_train_examples: int, clp_cfg, probe_cfg,
                out: Workdir, prefix: str = '') -> dict[str, Any]:
  """Distances over epochs, t-SNE views, CLP and a true-label probe of a coarse run.

  Figures go to ``out`` as ``<prefix>class_distances.png``,
  ``<prefix>tsne_superclasses.png`` and ``<prefix>clp.png``.
  """
  sub_ds, test_ds = analysis_sets(tcfg, analysis_train_examples)
  f2c = data.coarse_table(sub_ds)  # y mod C~, or any other pairing
  num_fine, num_coarse = len(f2c), sub_ds.num_classes
  distances, msdr = distances_over_epochs(
      run_dir, tcfg, analysis_epochs, sub_ds, sub_ds.fine_labels, num_fine, f2c)
  last = max(analysis_epochs)
  feats = features_at(run_dir, last, {'train': sub_ds, 'test': test_ds},
                      batch_size=tcfg.evals.batch_size)
  h_train, h_test = feats['train']['penultimate'], feats['test']['penultimate']
  probe_kw = dict(l2_grid=l2_grid(probe_cfg), val_fraction=probe_cfg.val_fraction,
                  max_iters=probe_cfg.max_iters)
  lpo = linear.linear_probe(h_train, sub_ds.fine_labels, h_test,
                            test_ds.fine_labels, num_classes=num_fine,
                            seed=tcfg.seed, **probe_kw)
  say(f'linear probe with the true {num_fine} labels: {lpo.top1:.4f}')
  res = clp_lib.cluster_and_linear_probe(
      h_train, sub_ds.labels, h_test, test_ds.fine_labels, fine_to_coarse=f2c,
      embedding=clp_cfg.embedding,
      max_per_superclass=clp_cfg.max_per_superclass or None,
      train_fine_labels=sub_ds.fine_labels, seed=tcfg.seed,
      perplexity=clp_cfg.perplexity, kmeans_restarts=clp_cfg.kmeans_restarts,
      num_threads=clp_cfg.num_threads or None, **probe_kw)
  say(f'CLP: {res.accuracy:.4f} (train label reconstruction '
      f'{res.reconstruction_accuracy:.4f})')
  names = _fine_names(sub_ds, f2c)
  plots.distance_heatmaps(
      out.file(f'{prefix}class_distances.png'), distances, fine_to_coarse=f2c,
      class_names=names, msdr=msdr,
      title=f'Class distances (train, penultimate) under {num_coarse} coarse '
            f'labels, {sub_ds.name}')
  fine_used = sub_ds.fine_labels[res.train_indices]
  coarse_used = sub_ds.labels[res.train_indices]
  plots.superclass_views(
      out.file(f'{prefix}tsne_superclasses.png'), res.embeddings,
      {s: fine_used[coarse_used == s] for s in res.embeddings},
      class_names=names, title=f'{clp_cfg.embedding} of each super-class at '
                               f'epoch {last}')
  summary = RunDir(run_dir).summary
  plots.bars(out.file(f'{prefix}clp.png'), {
      f'coarse model\n({num_coarse}-way test)': summary['test_accuracy'],
      f'CLP\n({num_fine}-way)': res.accuracy,
      f'linear probe,\ntrue labels ({num_fine}-way)': lpo.top1},
      title='Recovering the original classes')
  return dict(
      coarse_test_accuracy=summary['test_accuracy'],
      coarse_train_accuracy=summary['train_accuracy'],
      coarse_train_nc1=summary.get('train_nc1'),
      terminal_phase_epoch=summary.get('terminal_phase_epoch'),
      msdr_by_epoch={str(e): v for e, v in msdr.items()},
      clp_accuracy=res.accuracy, clp_mean_per_class=res.mean_per_class,
      clp_reconstruction_accuracy=res.reconstruction_accuracy,
      clp_mapping=res.mapping, clp_l2=res.probe.l2,
      lpo_accuracy=lpo.top1, lpo_mean_per_class=lpo.mean_per_class,
      lpo_l2=lpo.l2, analysis_epoch=last,
      analysis_train_examples=len(sub_ds),
      clp_train_examples=len(res.train_indices))


def _fine_names(ds: data.Dataset, f2c: np.ndarray) -> tuple[str, ...]:
  """Names of the original classes: split from the coarse names ('0+5')."""
  parts = [n.split('+') for n in ds.class_names]
  names = [str(i) for i in range(len(f2c))]
  for coarse, members in enumerate(parts):
    fine = np.flatnonzero(f2c == coarse)
    for f, n in zip(fine, members):
      names[f] = n
  return tuple(names)


def fine_grained_study(config: ml_collections.ConfigDict,
                       workdir: str) -> dict[str, Any]:
  """Coarse-label training, then `analyze_run` (experiments/fine_grained.py).

  Args:
    config: see ``configs/fine_grained_mnist.py``: ``train`` (a trainer
      config with ``data.label_map='mod:<C~>'``), ``analysis_epochs``,
      ``analysis_train_examples``, ``clp`` and ``probe``.
    workdir: output folder; the coarse training run goes to ``coarse/``.
  """
  wd = Workdir(workdir)
  wd.write_config(config)
  coarse_dir = os.path.join(workdir, 'coarse')
  say(f'training on coarse labels ({config.train.data.label_map}) -> {coarse_dir}')
  train.train_and_evaluate(config.train, coarse_dir)
  summary = analyze_run(coarse_dir, config.train,
                        analysis_epochs=config.analysis_epochs,
                        analysis_train_examples=config.analysis_train_examples,
                        clp_cfg=config.clp, probe_cfg=config.probe, out=wd)
  wd.write_summary(summary)
  return summary
