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

This module holds the name registry and `load`; the loaders live in
`nc_jax.data.file_sources` (IDX, CIFAR pickles, image folders) and
`nc_jax.data.package_sources` (digits, MNIST-1D, TFDS).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

import numpy as np

from nc_jax.data import file_sources
from nc_jax.data import package_sources
from nc_jax.data.core import Dataset
from nc_jax.data.file_sources import load_image_folder  # Re-export.

__all__ = ["KNOWN_NAMES", "load", "load_image_folder"]

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
    return package_sources.load_tfds(key[5:], split, data_dir, **options)
  base_split, sl = split, None
  m = _SLICE.match(split)
  if m:
    base_split = m["split"]
    sl = slice(int(m["start"]) if m["start"] else None,
               int(m["stop"]) if m["stop"] else None)
  if lower.startswith("image_folder:"):
    ds = file_sources.load_image_folder_name(
        key[len("image_folder:"):], base_split, data_dir, cache, **options)
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


_LOADERS: dict[str, Callable[..., Dataset]] = {
    "mnist": lambda s, d, c: file_sources.load_idx("mnist", s, d, c),
    "fashion_mnist":
        lambda s, d, c: file_sources.load_idx("fashion_mnist", s, d, c),
    "cifar10": lambda s, d, c: file_sources.load_cifar("cifar10", s, d, c),
    "cifar100": lambda s, d, c: file_sources.load_cifar("cifar100", s, d, c),
    "cifar10_jpeg": file_sources.load_cifar10_jpeg,
    "digits": package_sources.load_sklearn_digits,
    "mnist1d": package_sources.load_mnist1d,
}
_ALIASES = {"fmnist": "fashion_mnist", "fashionmnist": "fashion_mnist",
            "cifar_10": "cifar10", "cifar_100": "cifar100",
            "mnist_1d": "mnist1d"}

KNOWN_NAMES = tuple(sorted(_LOADERS))
