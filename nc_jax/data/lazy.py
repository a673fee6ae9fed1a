"""Images decoded on access: data sets that do not fit in memory.

`LazyImages` is an array-like stand-in for ``Dataset.images``: it knows the
shape and dtype of the decoded array but decodes only the rows it is indexed
with (``images[idx]`` returns a uint8 NumPy array), so a `Dataset` over a
million JPEGs costs a file list, not 150 GB. `take(idx)` selects rows without
decoding (``Dataset.subset`` uses it), so label maps, balanced subsets and
evaluation subsets work unchanged. ``data.load(..., lazy=True)`` returns one
for image folders; TFDS ``data_source`` splits are random-access already.

The trainer streams such data through grain
(``config.data.loader.name='grain'``, `nc_jax.train.grain_input`); evaluation
indexes the images batch by batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np


class LazyImages:
  """Rows decoded on demand by ``decode(key) -> uint8 [H, W, C]``.

  Attributes:
    keys: one key per row (file paths, record indices), in row order.
    shape: ``(N, H, W, C)`` of the decoded array; ``dtype`` uint8.
  """

  def __init__(self, keys: Sequence[Any], decode: Callable[[Any], np.ndarray], *,
               item_shape: tuple[int, ...], num_threads: int = 4):
    self.keys = list(keys)
    self.decode = decode
    self.item_shape = tuple(item_shape)
    self.num_threads = num_threads
    self.dtype = np.dtype(np.uint8)

  @property
  def shape(self) -> tuple[int, ...]:
    return (len(self.keys),) + self.item_shape

  @property
  def ndim(self) -> int:
    return 1 + len(self.item_shape)

  def __len__(self) -> int:
    return len(self.keys)

  def take(self, indices) -> LazyImages:
    """The rows at ``indices`` (an int array), still undecoded."""
    idx = np.asarray(indices).reshape(-1)
    return LazyImages([self.keys[i] for i in idx], self.decode, item_shape=self.item_shape,
                      num_threads=self.num_threads)

  def _one(self, key) -> np.ndarray:
    img = np.asarray(self.decode(key), np.uint8)
    if img.shape != self.item_shape:
      raise ValueError(f'{key} decodes to shape {img.shape}, expected {self.item_shape}: '
                       'pass image_size=(H, W) to resize')
    return img

  def __getitem__(self, index) -> np.ndarray:
    """Decodes the rows selected by an int, a slice or an int array."""
    if isinstance(index, (int, np.integer)):
      return self._one(self.keys[int(index)])
    if isinstance(index, slice):
      index = np.arange(len(self.keys))[index]
    idx = np.asarray(index).reshape(-1)
    out = np.empty((len(idx),) + self.item_shape, np.uint8)

    def work(j):
      out[j] = self._one(self.keys[idx[j]])

    if self.num_threads > 1 and len(idx) >= 64:
      with ThreadPoolExecutor(self.num_threads) as ex:
        list(ex.map(work, range(len(idx))))
    else:
      for j in range(len(idx)):
        work(j)
    return out

  def __array__(self, dtype=None, copy=None):
    del copy
    arr = self[np.arange(len(self))]
    return arr if dtype is None else arr.astype(dtype)


def is_lazy(images) -> bool:
  return isinstance(images, LazyImages)
