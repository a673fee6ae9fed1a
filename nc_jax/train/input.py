"""Input: data sets, per-host batches, global arrays, on-device augmentation.

Batches are gathered on the host as uint8 (cheap) and converted, augmented and
normalised inside the jitted step, so the accelerator does the per-pixel work
and the host only indexes arrays. The sample order of an epoch depends only on
(seed, epoch), which makes a resumed run see the same batches.
"""

from __future__ import annotations

from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from nc_jax import data


def load_data(config) -> tuple[data.Dataset, data.Dataset]:
  """The training set (subset, label noise applied) and the test set."""
  kw = dict(data_dir=config.data_dir or None, **config.data_options.to_dict())
  train = data.load(config.dataset, config.train_split, **kw)
  test = data.load(config.dataset, config.test_split, **kw)
  if config.train_examples_per_class:
    train = data.balanced_subset(train, config.train_examples_per_class,
                                 config.seed)
  if config.label_noise:
    train = data.add_label_noise(train, config.label_noise, config.seed)
  return train, test


def make_mesh(devices=None) -> jax.sharding.Mesh:
  """A 1-D ``'data'`` mesh over `devices` (default: all, every host).

  Auto axes: the model code (BatchNorm means, loss means) reduces over the
  batch without sharding annotations, which Explicit axes would reject.
  """
  devices = jax.devices() if devices is None else list(devices)
  return jax.make_mesh((len(devices),), ('data',), devices=devices,
                       axis_types=(jax.sharding.AxisType.Auto,))


def global_batch(mesh, *arrays: np.ndarray) -> list[jax.Array]:
  """Global arrays from this host's rows, split over the ``'data'`` axis."""
  sharding = NamedSharding(mesh, P('data'))
  return [jax.make_array_from_process_local_data(sharding, a) for a in arrays]


def train_indices(n: int, batch_size: int, seed: int,
                  epoch: int) -> Iterator[np.ndarray]:
  """This host's rows of each global batch; order as `data.epoch_batches`."""
  order = data.epoch_permutation(n, seed, epoch)
  per_host = batch_size // jax.process_count()
  lo = jax.process_index() * per_host
  for s in range(0, n - n % batch_size, batch_size):
    yield order[s + lo:s + lo + per_host]


def eval_indices(n: int, batch_size: int) -> Iterator[tuple[np.ndarray, int]]:
  """(this host's rows, number of valid rows) of padded evaluation batches.

  The last batch is padded with copies of the last sample so every batch has
  the same (device-divisible) shape; the padding is sliced off on device.
  """
  per_host = batch_size // jax.process_count()
  lo = jax.process_index() * per_host
  for s in range(0, n, batch_size):
    idx = np.arange(s, min(s + batch_size, n))
    valid = len(idx)
    idx = np.pad(idx, (0, batch_size - valid), mode='edge')
    yield idx[lo:lo + per_host], valid


def augment(key: jax.Array, images: jax.Array, *, crop_padding: int,
            flip: bool) -> jax.Array:
  """Per-image random crop after zero padding, and horizontal flip.

  Args:
    key: PRNG key.
    images: [B, H, W, C] floats in [0, 1] (padding with 0 is black, as
      torchvision's RandomCrop on unnormalised images).
    crop_padding: pixels of padding on each side; 0 disables the crop.
    flip: flip each image left-right with probability 1/2.

  Returns:
    [B, H, W, C] augmented images.
  """
  b, h, w, c = images.shape
  crop_key, flip_key = jax.random.split(key)
  if crop_padding:
    pad = crop_padding
    padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    offsets = jax.random.randint(crop_key, (b, 2), 0, 2 * pad + 1)
    crop = lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0), (h, w, c))
    images = jax.vmap(crop)(padded, offsets)
  if flip:
    mask = jax.random.bernoulli(flip_key, 0.5, (b, 1, 1, 1))
    images = jnp.where(mask, images[:, :, ::-1], images)
  return images


def to_unit(images: jax.Array) -> jax.Array:
  """uint8 -> float32 in [0, 1]; float inputs (MNIST-1D) pass unchanged."""
  if images.dtype == jnp.uint8:
    return images.astype(jnp.float32) / 255.0
  return images.astype(jnp.float32)

