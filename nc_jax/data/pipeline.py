"""Normalization and seeded minibatch iteration (NumPy only; the trainer puts
batches on device)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from nc_jax.data import constants
from nc_jax.data.core import Dataset


def compute_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Per-channel mean and std (uint8 images on the [0, 1] scale).

  For NHWC / NHW images the channel is the last axis of 4-D input; other
  shapes (e.g. MNIST-1D [N, L]) give one scalar statistic.
  """
  x = np.asarray(images)
  scale = 255.0 if x.dtype == np.uint8 else 1.0
  axes = tuple(range(x.ndim - 1)) if x.ndim == 4 else None
  mean = np.zeros(x.shape[-1] if axes else 1)
  sq = np.zeros_like(mean)
  n = 0
  for s in range(0, len(x), 8192):  # float64 accumulation in chunks
    c = x[s:s + 8192].astype(np.float64) / scale
    mean += c.sum(axis=axes).reshape(mean.shape)
    sq += (c * c).sum(axis=axes).reshape(mean.shape)
    n += c.size // mean.size
  mean /= max(n, 1)
  std = np.sqrt(np.maximum(sq / max(n, 1) - mean**2, 0.0))
  return mean.astype(np.float32), std.astype(np.float32)


def dataset_stats(ds: Dataset | str) -> tuple[np.ndarray, np.ndarray]:
  """Normalization (mean, std) of a data set's *training* images.

  Taken from `constants.DATASET_STATS` by name (``'tfds:mnist'`` uses the
  ``'mnist'`` entry); for other data sets computed from the given data set,
  so pass the training split and reuse its statistics for the test split.

  Args:
    ds: A `Dataset`, or a name in the table.

  Raises:
    KeyError: A name that is not in the table.
  """
  name = ds if isinstance(ds, str) else ds.name
  key = name.removeprefix("tfds:")
  if key in constants.DATASET_STATS:
    mean, std = constants.DATASET_STATS[key]
    return np.asarray(mean, np.float32), np.asarray(std, np.float32)
  if isinstance(ds, str):
    raise KeyError(f"no stored statistics for {name!r}")
  from nc_jax.data import lazy  # pylint: disable=g-import-not-at-top
  if lazy.is_lazy(ds.images) and len(ds) > 10_000:
    # Decoded on access: estimate from a fixed random sample of 10,000 images.
    idx = np.sort(np.random.default_rng(0).choice(len(ds), 10_000, replace=False))
    return compute_stats(ds.images[idx])
  return compute_stats(ds.images[np.arange(len(ds))] if lazy.is_lazy(ds.images)
                       else ds.images)


def normalize(images: np.ndarray, mean, std) -> np.ndarray:
  """float32 ``(x - mean) / std``; uint8 images are first divided by 255.

  Args:
    images: uint8 or float array.
    mean: Scalar or per-channel (last axis) mean on the [0, 1] scale.
    std: Same shape as `mean`.
  """
  x = np.asarray(images, np.float32)
  if np.asarray(images).dtype == np.uint8:
    x = x / np.float32(255.0)
  mean = np.asarray(mean, np.float32)
  std = np.asarray(std, np.float32)
  if x.ndim != 4 and mean.size == 1:  # no channel axis (e.g. MNIST-1D)
    mean, std = mean.reshape(()), std.reshape(())
  return (x - mean) / std


def to_float(ds: Dataset, stats: tuple | None = None) -> np.ndarray:
  """``ds.images`` as normalized float32 (stats default `dataset_stats(ds)`)."""
  mean, std = dataset_stats(ds) if stats is None else stats
  return normalize(ds.images, mean, std)


def _arrays(data) -> tuple[np.ndarray, np.ndarray]:
  if isinstance(data, Dataset):
    return data.images, data.labels
  images, labels = data
  if len(images) != len(labels):
    raise ValueError(f"{len(images)} images but {len(labels)} labels")
  return np.asarray(images), np.asarray(labels)


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
  """The sample order of one epoch: ``default_rng([seed, epoch])``."""
  return np.random.default_rng([seed, epoch]).permutation(n)


def epoch_index_batches(n: int, batch_size: int, *, seed: int = 0, epoch: int = 0,
                        shuffle: bool = True, drop_remainder: bool = True
                        ) -> Iterator[np.ndarray]:
  """Sample indices of each minibatch of one epoch: THE data order of nc_jax.

  `epoch_batches` and the trainer (``train.input.train_indices``, which
  takes each host's slice of these global batches) both read it, so a
  notebook iterating `batch_iterator` sees the batches the trainer trains
  on. The order depends only on (seed, epoch).
  """
  if batch_size < 1:
    raise ValueError("batch_size must be >= 1")
  order = epoch_permutation(n, seed, epoch) if shuffle else np.arange(n)
  stop = n - n % batch_size if drop_remainder else n
  for s in range(0, stop, batch_size):
    yield order[s:s + batch_size]


def epoch_batches(data: Dataset | tuple[np.ndarray, np.ndarray],
                  batch_size: int, *, seed: int = 0, epoch: int = 0,
                  shuffle: bool = True, drop_remainder: bool = True,
                  preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
                  with_index: bool = False) -> Iterator[dict[str, np.ndarray]]:
  """Minibatches of one epoch as ``{'image', 'label'}`` NumPy dicts.

  The order depends only on (seed, epoch), so a resumed run sees the same
  batches.

  Args:
    data: A `Dataset` or an (images, labels) pair.
    batch_size: Samples per batch.
    seed: Shuffle seed.
    epoch: Epoch number (selects that epoch's permutation).
    shuffle: Shuffle; else the stored order.
    drop_remainder: Drop the last incomplete batch.
    preprocess: Applied to each image batch (e.g. ``lambda x:
      normalize(x, mean, std)``).
    with_index: Also yield ``'index'`` (positions in `data`).
  """
  images, labels = _arrays(data)
  for idx in epoch_index_batches(len(labels), batch_size, seed=seed, epoch=epoch,
                                 shuffle=shuffle, drop_remainder=drop_remainder):
    x = images[idx]
    batch = {"image": preprocess(x) if preprocess else x,
             "label": labels[idx].astype(np.int32)}
    if with_index:
      batch["index"] = idx
    yield batch


def batch_iterator(data: Dataset | tuple[np.ndarray, np.ndarray],
                   batch_size: int, *, seed: int = 0,
                   num_epochs: int | None = None, start_epoch: int = 0,
                   shuffle: bool = True, drop_remainder: bool = True,
                   preprocess: Callable[[np.ndarray], np.ndarray] | None = None,
                   with_index: bool = False) -> Iterator[dict[str, np.ndarray]]:
  """Batches over `num_epochs` epochs (None: forever), reshuffled each epoch.

  Args:
    data, batch_size, seed, shuffle, drop_remainder, preprocess, with_index:
      As in `epoch_batches`.
    num_epochs: Number of epochs, or None for an endless stream.
    start_epoch: First epoch number (to resume).
  """
  n = len(_arrays(data)[1])
  if num_epochs is None and (n == 0 or (drop_remainder and n < batch_size)):
    raise ValueError(f"{n} samples give no batch of {batch_size}")
  epoch = start_epoch
  while num_epochs is None or epoch < start_epoch + num_epochs:
    yield from epoch_batches(data, batch_size, seed=seed, epoch=epoch,
                             shuffle=shuffle, drop_remainder=drop_remainder,
                             preprocess=preprocess, with_index=with_index)
    epoch += 1
