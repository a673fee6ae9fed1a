"""Resume safety: the same config, a clear stop on NaN, runs that ended early.

- `check_resume`: a rerun into a workdir holding another config's run is
  refused (naming the differing keys) unless ``on_config_change`` says
  ``'restart'`` or ``'continue'``; keys of `config.RESUME_SAFE` may differ,
  and a run written in the flat layout is compared through its mapping to
  the groups (`nc_jax.train.legacy`).
- `nonfinite_error`: the one-paragraph error of a NaN/Inf training loss,
  naming the last good checkpoint.
- `reached_train_loss`: whether a run stopped through ``stop_at_train_loss``.
(The fallback past a damaged checkpoint is `checkpoints.restore_state`.)
"""

from __future__ import annotations

import json
import os
import shutil

from absl import logging
import orbax.checkpoint as ocp

from nc_jax.train import legacy
from nc_jax.train.config import default_config, flatten, resume_safe
from nc_jax.workdir import LOCK, Workdir, to_python


def check_resume(config, workdir: str) -> None:
  """Refuses to resume a run in ``workdir`` under a different config.

  Keys of `RESUME_SAFE` may differ, and so may keys the old run's
  config.json lacks (added to the trainer since) when they hold their
  default. ``on_config_change='restart'``
  deletes the old run's outputs first; ``'continue'`` resumes anyway.

  Raises:
    ValueError: the configs differ; the message names the keys.
  """
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    return
  with open(path) as f:
    old = json.load(f)
  if legacy.is_flat(old):
    old = legacy.to_groups(old)
  old = flatten(old)
  new = flatten(json.loads(json.dumps(to_python(config))))
  # A key the trainer gained after the run started, set to its default, is
  # no change: the old run ran without the feature, which the default means.
  defaults = flatten(json.loads(json.dumps(to_python(default_config()))))
  for k in set(new) - set(old):
    if new[k] == defaults.get(k):
      old[k] = new[k]
  diff = sorted(k for k in set(old) | set(new)
                if not resume_safe(k) and old.get(k) != new.get(k))
  if not diff or config.on_config_change == 'continue':
    return
  if config.on_config_change == 'restart':
    logging.warning('config changed (%s): deleting the old run in %s', diff,
                    workdir)
    for name in os.listdir(workdir):
      if name == LOCK:  # Ours (`train_and_evaluate` holds it).
        continue
      target = os.path.join(workdir, name)
      shutil.rmtree(target) if os.path.isdir(target) else os.remove(target)
    return
  shown = ', '.join(f'{k}: {old.get(k)!r} -> {new.get(k)!r}' for k in diff[:8])
  raise ValueError(
      f'{workdir} holds a run with a different config ({shown}'
      f'{", ..." if len(diff) > 8 else ""}). Use another --workdir, or set '
      "--config.on_config_change=restart (delete it and start afresh) or "
      "=continue (resume under the new config).")


def nonfinite_error(epoch: int, step: int,
                     mngr: ocp.CheckpointManager) -> FloatingPointError:
  last = mngr.latest_step()
  kept = (f'the last good checkpoint (epoch {last}) is kept in '
          f'{mngr.directory}; rerunning resumes from it'
          if last is not None else 'no checkpoint had been written yet')
  return FloatingPointError(
      f'training loss is NaN/Inf in epoch {epoch + 1} (by step {step}): run '
      f'stopped; {kept}. Lower optimizer.learning_rate, add '
      'schedule.warmup_epochs or set optimizer.grad_clip_norm before resuming.')


def reached_train_loss(config, wd: Workdir | None, epoch: int) -> bool:
  """Whether the run stopped at ``epoch`` through ``stop_at_train_loss``."""
  if not config.stop_at_train_loss or wd is None:
    return False
  fits = [r for r in wd.read_metrics()
          if 'running_loss' in r and r['epoch'] == epoch]
  return bool(fits) and fits[-1]['running_loss'] < config.stop_at_train_loss
