"""Metric writers: a run's records, as they are logged, beside ``metrics.jsonl``.

``metrics.jsonl`` (`nc_jax.workdir.Workdir.log`) is the source of truth: every
summary, plot and resume reads it. The writers here copy each record to the
tools researchers compare runs in while they go:

- ``'tensorboard'``: event files under ``<workdir>/tensorboard`` (tensorboardX,
  no TensorFlow needed), one scalar per number of a record, tagged
  ``<split>/<layer>/<metric>`` (``train/penultimate/nc1``; a label set other
  than the task's adds itself: ``test/coarse/penultimate/nc1``) and
  ``progress/<key>`` for the per-epoch training records (``running_loss``,
  ``learning_rate``, ...), at the record's optimiser step.
- ``'wandb'``: the same tags to Weights & Biases, when ``wandb`` is installed
  (``WANDB_MODE=offline`` works without a network).

Only process 0 writes (the trainer builds writers there alone). A resumed run
drops the TensorBoard events after its checkpoint's step (``purge_step``), as
`Workdir.truncate_metrics` drops the records, so a curve has no doubles; W&B
gets one run per process (the resumed one starts after the checkpoint).

Example:
  >>> ws = writers.create(('tensorboard',), '/tmp/run', config={'lr': 0.1})
  >>> ws.write(dict(epoch=1, step=100, split='train', layer='penultimate', nc1=0.3))
  >>> ws.close()
"""

from __future__ import annotations

import math
import numbers
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from nc_jax.workdir import to_python

WRITERS = ('tensorboard', 'wandb')
TENSORBOARD_DIR = 'tensorboard'
# Keys of a record that say where it belongs, not what was measured.
_WHERE = ('epoch', 'step', 'split', 'layer', 'labels')
# How metrics.jsonl writes non-finite numbers (`workdir.to_python`).
_NONFINITE = ('nan', 'inf', '-inf')


class Writer(Protocol):
  """Where records go: ``write`` one record, ``flush`` to disk, ``close`` at the end."""

  def write(self, record: Mapping[str, Any]) -> None: ...

  def flush(self) -> None: ...

  def close(self) -> None: ...


def scalars(record: Mapping[str, Any]) -> tuple[int, dict[str, float]]:
  """The step and ``{tag: value}`` of one ``metrics.jsonl`` record.

  An evaluation record (it has ``split`` and ``layer``) gives
  ``<split>/[<labels>/]<layer>/<metric>``; any other record
  ``progress/<key>``. The numbers are those metrics.jsonl holds
  (`workdir.to_python`): real numbers become scalars (booleans, text and
  lists are left out), non-finite ones included (TensorBoard shows them).

  Raises:
    ValueError: the record has no ``step``.
  """
  if 'step' not in record:
    raise ValueError(f'a record needs a "step" to be written as scalars; got keys '
                     f'{sorted(record)}')
  if 'split' in record and 'layer' in record:
    labels = f"{record['labels']}/" if record.get('labels') else ''
    prefix = f"{record['split']}/{labels}{record['layer']}/"
  else:
    prefix = 'progress/'
  values = {}
  for k, v in to_python(dict(record)).items():
    if k in _WHERE or isinstance(v, bool):
      continue
    if isinstance(v, numbers.Real) or v in _NONFINITE:
      values[f'{prefix}{k}'] = float(v)
  return int(record['step']), values


class TensorBoardWriter:
  """Scalars to TensorBoard event files in ``logdir`` (`scalars` gives the tags)."""

  def __init__(self, logdir: str, *, purge_step: int | None = None):
    try:
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise ImportError("log.writers has 'tensorboard': install tensorboardX "
                        '(pip install tensorboardX)') from e
    self.logdir = logdir
    # A file per writer even when two start in the same second (tensorboardX names files
    # by the second and host: a restart would overwrite the earlier file).
    self._writer = SummaryWriter(logdir, purge_step=purge_step, flush_secs=30,
                                 filename_suffix=f'.{os.getpid()}.{time.time_ns()}')

  def write(self, record: Mapping[str, Any]) -> None:
    step, values = scalars(record)
    for tag, value in values.items():
      self._writer.add_scalar(tag, value, step)

  def flush(self) -> None:
    self._writer.flush()

  def close(self) -> None:
    self._writer.close()


class WandbWriter:
  """Scalars to a Weights & Biases run (``wandb.init(dir=workdir, config=config)``);
  non-finite values are left out."""

  def __init__(self, workdir: str, *, config: Mapping[str, Any] | None = None):
    try:
      import wandb  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise ImportError("log.writers has 'wandb': install wandb (pip install wandb)") from e
    self._run = wandb.init(dir=workdir, config=dict(config or {}),
                           name=os.path.basename(os.path.abspath(workdir)), reinit=True)

  def write(self, record: Mapping[str, Any]) -> None:
    step, values = scalars(record)
    if values:  # W&B steps only grow: several records of one step are one commit.
      self._run.log({k: v for k, v in values.items() if math.isfinite(v)}, step=step)

  def flush(self) -> None:
    pass

  def close(self) -> None:
    self._run.finish()


class Writers:
  """Several writers as one (a failing backend is not hidden: its error propagates)."""

  def __init__(self, writers: Sequence[Writer] = ()):
    self.writers = list(writers)

  def write(self, record: Mapping[str, Any]) -> None:
    for w in self.writers:
      w.write(record)

  def flush(self) -> None:
    for w in self.writers:
      w.flush()

  def close(self) -> None:
    for w in self.writers:
      w.close()


def create(names: Sequence[str], workdir: str, *, config: Mapping[str, Any] | None = None,
           resume_step: int = 0) -> Writers:
  """The writers named in ``names`` (`WRITERS`) for a run in ``workdir``.

  Args:
    names: e.g. ``('tensorboard',)``; empty: none (metrics.jsonl only).
    workdir: the run's folder (TensorBoard writes to ``workdir/tensorboard``).
    config: the run's config, for backends that record it (W&B).
    resume_step: the step of the checkpoint a resumed run restarts from: the
      TensorBoard events after it are dropped (they are logged again).

  Raises:
    ValueError: an unknown writer name.
  """
  unknown = sorted(set(names) - set(WRITERS))
  if unknown:
    raise ValueError(f'log.writers: unknown writers {unknown}; choose from {WRITERS}')
  out = []
  if 'tensorboard' in names:
    out.append(TensorBoardWriter(os.path.join(workdir, TENSORBOARD_DIR),
                                 purge_step=resume_step + 1 if resume_step else None))
  if 'wandb' in names:
    out.append(WandbWriter(workdir, config=config))
  return Writers(out)
