"""Streaming training input through grain (``config.data.loader.name='grain'``).

The trainer's batches come from a ``grain.DataLoader`` over a random-access
source (`BatchSource`: one record per batch, decoded on access for lazy image
folders), with ``grain_workers`` processes decoding whole batches in
parallel. The order is nc_jax's one data order (`data.epoch_index_batches`,
a function of (seed, epoch) only), so:

- a resumed run reads exactly the batches an uninterrupted one reads;
- grain and in-memory loading give the same batches, hence the same run;
- under ``jax.distributed`` each process's sampler yields only its rows of
  every global batch (`train.input.train_indices`): hosts read disjoint
  shards and never decode another host's images.

Evaluation indexes the (lazy) data set batch by batch in the main process
(`tracking.Evaluator`), over the full splits.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import numpy as np

from nc_jax import data


class BatchSource:
  """grain ``RandomAccessDataSource``: record ``epoch * steps + b`` = this
  process's rows of global batch ``b`` of ``epoch``, decoded.

  A record is a whole batch, so grain's worker processes each decode whole
  batches and the loader returns them in record order: with any number of
  workers the batches are exactly the trainer's (`data.epoch_index_batches`,
  this process's slice of every global batch).
  """

  def __init__(self, ds: data.Dataset, batch_size: int, *, seed: int, num_epochs: int,
               process_index: int = 0, process_count: int = 1):
    if batch_size % process_count:
      raise ValueError(f'batch_size {batch_size} is not divisible by '
                       f'{process_count} processes')
    self.images = ds.images
    self.labels = np.asarray(ds.labels, np.int32)
    self.n, self.batch_size, self.seed = len(ds), batch_size, seed
    self.per_host = batch_size // process_count
    self.lo = process_index * self.per_host
    self.steps = self.n // batch_size
    self.num_epochs = num_epochs

  def __len__(self) -> int:
    return self.num_epochs * self.steps

  @functools.lru_cache(maxsize=2)
  def epoch_rows(self, epoch: int) -> list[np.ndarray]:
    """This process's rows of every global batch of ``epoch``."""
    return [idx[self.lo:self.lo + self.per_host] for idx in data.epoch_index_batches(
        self.n, self.batch_size, seed=self.seed, epoch=epoch)]

  def rows(self, key: int) -> np.ndarray:
    epoch, b = divmod(int(key), self.steps)
    return self.epoch_rows(epoch)[b]

  def __getitem__(self, key: int) -> dict[str, np.ndarray]:
    idx = self.rows(key)
    return {'image': np.asarray(self.images[idx]), 'label': self.labels[idx]}


class RangeSampler:
  """grain sampler reading records ``start, start + 1, .., stop - 1`` in order."""

  def __init__(self, start: int, stop: int):
    self.start, self.stop = start, stop

  def __len__(self) -> int:
    return max(self.stop - self.start, 0)

  def __getitem__(self, index: int):
    import grain  # pylint: disable=g-import-not-at-top
    if not 0 <= index < len(self):
      raise IndexError(index)
    return grain.RecordMetadata(index=index, record_key=self.start + index)


def train_batches(ds: data.Dataset, *, batch_size: int, seed: int, start_epoch: int,
                  num_epochs: int, worker_count: int = 0, worker_buffer_size: int = 2,
                  process_index: int | None = None, process_count: int | None = None
                  ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
  """This process's (uint8 images, int32 labels) batches from ``start_epoch`` on.

  Args:
    ds: the training set (in memory or lazy).
    batch_size: the global batch.
    seed, start_epoch, num_epochs: the data order and the epochs to read.
    worker_count: grain worker processes (0: decode in this process).
    worker_buffer_size: batches each worker prepares ahead.
    process_index, process_count: default ``jax.process_index()`` /
      ``jax.process_count()``.
  """
  import grain  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  from absl import flags  # pylint: disable=g-import-not-at-top
  if not flags.FLAGS.is_parsed():  # grain reads absl flags (notebooks, tests).
    flags.FLAGS.mark_as_parsed()
  process_index = jax.process_index() if process_index is None else process_index
  process_count = jax.process_count() if process_count is None else process_count
  source = BatchSource(ds, batch_size, seed=seed, num_epochs=num_epochs,
                       process_index=process_index, process_count=process_count)
  sampler = RangeSampler(start_epoch * source.steps, num_epochs * source.steps)
  if not len(sampler):
    return iter(())
  loader = grain.DataLoader(
      data_source=source, sampler=sampler, worker_count=worker_count,
      worker_buffer_size=worker_buffer_size,
      # The sampler already holds only this process's rows.
      shard_options=grain.sharding.NoSharding())
  return ((b['image'], b['label']) for b in loader)
