"""Checkpoints of trainer runs: one manager, safe restore, models and features.

A run's ``workdir/checkpoints/<epoch>/`` holds the trainer state ``{'step',
'params', 'rest', 'opt_state'}`` (orbax, `ocp.args.StandardSave`).

- `manager`: the one `ocp.CheckpointManager` factory of the code base.
- `restore_state`: the latest restorable checkpoint into a template state; a
  damaged checkpoint is reported in one line and the previous one is used.
- `restore_model`: a finished or running run's model (eval mode) from its
  ``config.json`` and checkpoint, parameters only: the model is built
  abstractly (`nnx.eval_shape`) and filled by an orbax partial restore, so
  neither the optimiser nor the data set is rebuilt.
- `extract_features`: features of any layers of a data set through the
  evaluator's mesh-sharded forward path.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

from absl import logging
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from nc_jax import data
from nc_jax import models
from nc_jax.train import input as input_lib
from nc_jax.train.config import check_config, default_config


class CheckpointError(RuntimeError):
  """No checkpoint of a run could be restored (the message says why)."""


def manager(workdir: str, *, keep: int | None = None,
            create: bool = True) -> ocp.CheckpointManager:
  """The orbax manager of ``workdir/checkpoints`` (keeps ``keep``; None: all)."""
  return ocp.CheckpointManager(
      os.path.abspath(os.path.join(workdir, 'checkpoints')),
      options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=create))


def epochs(workdir: str) -> list[int]:
  """Epochs with a checkpoint under ``workdir/checkpoints``, ascending."""
  if not os.path.isdir(os.path.join(workdir, 'checkpoints')):
    return []
  mngr = manager(workdir, create=False)
  try:
    return sorted(mngr.all_steps())
  finally:
    mngr.close()


def _one_line(err: BaseException) -> str:
  text = f'{type(err).__name__}: {err}'.strip().splitlines()
  return text[0][:300] if text else type(err).__name__


def restore_state(mngr: ocp.CheckpointManager, like: Any, *,
                  epoch: int | None = None) -> tuple[int, Any]:
  """(epoch, state) of the newest checkpoint that restores into ``like``.

  Args:
    mngr: the run's manager.
    like: a template state (arrays or `jax.ShapeDtypeStruct` with shardings).
    epoch: restore exactly this epoch instead (no fallback).

  Returns:
    ``(0, None)`` when there is no checkpoint.

  Raises:
    CheckpointError: checkpoints exist but none restores (one line each).
  """
  target = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
  return _restore_newest(mngr, ocp.args.StandardRestore(target), epoch=epoch,
                         warn=True)


def _restore_newest(mngr: ocp.CheckpointManager, args, *, epoch: int | None,
                    warn: bool) -> tuple[int, Any]:
  """(epoch, restored) of the newest checkpoint that ``args`` restores.

  ``epoch`` restores exactly that one (no fallback). A checkpoint that fails
  is skipped (and reported in one line with ``warn``). Returns ``(0, None)``
  when there is no checkpoint.

  Raises:
    CheckpointError: ``epoch`` is not saved, or no checkpoint restores.
  """
  steps = sorted(mngr.all_steps(), reverse=True)
  if epoch is not None:
    if epoch not in steps:
      raise CheckpointError(f'no checkpoint of epoch {epoch} in {mngr.directory}')
    steps = [epoch]
  failures = []
  for step in steps:
    try:
      return step, mngr.restore(step, args=args)
    except Exception as err:  # pylint: disable=broad-except
      failures.append(f'{mngr.directory}/{step}: {_one_line(err)}')
      if warn:
        logging.warning('checkpoint %s/%d cannot be restored (%s); trying the '
                        'previous one', mngr.directory, step, _one_line(err))
        print(f'nc_jax: checkpoint {mngr.directory}/{step} cannot be restored '
              f'({_one_line(err)}); trying the previous one', flush=True)
  if failures:
    raise CheckpointError('no checkpoint restores: ' + '; '.join(failures))
  return 0, None


# ---------------------------------------------------------------------------
# Configs and models of finished runs.
# ---------------------------------------------------------------------------


def config_from_dict(raw: Mapping[str, Any]) -> ml_collections.ConfigDict:
  """A trainer config from a config.json dict (lists back to tuples)."""

  def convert(v):
    if isinstance(v, Mapping):
      return ml_collections.ConfigDict({k: convert(x) for k, x in v.items()})
    if isinstance(v, list):
      return tuple(convert(x) for x in v)
    return v

  config = default_config()
  with config.unlocked():
    for key, value in raw.items():
      if key in config and isinstance(config[key], ml_collections.ConfigDict):
        config[key] = convert(value) if value else ml_collections.ConfigDict()
      else:
        config[key] = convert(value)
  check_config(config)
  return config


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """A trainer run's ``config.json`` as a trainer config."""
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path} does not exist: {workdir} is not a '
                            'trainer run')
  with open(path) as f:
    return config_from_dict(json.load(f))


def restore_model(workdir: str, epoch: int | None = None, *,
                  input_shape: Sequence[int] | None = None,
                  num_classes: int | None = None) -> models.NCModel:
  """The model of a trainer run at ``epoch`` (default: its latest), eval mode.

  Only parameters and batch statistics are read (an orbax partial restore
  into an abstract model from `nnx.eval_shape`): no optimiser state and no
  data set is built.

  Args:
    workdir: a run of `nc_jax.train.train_and_evaluate`.
    epoch: which checkpoint; None: the latest that restores.
    input_shape, num_classes: the model's input shape and classes (default:
      the run's ``model.json``).

  Raises:
    CheckpointError: no (such) checkpoint restores.
  """
  # Local import: the trainer imports this module.
  from nc_jax.train import finetune  # pylint: disable=g-import-not-at-top
  config = read_config(workdir)
  if input_shape is None or num_classes is None:
    info = finetune.read_model_info(workdir)
    input_shape = info['input_shape'] if input_shape is None else input_shape
    num_classes = info['num_classes'] if num_classes is None else num_classes
  abstract = nnx.eval_shape(lambda: finetune.build(
      config, tuple(input_shape), num_classes, restore=False))
  graphdef, params, rest = nnx.split(abstract, nnx.Param, ...)
  replicated = jax.sharding.NamedSharding(input_lib.make_mesh(),
                                          jax.sharding.PartitionSpec())
  target = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated),
      {'params': params, 'rest': rest})
  mngr = manager(workdir, create=False)
  try:
    _, restored = _restore_newest(mngr, ocp.args.PyTreeRestore(
        item=target, partial_restore=True,
        restore_args=ocp.checkpoint_utils.construct_restore_args(target)),
        epoch=epoch, warn=False)
  finally:
    mngr.close()
  if restored is None:
    raise CheckpointError(f'no checkpoint in {workdir}/checkpoints')
  model = nnx.merge(graphdef, restored['params'], restored['rest'])
  model.eval()
  return model


# ---------------------------------------------------------------------------
# Features.
# ---------------------------------------------------------------------------


def extract_features(model: models.NCModel, ds: data.Dataset, *,
                     normalize, layers: Sequence[str] = ('penultimate',),
                     batch_size: int = 1000,
                     mesh: jax.sharding.Mesh | None = None
                     ) -> dict[str, np.ndarray]:
  """Eval-mode features of every example of ``ds``: ``{layer: [N, d]}``.

  The forward pass is the evaluator's (`tracking.forward`): padded batches
  sharded over ``mesh`` (default: every device). ``'logits'`` may be asked
  for as a layer. ``batch_size`` must divide by the number of devices.

  Args:
    model: any `NCModel` (set to eval mode).
    ds: the data set.
    normalize: the run's input normalisation (`finetune.normalizer`).
    layers: feature names (`models.feature_names`) and/or ``'logits'``.
    batch_size: examples per forward pass.
    mesh: a ``'data'`` mesh.
  """
  from nc_jax.train import tracking  # pylint: disable=g-import-not-at-top
  mesh = input_lib.make_mesh() if mesh is None else mesh
  if batch_size % mesh.size:
    batch_size += mesh.size - batch_size % mesh.size
  model.eval()
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  forward = tracking.forward_fn(graphdef, normalize, tuple(layers))
  out = {k: [] for k in layers}
  for idx, valid in input_lib.eval_indices(len(ds), batch_size):
    (images,) = input_lib.global_batch(mesh, ds.images[idx])
    got = forward(params, rest, images)
    for k in layers:
      out[k].append(np.asarray(got[k])[:valid])
  return {k: np.concatenate(v) for k, v in out.items()}
