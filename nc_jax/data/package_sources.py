"""Sources served by optional packages, each imported on first use.

- ``digits``: scikit-learn ``load_digits``.
- ``mnist1d``: MNIST-1D regenerated with the ``mnist1d`` package.
- ``tfds:<name>``: a prepared TFDS data set via ``tfds.data_source``
  (eager or lazy, with the resizing helper).

The names are resolved by `nc_jax.data.sources.load`.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np

from nc_jax.data import constants
from nc_jax.data.core import Dataset, cache_key, cached, not_found
from nc_jax.data.file_sources import check_split
from nc_jax.data.lazy import LazyImages


# ------------------------------------------------------------------ built-in


def load_sklearn_digits(split: str, data_dir, cache: bool, *,
                        test_fraction: float = 0.25, split_seed: int = 0,
                        image_size: tuple[int, int] | None = None,
                        padding: int = 0) -> Dataset:
  """scikit-learn digits, pixels 0..16 scaled to uint8 0..255 (round(v*255/16)).

  The split is stratified: in each class, round(n_c * test_fraction) samples
  drawn with ``default_rng(split_seed)`` go to test; both splits keep the
  original sample order. ``image_size=(H, W)`` resizes the 8 x 8 images
  (PIL bilinear) and ``padding`` then adds that many black pixels on every
  side: ``image_size=(20, 20), padding=4`` frames the digits as MNIST does
  (a 20 x 20 box in 28 x 28), the target domain of paper 003's study.
  """
  del data_dir, cache
  check_split(split)
  from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
  d = load_digits()
  images = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)
  if image_size is not None:
    from PIL import Image  # pylint: disable=g-import-not-at-top
    h, w = image_size
    images = np.stack([np.asarray(Image.fromarray(x).resize((w, h), Image.BILINEAR))
                       for x in images])
  if padding:
    images = np.pad(images, ((0, 0), (padding, padding), (padding, padding)))
  images = images[..., None]
  y = d.target.astype(np.int32)
  rng = np.random.default_rng(split_seed)
  is_test = np.zeros(len(y), bool)
  for c in range(10):
    idx = np.flatnonzero(y == c)
    is_test[rng.permutation(idx)[:int(round(len(idx) * test_fraction))]] = True
  keep = is_test if split == "test" else ~is_test
  return Dataset(images[keep], y[keep], 10, constants.MNIST_CLASSES,
                 name="digits", split=split)


def load_mnist1d(split: str, data_dir, cache: bool, **overrides) -> Dataset:
  """MNIST-1D regenerated with ``make_dataset`` (never downloaded).

  The generator seeds NumPy's and Python's global RNGs; their states are
  restored afterwards.
  """
  del data_dir
  check_split(split)
  # pylint: disable=g-import-not-at-top
  import importlib.metadata
  from mnist1d.data import get_dataset_args, make_dataset
  # pylint: enable=g-import-not-at-top
  args = get_dataset_args()
  for k, v in overrides.items():
    if not hasattr(args, k):
      raise ValueError(f"unknown MNIST-1D argument {k!r}")
    setattr(args, k, v)

  def build():
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
      d = make_dataset(args)
    finally:
      np.random.set_state(np_state)
      random.setstate(py_state)
    return {"train_x": d["x"].astype(np.float32), "train_y": d["y"],
            "test_x": d["x_test"].astype(np.float32), "test_y": d["y_test"]}

  key = None
  if cache:
    key = cache_key(kind="mnist1d", version=importlib.metadata.version("mnist1d"),
                    args={k: v for k, v in vars(args).items() if k != "url"})
  a = cached("mnist1d", key, build)
  return Dataset(a[f"{split}_x"], a[f"{split}_y"], 10, constants.MNIST_CLASSES,
                 name="mnist1d", split=split)


# ---------------------------------------------------------------------- TFDS


class _TfdsImage:
  """Picklable ``index -> image`` of a TFDS data_source (opened per process)."""

  def __init__(self, name, split, data_dir, image_key, image_size, channels):
    self.args = (name, split, data_dir)
    self.image_key, self.image_size, self.channels = image_key, image_size, channels
    self._src = None

  def __getstate__(self):
    return dict(self.__dict__, _src=None)

  def __call__(self, index) -> np.ndarray:
    if self._src is None:
      import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
      name, split, data_dir = self.args
      self._src = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
    x = np.asarray(self._src[int(index)][self.image_key])
    if self.image_size is not None or self.channels is not None:
      x = _resize(x, self.image_size, self.channels)
    return x


def load_tfds(name: str, split: str, data_dir, *, image_key: str | None = None,
              label_key: str = "label", image_size=None,
              channels: int | None = None, lazy: bool = False) -> Dataset:
  """A prepared TFDS data set via ``tfds.data_source`` (no TensorFlow needed).

  Never downloads. Not cached (array_record reads are already random access).
  ``lazy=True``: one pass reads the labels (records are decoded and dropped
  chunk by chunk); images are decoded on access (`data.lazy.LazyImages`).
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  try:
    src = tfds.data_source(name, split=split, data_dir=data_dir,
                           download=False)
  except Exception as e:  # noqa: BLE001 - TFDS raises many kinds here.
    where = Path(data_dir or os.environ.get("TFDS_DATA_DIR",
                                            "~/tensorflow_datasets"))
    raise not_found(
        f"TFDS data set {name!r} ({split} split)", [where.expanduser() / name],
        f"Prepare it with TFDS in array_record format (tfds.builder({name!r}, "
        "data_dir=...).download_and_prepare(file_format='array_record')) and "
        f"pass that data_dir. TFDS said: {type(e).__name__}: {e}",
        root_hint=False) from e
  features = src.dataset_info.features
  if image_key is None:
    image_key = "image" if "image" in features else next(
        (k for k, f in features.items() if type(f).__name__ == "Image"), None)
  for k in (image_key, label_key):
    if k not in features:
      raise ValueError(f"tfds:{name} has no feature {k!r} (features: "
                       f"{list(features)}); pass image_key=/label_key=")
  n = len(src)
  lab = features[label_key]
  if lazy:
    labels, coarse = [], []
    for s in range(0, n, 4096):  # Chunk by chunk: the decoded images are dropped.
      for ex in _tfds_records_range(src, s, min(n, s + 4096)):
        labels.append(ex[label_key])
        if "coarse_label" in features:
          coarse.append(ex["coarse_label"])
    decode = _TfdsImage(name, split, data_dir, image_key, image_size, channels)
    first = decode(0) if n else np.zeros((0,), np.uint8)
    return Dataset(LazyImages(range(n), decode, item_shape=first.shape),
                   np.asarray(labels, np.int32), lab.num_classes, tuple(lab.names),
                   name=f"tfds:{name}", split=split,
                   coarse_labels=np.asarray(coarse, np.int32) if coarse else None,
                   coarse_class_names=(tuple(features["coarse_label"].names)
                                       if coarse else None))
  examples = _tfds_records(src, n)
  images = [np.asarray(ex[image_key]) for ex in examples]
  if image_size is not None or channels is not None:
    images = [_resize(x, image_size, channels) for x in images]
  shapes = {x.shape for x in images}
  if len(shapes) > 1:
    raise ValueError(f"tfds:{name} images differ in shape ({len(shapes)} "
                     "shapes): pass image_size=(H, W)")
  images = np.stack(images) if n else np.zeros((0,), np.uint8)
  labels = np.asarray([ex[label_key] for ex in examples], np.int32)
  names = tuple(lab.names)
  coarse = coarse_names = None
  if "coarse_label" in features:
    coarse = np.asarray([ex["coarse_label"] for ex in examples], np.int32)
    coarse_names = tuple(features["coarse_label"].names)
  return Dataset(images, labels, lab.num_classes, names, name=f"tfds:{name}",
                 split=split, coarse_labels=coarse,
                 coarse_class_names=coarse_names)


def _tfds_records_range(src, start: int, stop: int) -> list:
  """Records ``start..stop-1`` in one ``__getitems__`` read.

  Data sources without batched reads (the mock data of
  ``tfds.testing.mock_data`` and older TFDS versions) lack ``__getitems__``
  or raise on it; they are read one record at a time.
  """
  try:
    return list(src.__getitems__(list(range(start, stop))))
  except (TypeError, AttributeError, NotImplementedError):
    return [src[i] for i in range(start, stop)]


def _tfds_records(src, n: int, chunk: int = 4096) -> list:
  """All records, in chunks of ``chunk`` (`_tfds_records_range`)."""
  return [ex for s in range(0, n, chunk)
          for ex in _tfds_records_range(src, s, min(n, s + chunk))]


def _resize(x: np.ndarray, size, channels) -> np.ndarray:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  im = Image.fromarray(x[..., 0] if x.shape[-1] == 1 else x)
  ch = channels or x.shape[-1]
  im = im.convert("L" if ch == 1 else "RGB")
  if size is not None:
    im = im.resize((size[1], size[0]), Image.BILINEAR)
  a = np.asarray(im, np.uint8)
  return a[..., None] if ch == 1 else a
