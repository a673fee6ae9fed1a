"""Checkpoints of trainer runs (orbax): save, list, restore safely.

A run's ``workdir/checkpoints/<epoch>/`` holds the trainer state ``{'step',
'params', 'rest', 'opt_state'}`` (orbax, `ocp.args.StandardSave`).

- `manager`: the one `ocp.CheckpointManager` factory of the code base.
- `epochs`: the epochs with a checkpoint.
- `restore_state`: the latest restorable checkpoint into a template state; a
  damaged checkpoint is reported in one line and the previous one is used.
- `restore_partial`: some entries of a checkpoint (e.g. parameters without
  the optimiser state), what `nc_jax.train.model.from_run` builds on.

A run's model and features: `nc_jax.train.model`. ``read_config`` is
re-exported from `nc_jax.train.config` for existing callers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from absl import logging
import jax
import orbax.checkpoint as ocp

from nc_jax.train.config import read_config  # pylint: disable=unused-import


class CheckpointError(RuntimeError):
  """No checkpoint of a run could be restored (the message says why)."""


def manager(workdir: str, *, keep: int | None = None,
            keep_epochs: Sequence[int] = (),
            create: bool = True) -> ocp.CheckpointManager:
  """The orbax manager of ``workdir/checkpoints``.

  Keeps the latest ``keep`` checkpoints (None: all) and, for good, those of
  ``keep_epochs`` (an orbax preservation policy: `LatestN` or `CustomSteps`).
  """
  policies = ocp.checkpoint_managers
  policy = None
  if keep is not None:
    policy = policies.LatestN(keep)
    if keep_epochs:
      policy = policies.AnyPreservationPolicy(
          [policy, policies.CustomSteps(list(keep_epochs))])
  return ocp.CheckpointManager(
      os.path.abspath(os.path.join(workdir, 'checkpoints')),
      options=ocp.CheckpointManagerOptions(preservation_policy=policy,
                                           create=create))


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


def restore_partial(workdir: str, like: Any, *,
                    epoch: int | None = None) -> tuple[int, Any]:
  """(epoch, the entries of ``like``) from a run's newest restorable checkpoint.

  An orbax partial restore: only the top-level entries ``like`` names are
  read (e.g. ``{'params', 'rest'}`` without ``'opt_state'``), with the
  shapes, dtypes and shardings of its leaves (`jax.ShapeDtypeStruct`).

  Args:
    workdir: a trainer run.
    like: the template of the entries to read.
    epoch: read exactly this epoch (no fallback); None: the newest that
      restores.

  Raises:
    CheckpointError: no (such) checkpoint restores, or there is none.
  """
  mngr = manager(workdir, create=False)
  try:
    got, restored = _restore_newest(mngr, ocp.args.PyTreeRestore(
        item=like, partial_restore=True,
        restore_args=ocp.checkpoint_utils.construct_restore_args(like)),
        epoch=epoch, warn=False)
  finally:
    mngr.close()
  if restored is None:
    raise CheckpointError(f'no checkpoint in {workdir}/checkpoints')
  return got, restored
