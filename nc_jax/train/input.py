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


def apply_label_map(ds: data.Dataset, label_map: str, seed: int) -> data.Dataset:
  """The task's labels (`config.data.label_map`); the originals stay on ``ds``.

  ``'mod:<C~>'``: y mod C~; ``'table:t0,t1,...'``: class y to super-class
  t_y (any pairing, e.g. paper 004's random coarse labels); ``'superclass:<name>'``;
  ``'split:<b>'``: each class split at random in b; ``'classes:i,j,...'``.
  Maps chain left to right with ``'|'``, e.g.
  ``'classes:0,1,2,3,6,7,8,9|superclass:cifar10_animals8'``.
  """
  if not label_map:
    return ds
  if '|' in label_map:
    for part in label_map.split('|'):
      ds = apply_label_map(ds, part, seed)
    return ds
  kind, _, arg = label_map.partition(':')
  if kind == 'classes':
    return data.select_classes(ds, [int(c) for c in arg.split(',')])
  if kind == 'mod':
    return data.to_coarse(ds, num_coarse=int(arg))
  if kind == 'table':  # 'table:<coarse of class 0>,<of class 1>,...'
    return data.to_coarse(ds, [int(c) for c in arg.split(',')])
  if kind == 'superclass':
    return data.superclass(ds, arg)
  if kind == 'split':
    return data.split_classes(ds, seed, int(arg))
  raise ValueError(f'unknown label_map {label_map!r}')


def _subset(ds: data.Dataset, n: int, seed: int, salt: int) -> data.Dataset:
  """A fixed random subset of ``n`` examples in stored order (n <= 0: all)."""
  if not 0 < n < len(ds):
    return ds
  rng = np.random.default_rng([seed, salt])
  return ds.subset(np.sort(rng.choice(len(ds), n, replace=False)))


def _load_kwargs(config) -> dict:
  d = config.data
  kw = dict(data_dir=d.dir or None, **d.options.to_dict())
  name = d.name.lower()
  if d.loader.name == 'grain' and (name.startswith(('image_folder:', 'tfds:'))
                                   or name == 'cifar10_jpeg'):
    kw.setdefault('lazy', True)  # Decoded on access, never as a whole split.
  return kw


def load_data(config, *, corrupt: bool = True) -> tuple[data.Dataset, data.Dataset]:
  """The training set and the test set of a config.

  ``data.label_map`` relabels both splits (it defines the task); the
  training subset and ``data.label_noise`` touch the training split only, so
  test labels stay as loaded (mapped) and test accuracy is measured against
  them. ``data.corruption`` corrupts the inputs of both splits
  (``corrupt=False``: the same examples, clean).
  """
  d, seed = config.data, config.seed
  kw = _load_kwargs(config)
  train = data.load(d.name, d.train_split, **kw)
  test = data.load(d.name, d.test_split, **kw)
  # 'split:<b>' draws b per sample: the same seed on both splits is fine, the
  # splits are different samples.
  train = apply_label_map(train, d.label_map, seed)
  test = apply_label_map(test, d.label_map, seed + 1)
  if d.examples_per_class:
    train = data.balanced_subset(train, d.examples_per_class, seed)
  if d.label_noise:
    train = data.add_label_noise(train, d.label_noise, seed)
  if d.corruption.name and corrupt:
    c = d.corruption
    train = data.corrupt(train, c.name, c.severity, seed)
    test = data.corrupt(test, c.name, c.severity, seed + 1)
  return train, test


def eval_sets(config, train: data.Dataset,
              test: data.Dataset) -> dict[str, data.Dataset]:
  """{name: data set} evaluated every ``evals.every`` epochs.

  'train' and 'test' (fixed random subsets when ``evals.train_examples`` /
  ``evals.test_examples`` are set), then every ``config.evals.sets`` entry
  (``like_train``: the same training images as 'train', clean; ``options``:
  `data.load` keywords over ``data.options``).
  """
  e = config.evals
  out = {'train': _subset(train, e.train_examples, config.seed, 1),
         'test': _subset(test, e.test_examples, config.seed, 2)}
  kw = _load_kwargs(config)
  for i, (name, spec) in enumerate(sorted(e.sets.items())):
    spec = spec.to_dict()
    if spec.get('like_train'):
      # The images 'train' evaluates (the same subset), before the corruption.
      ds = _subset(load_data(config, corrupt=False)[0], e.train_examples, config.seed, 1)
    else:
      ds = data.load(spec.get('dataset') or config.data.name,
                     spec.get('split', 'test'), **{**kw, **spec.get('options', {})})
      label_map = spec.get('label_map')
      ds = apply_label_map(ds, config.data.label_map if label_map is None
                           else label_map, config.seed + 1)
    ds = _subset(ds, spec.get('examples', 0), config.seed, 3 + i)
    if spec.get('corruption'):
      ds = data.corrupt(ds, spec['corruption'], spec.get('severity', 1),
                        config.seed)
    out[name] = ds
  return out


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
  """This host's rows of each global batch of `data.epoch_index_batches`."""
  per_host = batch_size // jax.process_count()
  lo = jax.process_index() * per_host
  for idx in data.epoch_index_batches(n, batch_size, seed=seed, epoch=epoch):
    yield idx[lo:lo + per_host]


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
            flip: bool, noise: float = 0.0, jitter: float = 0.0,
            erase: float = 0.0) -> jax.Array:
  """Per-image pixel noise, random crop after zero padding, horizontal flip,
  brightness / contrast jitter, random erasing (in that order).

  Args:
    key: PRNG key.
    images: [B, H, W, C] floats in [0, 1] (padding with 0 is black, as
      torchvision's RandomCrop on unnormalised images).
    crop_padding: pixels of padding on each side; 0 disables the crop.
    flip: flip each image left-right with probability 1/2.
    noise: standard deviation of Gaussian noise added to every pixel (then
      clipped to [0, 1]); any input shape.
    jitter: brightness and contrast strength s (torchvision's ColorJitter
      with brightness = contrast = s): the image times b, then its contrast
      about its mean (luminance for RGB) scaled by c, b and c uniform in
      [max(0, 1 - s), 1 + s] per image, clipped to [0, 1]; 0 disables it.
    erase: probability of erasing (to 0) one rectangle of the image
      (torchvision's RandomErasing defaults: area 2-33% of the image, aspect
      ratio log-uniform in [0.3, 3.3]; a rectangle too tall or too wide is
      clipped to the image instead of redrawn); 0 disables it.

  Returns:
    [B, H, W, C] augmented images.
  """
  if isinstance(noise, jax.Array) or noise:  # Traced in the train step.
    noisy = images + noise * jax.random.normal(jax.random.fold_in(key, 2),
                                               images.shape, images.dtype)
    images = jnp.clip(noisy, 0.0, 1.0)
  if crop_padding or flip:
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
  if isinstance(jitter, jax.Array) or jitter:
    images = _jitter(jax.random.fold_in(key, 4), images, jitter)
  if isinstance(erase, jax.Array) or erase:
    images = _erase(jax.random.fold_in(key, 5), images, erase)
  return images


def _jitter(key: jax.Array, images: jax.Array, strength) -> jax.Array:
  """Brightness then contrast, factors uniform in [max(0, 1 - s), 1 + s] (`augment`)."""
  b = images.shape[0]
  lo = jnp.maximum(0.0, 1.0 - strength)
  bright, contrast = jax.random.uniform(key, (2, b, 1, 1, 1), images.dtype, lo,
                                        1.0 + strength)
  x = jnp.clip(images * bright, 0.0, 1.0)
  if x.shape[-1] == 3:  # Contrast about the mean luminance, as torchvision.
    gray = x @ jnp.asarray([0.299, 0.587, 0.114], x.dtype)
    mean = gray.mean(axis=(1, 2))[:, None, None, None]
  else:
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
  return jnp.clip((x - mean) * contrast + mean, 0.0, 1.0)


def _erase(key: jax.Array, images: jax.Array, probability) -> jax.Array:
  """One zeroed rectangle per image with ``probability`` (`augment`)."""
  b, h, w, _ = images.shape
  k_on, k_area, k_ratio, k_top, k_left = jax.random.split(key, 5)
  on = jax.random.bernoulli(k_on, probability, (b,))
  area = jax.random.uniform(k_area, (b,), minval=0.02, maxval=0.33) * (h * w)
  ratio = jnp.exp(jax.random.uniform(k_ratio, (b,), minval=jnp.log(0.3),
                                     maxval=jnp.log(3.3)))
  eh = jnp.clip(jnp.round(jnp.sqrt(area * ratio)), 1, h).astype(jnp.int32)
  ew = jnp.clip(jnp.round(jnp.sqrt(area / ratio)), 1, w).astype(jnp.int32)
  top = jnp.floor(jax.random.uniform(k_top, (b,)) * (h - eh + 1)).astype(jnp.int32)
  left = jnp.floor(jax.random.uniform(k_left, (b,)) * (w - ew + 1)).astype(jnp.int32)
  rows = jnp.arange(h)[None, :, None]
  cols = jnp.arange(w)[None, None, :]
  inside = ((rows >= top[:, None, None]) & (rows < (top + eh)[:, None, None])
            & (cols >= left[:, None, None]) & (cols < (left + ew)[:, None, None]))
  return jnp.where((inside & on[:, None, None])[..., None], 0.0, images)


def to_unit(images: jax.Array) -> jax.Array:
  """uint8 -> float32 in [0, 1]; float inputs (MNIST-1D) pass unchanged."""
  if images.dtype == jnp.uint8:
    return images.astype(jnp.float32) / 255.0
  return images.astype(jnp.float32)

