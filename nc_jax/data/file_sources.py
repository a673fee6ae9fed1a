"""Sources read from files under the data root, decoded once and cached.

- IDX files: ``mnist``, ``fashion_mnist``.
- CIFAR "python version" pickles (extracted or ``.tar.gz``): ``cifar10``,
  ``cifar100``.
- Image folders ``<root>/<split>/<class>/*``: `load_image_folder`,
  ``image_folder:<path>`` and ``cifar10_jpeg``.

Each ``load_*`` finds the files (`nc_jax.data.core.candidate_dirs`), decodes
them with `nc_jax.data.formats` and caches the arrays as ``.npz``. The names
are resolved by `nc_jax.data.sources.load`.
"""

from __future__ import annotations

import functools
import os
import tarfile
from pathlib import Path

import numpy as np
from absl import logging

from nc_jax.data import constants
from nc_jax.data import formats
from nc_jax.data.lazy import LazyImages
from nc_jax.data.core import (Dataset, cache_key, cached, candidate_dirs,
                              default_data_root, fingerprint, not_found)


def check_split(split: str, allowed=("train", "test")) -> None:
  if split not in allowed:
    raise ValueError(f"unknown split {split!r}; expected one of {allowed}")


# ----------------------------------------------------------------- IDX files

_IDX_SUBDIRS = {
    "mnist": ["mnist", "MNIST/raw", "MNIST"],
    "fashion_mnist": ["fashion_mnist", "fashion-mnist", "FashionMNIST/raw",
                      "FashionMNIST"],
}


def load_idx(name: str, split: str, data_dir, cache: bool) -> Dataset:
  check_split(split)
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


def load_cifar(name: str, split: str, data_dir, cache: bool) -> Dataset:
  check_split(split)
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
                      name: str | None = None, lazy: bool = False,
                      skip_damaged: bool = False) -> Dataset:
  """Loads ``root/split/<class>/*`` (class index = sorted class folder names).

  Args:
    root: Tree root holding one folder per split.
    split: Split folder name.
    cache: Use the decoded-array cache (keyed on every file's size + mtime).
    image_size: (H, W) to resize to; needed when image sizes differ.
    channels: 1 or 3; default from the first image's mode.
    name: `Dataset.name` (default ``'image_folder:<root>'``).
    lazy: keep the file list and decode images on access (`data.lazy`):
      nothing is decoded or cached at load time (unless ``skip_damaged``).
    skip_damaged: leave out the files that do not decode (truncated,
      corrupt), listed in `Dataset.skipped` and logged; default: the first
      such file raises `formats.DamagedImageError`, naming it and the split.
      With ``lazy`` this costs one decoding pass over the split at load
      (its result cached like the decoded arrays): the data order must be
      fixed before training, so a file cannot be dropped mid-epoch.

  Raises:
    DamagedImageError: a file does not decode and ``skip_damaged`` is False.
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
  context = f"split {split!r} of image folder {root}"
  channels = channels or _channels(files, context, skip_damaged)
  size = tuple(image_size) if image_size is not None else None
  # Cache keys: every file's size and mtime, the decoding options.
  fp = fingerprint(files, base=split_dir) if cache else None
  key = lambda kind, **extra: cache_key(
      kind=kind, root=str(root.resolve()), split=split, classes=classes, size=size,
      channels=channels, files=fp, **extra) if cache else None
  cache_name = f"{name or root.name}-{split}"
  if skip_damaged and not lazy:  # One decoding pass: the readable images and which they are.
    a = cached(cache_name, key("image_folder_readable"), lambda: dict(zip(
        ("images", "readable"), formats.decode_readable(files, channels, size,
                                                          context=context))))
    bad = np.flatnonzero(~a["readable"])
  elif skip_damaged:  # Which files decode, decided once, before any order is drawn.
    bad = cached(cache_name + "-damaged", key("image_folder_damaged"), lambda: {
        "damaged": formats.damaged_files(files, channels, size, context=context)})["damaged"]
  skipped = tuple(str(files[i]) for i in bad) if skip_damaged else ()
  if skipped:
    logging.warning("left out %d image(s) of %s that do not decode: %s%s", len(skipped),
                    context, ", ".join(skipped[:5]), " ..." if len(skipped) > 5 else "")
    keep = np.setdiff1d(np.arange(len(files)), bad)
    files, labels = [files[i] for i in keep], labels[keep]
  if lazy:
    decode = functools.partial(formats.decode_image, channels=channels, size=size,
                               context=context)
    first = decode(files[0])
    images = LazyImages(files, decode, item_shape=first.shape)
    return Dataset(images, labels, len(classes), classes,
                   name=name or f"image_folder:{root}", split=split, skipped=skipped)
  if not skip_damaged:
    a = cached(cache_name, key("image_folder"), lambda: {
        "images": formats.decode_images(files, channels, size, context=context)})
  return Dataset(a["images"], labels, len(classes), classes,
                 name=name or f"image_folder:{root}", split=split, skipped=skipped)


def _channels(files, context: str, skip: bool) -> int:
  """1 or 3, from the first file PIL opens (the first file, unless ``skip``)."""
  for f in files:
    try:
      return formats.image_channels(f, context=context)
    except formats.DamagedImageError:
      if not skip:
        raise
  raise formats.DamagedImageError(f"none of the {len(files)} image files opens ({context})")


def _first_tree(cands: list[Path], split: str) -> Path | None:
  for c in cands:
    if (c / split).is_dir():
      return c
  return None


def load_image_folder_name(path: str, split: str, data_dir, cache: bool,
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


def load_cifar10_jpeg(split: str, data_dir, cache: bool, **options) -> Dataset:
  cands = candidate_dirs(data_dir, ["cifar10_jpeg"])
  tree = _first_tree(cands, split)
  if tree is None:
    raise not_found(
        f"cifar10_jpeg ({split} split)", [c / split for c in cands],
        "Expected <data root>/cifar10_jpeg/{train,test}/<class>/NNNN.jpg.")
  return load_image_folder(tree, split, cache=cache, name="cifar10_jpeg",
                           **options)
