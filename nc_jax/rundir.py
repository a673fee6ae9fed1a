"""A trainer run on disk, read one way: `RunDir`.

Example:
  >>> run = RunDir('runs/pretrain')
  >>> run.config.model.name                   # config.json, a trainer config
  >>> run.model_info['feature_dims']          # model.json
  >>> run.eval(split='test', layer='penultimate')[-1]['accuracy']
  >>> epochs, nc1 = run.series('nc1', split='train')
  >>> run.summary['test_accuracy']            # summary.json (or computed)
  >>> run.checkpoint_epochs                   # [0, 10, 20]
  >>> model = run.model(epoch=10)             # eval mode, parameters only
  >>> feats = run.features({'train': ds}, epoch=10, layers=('penultimate',))
  >>> feats['train']['penultimate'].shape     # (N, d)

The records' schema is `nc_jax.records`. ``config``, ``model_info``,
``records`` and ``summary`` are read on first access and kept (to see what a
run in progress logged since, make a new `RunDir`); ``checkpoint_epochs`` is
listed on every access. Records and summary need NumPy only; the config,
checkpoints, models and features import the trainer (`nc_jax.train`) on first
use, so ``import nc_jax.rundir`` stays cheap.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nc_jax import records as records_lib
from nc_jax import workdir as workdir_lib

if TYPE_CHECKING:
  from nc_jax.train.model import Normalizer

TASK = records_lib.TASK


class RunDir:
  """The outputs of one `nc_jax.train.train_and_evaluate` run (read only).

  Attributes:
    path: the run's workdir.
  """

  def __init__(self, path: str | os.PathLike[str]):
    self.path = os.fspath(path)

  def __repr__(self) -> str:
    return f'RunDir({self.path!r})'

  def file(self, name: str) -> str:
    """The path of ``name`` in the run's workdir."""
    return os.path.join(self.path, name)

  # ---- Files.

  @functools.cached_property
  def config(self):
    """The run's ``config.json`` as a trainer config (`ml_collections`)."""
    from nc_jax.train import config as config_lib  # pylint: disable=g-import-not-at-top
    return config_lib.read_config(self.path)

  @functools.cached_property
  def model_info(self) -> dict[str, Any]:
    """The run's ``model.json``: input_shape, num_classes, feature_dims, mean,
    std, dataset, class_names."""
    from nc_jax.train import model as model_lib  # pylint: disable=g-import-not-at-top
    return model_lib.read_model_info(self.path)

  @functools.cached_property
  def records(self) -> list[dict[str, Any]]:
    """Every record of ``metrics.jsonl`` in file order (`nc_jax.records`)."""
    return workdir_lib.read_jsonl(self.file(workdir_lib.METRICS))

  @functools.cached_property
  def summary(self) -> dict[str, Any]:
    """``summary.json``; computed from the records (`records.summarize`) when
    the run has not written it (it stopped early or is still running)."""
    path = self.file('summary.json')
    if os.path.exists(path):
      with open(path) as f:
        return json.load(f)
    return records_lib.summarize(self.records)

  # ---- Records.

  def eval(self, *, split: str | None = None, layer: str | None = None,
           labels: str | None = TASK) -> list[dict[str, Any]]:
    """Evaluation records of a split, layer and label set, in epoch order.

    Args:
      split: ``'train'``, ``'test'`` or a ``config.evals.sets`` name; None:
        any.
      layer: a tracked layer; None: any.
      labels: a label set (`TASK`: the training labels; ``'clean'``,
        ``'fine'``, ``'coarse'``); None: any.
    """
    return records_lib.select(self.records, split=split, layer=layer,
                              labels=labels)

  def last(self, split: str, *, labels: str = TASK) -> dict[str, dict]:
    """``{layer: the latest evaluation record}`` of ``split``."""
    return records_lib.last(self.records, split=split, labels=labels)

  def series(self, key: str, *, split: str | None = 'train',
             layer: str = 'penultimate', labels: str = TASK
             ) -> tuple[np.ndarray, np.ndarray]:
    """(epochs [T], values [T]) of one metric; ``split=None``: the fit records'
    (``running_loss``, ``learning_rate``, ...). See `records.series`."""
    return records_lib.series(self.records, key, split=split, layer=layer,
                              labels=labels)

  @property
  def fits(self) -> list[dict[str, Any]]:
    """The fit records (one per trained epoch), in epoch order."""
    return records_lib.fits(self.records)

  # ---- Checkpoints, models, features.

  @property
  def checkpoint_epochs(self) -> list[int]:
    """Epochs with a checkpoint, ascending (listed on every access)."""
    from nc_jax.train import checkpoints  # pylint: disable=g-import-not-at-top
    return checkpoints.epochs(self.path)

  def model(self, epoch: int | None = None):
    """The run's `nc_jax.models.NCModel` at ``epoch`` in eval mode.

    Parameters and batch statistics only (`nc_jax.train.model.from_run`).

    Args:
      epoch: a checkpointed epoch; None: the latest that restores.

    Raises:
      nc_jax.train.CheckpointError: no (such) checkpoint restores.
    """
    from nc_jax.train import model as model_lib  # pylint: disable=g-import-not-at-top
    return model_lib.from_run(self.path, epoch)

  @property
  def normalize(self) -> Normalizer:
    """The run's input normalisation ``x -> (x - mean) / std``: a `Normalizer`
    (a pytree of the two arrays), the ``normalize`` of `extract_features`."""
    from nc_jax.train import model as model_lib  # pylint: disable=g-import-not-at-top
    info = self.model_info
    return model_lib.normalizer(info['mean'], info['std'])

  def features(self, datasets: Mapping[str, Any], epoch: int | None = None, *,
               layers: Sequence[str] = ('penultimate',),
               batch_size: int = 1000) -> dict[str, dict[str, np.ndarray]]:
    """``{name: {layer: [N, d]}}``: eval-mode features of data sets.

    The model at ``epoch`` is restored once and run over each data set
    through the evaluator's mesh-sharded forward pass
    (`nc_jax.train.model.extract_features`).

    Args:
      datasets: ``{name: nc_jax.data.Dataset}``.
      epoch: a checkpointed epoch; None: the latest that restores.
      layers: feature names (``model_info['feature_dims']``) and/or
        ``'logits'``.
      batch_size: examples per forward pass.
    """
    from nc_jax.train import model as model_lib  # pylint: disable=g-import-not-at-top
    model, normalize = self.model(epoch), self.normalize
    return {name: model_lib.extract_features(
        model, ds, normalize=normalize, layers=tuple(layers),
        batch_size=batch_size) for name, ds in datasets.items()}
