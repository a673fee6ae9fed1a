"""What every study shares: progress messages, features of checkpoints, probe grids."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import ml_collections
import numpy as np

from nc_jax import data
from nc_jax.probes import linear
from nc_jax.train import checkpoints
from nc_jax.train import finetune


def say(msg: str) -> None:
  """A progress line on stdout, flushed (studies run for minutes to hours)."""
  print(msg, flush=True, file=sys.stdout)


def l2_grid(probe: ml_collections.ConfigDict) -> np.ndarray:
  """The probe's L2 grid from ``probe.l2_grid_size``, ``l2_min``, ``l2_max``."""
  return linear.default_l2_grid(probe.l2_grid_size, probe.l2_min, probe.l2_max)


def features_at(run_dir: str, epoch: int, datasets: dict[str, data.Dataset], *,
                layers: Sequence[str] = ('penultimate',),
                batch_size: int = 1000) -> dict[str, dict[str, np.ndarray]]:
  """{name: {layer: [N, d]}} of a trainer run's model at ``epoch``."""
  info = finetune.read_model_info(run_dir)
  model = checkpoints.restore_model(run_dir, epoch)
  normalize = _normalizer(tuple(info['mean']), tuple(info['std']))
  return {name: checkpoints.extract_features(
      model, ds, normalize=normalize, layers=tuple(layers),
      batch_size=batch_size) for name, ds in datasets.items()}


_NORMALIZERS: dict[tuple, Any] = {}


def _normalizer(mean: tuple, std: tuple):
  # One function object per statistics: the compiled forward pass is cached
  # by it, so many checkpoints compile once.
  key = (tuple(np.ravel(mean)), tuple(np.ravel(std)))
  if key not in _NORMALIZERS:
    _NORMALIZERS[key] = finetune.normalizer(mean, std)
  return _NORMALIZERS[key]
