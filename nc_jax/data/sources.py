"""Named data sources and the `load` entry point.

Names (case-insensitive):

==========================  ===================================================
``mnist``, ``fashion_mnist``  IDX files (``.gz`` or not) in ``<root>/mnist``,
                            ``<root>/fashion_mnist`` or `data_dir`.
``cifar10``, ``cifar100``   "python version" pickles: ``cifar-10-batches-py/``
                            / ``cifar-100-python/`` (or their ``.tar.gz``).
``cifar10_jpeg``            Image folder ``<root>/cifar10_jpeg/{train,test}``.
``image_folder:<path>``     Any ``<path>/{split}/{class}/*.jpg|png`` tree.
``digits``                  scikit-learn ``load_digits`` (8x8, scaled to 0-255),
                            stratified 3/4 train, 1/4 test split (seeded).
``mnist1d``                 MNIST-1D regenerated locally (4000 / 1000).
``tfds:<name>``             A prepared TFDS data set via ``tfds.data_source``.
==========================  ===================================================

A split may carry a slice, e.g. ``'train[:1000]'`` or ``'test[500:]'``.
Decoded file sources are cached as ``.npz`` (see `nc_jax.data.core`).
"""

from __future__ import annotations

import functools
import os
import random
import re
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from nc_jax.data import constants
from nc_jax.data import formats
from nc_jax.data.lazy import LazyImages
from nc_jax.data.core import (Dataset, cache_key, cached, candidate_dirs,
                              default_data_root, fingerprint, not_found)

_SLICE = re.compile(r"^(?P<split>[\w.-]+)\[(?P<start>-?\d*):(?P<stop>-?\d*)\]$")


def load(name: str, split: str = "train", *,
         data_dir: str | os.PathLike | None = None, cache: bool = True,
         **options) -> Dataset:
  """Loads a data set split into memory.

  Args:
    name: Source name (see module docstring), e.g. ``'mnist'``,
      ``'cifar10_jpeg'``, ``'image_folder:/data/imagenette'``,
      ``'tfds:cifar100'``.
    split: ``'train'`` or ``'test'`` (image folders: any split folder; TFDS:
      any TFDS split string), optionally sliced as ``'train[:1000]'``.
    data_dir: Folder holding the files (or its parent); default the data root
      (``$NC_JAX_DATA_DIR`` or ``<repo>/../shared/data``). For ``tfds:`` the
      TFDS ``data_dir`` (default: TFDS's own).
    cache: Read/write the decoded-array cache for file sources.
    **options: Source-specific: ``image_size=(H, W)`` and ``channels`` for
      image folders and TFDS; ``test_fraction``, ``split_seed`` for digits;
      MNIST-1D generator arguments (e.g. ``num_samples``) for mnist1d.

  Returns:
    The `Dataset`.

  Raises:
    DatasetNotFoundError: The files are missing (message says where it looked
      and what to put there).
    ValueError: Unknown name or split.
  """
  key = name.strip()
  lower = key.lower()
  if lower.startswith("tfds:"):
    return _load_tfds(key[5:], split, data_dir, **options)
  base_split, sl = split, None
  m = _SLICE.match(split)
  if m:
    base_split = m["split"]
    sl = slice(int(m["start"]) if m["start"] else None,
               int(m["stop"]) if m["stop"] else None)
  if lower.startswith("image_folder:"):
    ds = _load_image_folder_name(key[len("image_folder:"):], base_split,
                                 data_dir, cache, **options)
  else:
    canon = _ALIASES.get(lower.replace("-", "_"), lower.replace("-", "_"))
    if canon not in _LOADERS:
      raise ValueError(f"unknown data set {name!r}; known: "
                       f"{sorted(_LOADERS)} or 'image_folder:<path>', "
                       "'tfds:<name>'")
    ds = _LOADERS[canon](base_split, data_dir, cache, **options)
  if sl is not None:
    ds = ds.subset(np.arange(len(ds))[sl]).replace(split=split)
  return ds


def _check_split(split: str, allowed=("train", "test")) -> None:
  if split not in allowed:
    raise ValueError(f"unknown split {split!r}; expected one of {allowed}")


# ----------------------------------------------------------------- IDX files

_IDX_SUBDIRS = {
    "mnist": ["mnist", "MNIST/raw", "MNIST"],
    "fashion_mnist": ["fashion_mnist", "fashion-mnist", "FashionMNIST/raw",
                      "FashionMNIST"],
}


def _load_idx(name: str, split: str, data_dir, cache: bool) -> Dataset:
  _check_split(split)
  prefix = "train" if split == "train" else "t10k"
  stems = (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte")
  looked = candidate_dirs(data_dir, _IDX_SUBDIRS[name])
  for folder in looked:
    img, lab = (formats.find_idx(folder, s) for s in stems)
    if img is not None and lab is not None:
      break
  else:
    raise not_found(
        f"{name} ({split} split)", looked,
        f"Put the original IDX files {stems[0]}.gz and {stems[1]}.gz (gzipped "
        f"or not) into <data root>/{_IDX_SUBDIRS[name][0]}/.")

  def build():
    images, labels = formats.read_idx(img), formats.read_idx(lab)
    if images.ndim != 3 or labels.shape != images.shape[:1]:
      raise ValueError(f"{img}, {lab}: shapes {images.shape}, {labels.shape}")
    return {"images": images[..., None].astype(np.uint8), "labels": labels}

  key = cache_key(kind="idx", files=fingerprint([img, lab])) if cache else None
  arrays = cached(f"{name}-{split}", key, build)
  classes = (constants.MNIST_CLASSES if name == "mnist"
             else constants.FASHION_MNIST_CLASSES)
  return Dataset(arrays["images"], arrays["labels"], 10, classes, name=name,
                 split=split)


# ------------------------------------------------------------- CIFAR pickles

_CIFAR = {
    "cifar10": dict(folder="cifar-10-batches-py", tar="cifar-10-python.tar.gz",
                    subdirs=["cifar10", "cifar-10"], meta="batches.meta",
                    train=[f"data_batch_{i}" for i in range(1, 6)],
                    test=["test_batch"]),
    "cifar100": dict(folder="cifar-100-python", tar="cifar-100-python.tar.gz",
                     subdirs=["cifar100", "cifar-100"], meta="meta",
                     train=["train"], test=["test"]),
}


def _cifar_source(name: str, split: str, data_dir):
  """(read(file names) -> {name: dict | None}, paths) of the first found source."""
  spec = _CIFAR[name]
  looked = []
  for base in candidate_dirs(data_dir, spec["subdirs"]):
    for folder in (base / spec["folder"], base):
      if folder in looked:
        continue
      looked.append(folder)
      if all((folder / f).is_file() for f in spec[split]):
        meta = folder / spec["meta"]
        paths = [folder / f for f in spec[split]]
        paths += [meta] if meta.is_file() else []

        def read_dir(names, d=folder):
          return {f: formats.read_cifar_pickle(d / f) if (d / f).is_file()
                  else None for f in names}
        return read_dir, paths
    tar = base / spec["tar"]
    looked.append(tar)
    if tar.is_file():
      def read_tar(names, tar=tar):
        out = dict.fromkeys(names)
        wanted = {f"{spec['folder']}/{f}": f for f in names}
        with tarfile.open(tar, "r:*") as t:  # one pass over the archive
          for member in t:
            if member.name in wanted:
              out[wanted[member.name]] = formats.read_cifar_pickle(
                  t.extractfile(member).read())
        return out
      return read_tar, [tar]
  raise not_found(
      f"{name} ({split} split)", looked,
      f"Put the extracted {spec['tar']} (the folder {spec['folder']}/ with "
      f"{', '.join(spec['train'] + spec['test'] + [spec['meta']])}) or the "
      f".tar.gz itself into <data root>/{spec['subdirs'][0]}/.")


def _load_cifar(name: str, split: str, data_dir, cache: bool) -> Dataset:
  _check_split(split)
  spec = _CIFAR[name]
  read, paths = _cifar_source(name, split, data_dir)

  def build():
    got = read(spec[split] + [spec["meta"]])
    batches = [got[f] for f in spec[split]]
    if any(b is None for b in batches):
      raise ValueError(f"{name}: archive lacks one of {spec[split]}")
    out = {"images": np.concatenate(
        [formats.cifar_images(b["data"]) for b in batches])}
    if name == "cifar10":
      out["labels"] = np.concatenate([b["labels"] for b in batches])
    else:
      out["labels"] = np.concatenate([b["fine_labels"] for b in batches])
      out["coarse_labels"] = np.concatenate(
          [b["coarse_labels"] for b in batches])
    meta = got[spec["meta"]]
    if meta is not None:
      for k in ("label_names", "fine_label_names", "coarse_label_names"):
        if k in meta:
          out[k] = np.asarray(meta[k], dtype=str)
    return out

  key = (cache_key(kind="cifar", name=name, split=split,
                   files=fingerprint(paths)) if cache else None)
  a = cached(f"{name}-{split}", key, build)
  if name == "cifar10":
    names = (tuple(a["label_names"]) if "label_names" in a
             else constants.CIFAR10_CLASSES)
    return Dataset(a["images"], a["labels"], 10, names, name=name, split=split)
  fine = (tuple(a["fine_label_names"]) if "fine_label_names" in a
          else constants.CIFAR100_CLASSES)
  coarse = (tuple(a["coarse_label_names"]) if "coarse_label_names" in a
            else constants.CIFAR100_SUPERCLASSES)
  return Dataset(a["images"], a["labels"], 100, fine, name=name, split=split,
                 coarse_labels=a["coarse_labels"], coarse_class_names=coarse)


# -------------------------------------------------------------- image folder


def load_image_folder(root: str | os.PathLike, split: str, *,
                      cache: bool = True, image_size: tuple[int, int] | None = None,
                      channels: int | None = None,
                      name: str | None = None, lazy: bool = False) -> Dataset:
  """Loads ``root/split/<class>/*`` (class index = sorted class folder names).

  Args:
    root: Tree root holding one folder per split.
    split: Split folder name.
    cache: Use the decoded-array cache (keyed on every file's size + mtime).
    image_size: (H, W) to resize to; needed when image sizes differ.
    channels: 1 or 3; default from the first image's mode.
    name: `Dataset.name` (default ``'image_folder:<root>'``).
    lazy: keep the file list and decode images on access (`data.lazy`):
      nothing is decoded or cached at load time.
  """
  root = Path(root).expanduser()
  split_dir = root / split
  how = ("Expected the layout <root>/<split>/<class name>/<image>.jpg|png "
         "(e.g. train/cat/0001.png); class index = sorted class folder names.")
  if not split_dir.is_dir():
    have = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    raise not_found(f"image folder split {split!r} (splits present: {have})",
                    [split_dir], how)
  classes = formats.folder_classes(root)
  files, labels = formats.list_image_folder(split_dir, classes)
  if not files:
    raise not_found(f"images of {split_dir}", [split_dir], how)
  channels = channels or formats.image_channels(files[0])
  size = tuple(image_size) if image_size is not None else None
  if lazy:
    decode = functools.partial(formats.decode_image, channels=channels, size=size)
    first = decode(files[0])
    images = LazyImages(files, decode, item_shape=first.shape)
    return Dataset(images, labels, len(classes), classes,
                   name=name or f"image_folder:{root}", split=split)
  key = None
  if cache:
    key = cache_key(kind="image_folder", root=str(root.resolve()), split=split,
                    classes=classes, size=size, channels=channels,
                    files=fingerprint(files, base=split_dir))
  a = cached(f"{name or root.name}-{split}", key,
             lambda: {"images": formats.decode_images(files, channels, size)})
  return Dataset(a["images"], labels, len(classes), classes,
                 name=name or f"image_folder:{root}", split=split)


def _first_tree(cands: list[Path], split: str) -> Path | None:
  for c in cands:
    if (c / split).is_dir():
      return c
  return None


def _load_image_folder_name(path: str, split: str, data_dir, cache: bool,
                            **options) -> Dataset:
  p = Path(path).expanduser()
  if p.is_absolute():
    cands = [p]
  else:
    root = Path(data_dir) if data_dir is not None else default_data_root()
    cands = [Path.cwd() / p] + ([root / p] if root is not None else [])
  tree = _first_tree(cands, split)
  if tree is None:
    raise not_found(f"image folder {path!r} ({split} split)",
                    [c / split for c in cands],
                    "Expected <path>/<split>/<class name>/<image>.jpg|png.")
  return load_image_folder(tree, split, cache=cache,
                           name=f"image_folder:{path}", **options)


def _load_cifar10_jpeg(split: str, data_dir, cache: bool, **options) -> Dataset:
  cands = candidate_dirs(data_dir, ["cifar10_jpeg"])
  tree = _first_tree(cands, split)
  if tree is None:
    raise not_found(
        f"cifar10_jpeg ({split} split)", [c / split for c in cands],
        "Expected <data root>/cifar10_jpeg/{train,test}/<class>/NNNN.jpg.")
  return load_image_folder(tree, split, cache=cache, name="cifar10_jpeg",
                           **options)


# ------------------------------------------------------------------ built-in


def _load_digits(split: str, data_dir, cache: bool, *,
                 test_fraction: float = 0.25, split_seed: int = 0) -> Dataset:
  """scikit-learn digits, pixels 0..16 scaled to uint8 0..255 (round(v*255/16)).

  The split is stratified: in each class, round(n_c * test_fraction) samples
  drawn with ``default_rng(split_seed)`` go to test; both splits keep the
  original sample order.
  """
  del data_dir, cache
  _check_split(split)
  from sklearn.datasets import load_digits  # pylint: disable=g-import-not-at-top
  d = load_digits()
  images = np.rint(d.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
  y = d.target.astype(np.int32)
  rng = np.random.default_rng(split_seed)
  is_test = np.zeros(len(y), bool)
  for c in range(10):
    idx = np.flatnonzero(y == c)
    is_test[rng.permutation(idx)[:int(round(len(idx) * test_fraction))]] = True
  keep = is_test if split == "test" else ~is_test
  return Dataset(images[keep], y[keep], 10, constants.MNIST_CLASSES,
                 name="digits", split=split)


def _load_mnist1d(split: str, data_dir, cache: bool, **overrides) -> Dataset:
  """MNIST-1D regenerated with ``make_dataset`` (never downloaded).

  The generator seeds NumPy's and Python's global RNGs; their states are
  restored afterwards.
  """
  del data_dir
  _check_split(split)
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


def _load_tfds(name: str, split: str, data_dir, *, image_key: str | None = None,
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


_LOADERS: dict[str, Callable[..., Dataset]] = {
    "mnist": lambda s, d, c: _load_idx("mnist", s, d, c),
    "fashion_mnist": lambda s, d, c: _load_idx("fashion_mnist", s, d, c),
    "cifar10": lambda s, d, c: _load_cifar("cifar10", s, d, c),
    "cifar100": lambda s, d, c: _load_cifar("cifar100", s, d, c),
    "cifar10_jpeg": _load_cifar10_jpeg,
    "digits": _load_digits,
    "mnist1d": _load_mnist1d,
}
_ALIASES = {"fmnist": "fashion_mnist", "fashionmnist": "fashion_mnist",
            "cifar_10": "cifar10", "cifar_100": "cifar100",
            "mnist_1d": "mnist1d"}

KNOWN_NAMES = tuple(sorted(_LOADERS))
