"""What every study shares: progress, features of checkpoints, layer-wise probes."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import ml_collections
import numpy as np

from nc_jax import data
from nc_jax import metrics
from nc_jax.probes import linear
from nc_jax.rundir import RunDir


def say(msg: str) -> None:
  """A progress line on stdout, flushed (studies run for minutes to hours)."""
  print(msg, flush=True, file=sys.stdout)


def l2_grid(probe: ml_collections.ConfigDict) -> np.ndarray:
  """The probe's L2 grid from ``probe.l2_grid_size``, ``l2_min``, ``l2_max``."""
  return linear.default_l2_grid(probe.l2_grid_size, probe.l2_min, probe.l2_max)


def features_at(run_dir: str, epoch: int | None, datasets: dict[str, data.Dataset], *,
                layers: Sequence[str] = ('penultimate',),
                batch_size: int = 1000) -> dict[str, dict[str, np.ndarray]]:
  """{name: {layer: [N, d]}} of a trainer run's model at ``epoch`` (`RunDir.features`)."""
  return RunDir(run_dir).features(datasets, epoch, layers=tuple(layers),
                                  batch_size=batch_size)


def probe_layers(run_dir: str, train_ds: data.Dataset, test_ds: data.Dataset, probe_cfg, *,
                 layers: Sequence[str], seed: int, batch_size: int = 1000,
                 epoch: int | None = None) -> dict[str, dict[str, float]]:
  """Linear probes of a trainer run's frozen features, one per layer.

  Args:
    run_dir: the trainer run (its checkpoint at ``epoch``, default the latest).
    train_ds, test_ds: the probe's data (e.g. a downstream task).
    probe_cfg: ``l2_grid_size``, ``l2_min``, ``l2_max``, ``val_fraction``,
      ``max_iters`` and optionally ``grid_batch`` (L2 values solved at once,
      `linear.linear_probe`'s ``batch_size``; default all).
    layers: feature names to probe.
    seed: the probe's validation-split seed.
    batch_size: examples per forward pass.

  Returns:
    ``{layer: {probe_top1, probe_mean_per_class, probe_l2, downstream_nc1,
    downstream_vci}}``, the last two the collapse of ``train_ds``'s features.
  """
  epoch = max(RunDir(run_dir).checkpoint_epochs) if epoch is None else epoch
  f = features_at(run_dir, epoch, {'train': train_ds, 'test': test_ds},
                  layers=tuple(layers), batch_size=batch_size)
  res = linear.layerwise_probe(
      f['train'], train_ds.labels, f['test'], test_ds.labels,
      num_classes=train_ds.num_classes, l2_grid=l2_grid(probe_cfg),
      val_fraction=probe_cfg.val_fraction, max_iters=probe_cfg.max_iters, seed=seed,
      batch_size=probe_cfg.get('grid_batch'))
  out = {}
  for layer in layers:
    m = metrics.class_moments(f['train'][layer], train_ds.labels,
                              num_classes=train_ds.num_classes)
    r = res[layer]
    out[layer] = dict(probe_top1=r.top1, probe_mean_per_class=r.mean_per_class,
                      probe_l2=r.l2, downstream_nc1=float(metrics.nc1(m)),
                      downstream_vci=float(metrics.vci(m)))
  return out
