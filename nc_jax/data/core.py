"""The `Dataset` container, the missing-data error, data root and decode cache.

Environment variables:

- ``NC_JAX_DATA_DIR``: root folder of the original data files (default:
  ``<repo root>/../shared/data`` when that folder exists).
- ``NC_JAX_CACHE``: folder for decoded ``.npz`` caches (default
  ``~/.cache/nc_jax``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

# Bump when a decoder changes its output, so stale caches are never read.
CACHE_VERSION = 1

_PER_SAMPLE = ("images", "labels", "clean_labels", "coarse_labels",
               "fine_labels")
_LABEL_FIELDS = _PER_SAMPLE[1:]


def _is_lazy(images) -> bool:
  from nc_jax.data import lazy  # pylint: disable=g-import-not-at-top
  return lazy.is_lazy(images)


class DatasetNotFoundError(FileNotFoundError):
  """A data set's files are not where they were looked for.

  The message lists every place looked at and how to provide the files.
  """


@dataclasses.dataclass(frozen=True, eq=False)
class Dataset:
  """An in-memory labelled data set.

  Attributes:
    images: Inputs, first axis = samples. uint8 NHWC (values 0-255) for image
      data sets, float32 [N, 40] for MNIST-1D.
    labels: int32 [N], the labels to train on (noisy ones after label noise).
    num_classes: Number of classes of `labels`.
    class_names: Names of the `num_classes` classes.
    name: Source name (``'mnist'``, ``'cifar10_jpeg'``, ...); selects the
      normalization statistics.
    split: Split name (``'train'``, ``'test'``).
    clean_labels: int32 [N] labels before label noise, else None.
    coarse_labels: int32 [N] coarser labels of the same samples (CIFAR-100
      super-classes, or the original labels after `split_classes`), else None.
    coarse_class_names: Names of the coarse classes, else None.
    fine_labels: int32 [N] finer labels of the same samples (the original
      labels after `to_coarse`), else None.
    skipped: files of the source left out because they do not decode
      (image folders loaded with ``skip_damaged=True``); kept through
      subsets and relabelling, so a run can report them.
  """

  images: np.ndarray
  labels: np.ndarray
  num_classes: int
  class_names: tuple[str, ...]
  name: str = ""
  split: str = ""
  clean_labels: np.ndarray | None = None
  coarse_labels: np.ndarray | None = None
  coarse_class_names: tuple[str, ...] | None = None
  fine_labels: np.ndarray | None = None
  skipped: tuple[str, ...] = ()

  def __post_init__(self):
    if not _is_lazy(self.images):  # LazyImages decode on access (data.lazy).
      object.__setattr__(self, "images", np.asarray(self.images))
    n = len(self.images)
    for field in _LABEL_FIELDS:
      value = getattr(self, field)
      if value is None:
        continue
      value = np.asarray(value)
      if value.shape != (n,):
        raise ValueError(f"{field} has shape {value.shape}, expected ({n},)")
      object.__setattr__(self, field, value.astype(np.int32, copy=False))
    object.__setattr__(self, "num_classes", int(self.num_classes))
    object.__setattr__(self, "class_names", tuple(self.class_names))
    if len(self.class_names) != self.num_classes:
      raise ValueError(f"{len(self.class_names)} class names for "
                       f"{self.num_classes} classes")
    if self.coarse_class_names is not None:
      object.__setattr__(self, "coarse_class_names",
                         tuple(self.coarse_class_names))
    if n and (self.labels.min() < 0 or self.labels.max() >= self.num_classes):
      raise ValueError(f"labels outside [0, {self.num_classes})")

  def __len__(self) -> int:
    return len(self.labels)

  def __repr__(self) -> str:
    extra = [f for f in _LABEL_FIELDS[1:] if getattr(self, f) is not None]
    return (f"Dataset(name={self.name!r}, split={self.split!r}, "
            f"images={self.images.dtype}{list(self.images.shape)}, "
            f"num_classes={self.num_classes}, extra={extra})")

  def replace(self, **changes) -> Dataset:
    """Returns a copy with the given fields replaced."""
    return dataclasses.replace(self, **changes)

  def subset(self, indices: np.ndarray | Sequence[int]) -> Dataset:
    """Returns the samples at `indices` (every per-sample array indexed)."""
    idx = np.asarray(indices)
    changes = {f: getattr(self, f)[idx] for f in _PER_SAMPLE[1:]
               if getattr(self, f) is not None}
    images = self.images
    changes["images"] = images.take(idx) if _is_lazy(images) else images[idx]
    return self.replace(**changes)

  def class_counts(self) -> np.ndarray:
    """Number of samples per class of `labels`, int64 [num_classes]."""
    return np.bincount(self.labels, minlength=self.num_classes)


# ----------------------------------------------------------------- data root


def repo_root() -> Path:
  """The folder holding the ``nc_jax`` package (the repository root)."""
  return Path(__file__).resolve().parents[2]


def default_data_root() -> Path | None:
  """The data root: ``$NC_JAX_DATA_DIR``, else ``<repo>/../shared/data``.

  Returns:
    The path, or None if the variable is unset and the default is missing.
  """
  env = os.environ.get("NC_JAX_DATA_DIR")
  if env:
    return Path(env).expanduser()
  shared = repo_root().parent / "shared" / "data"
  return shared if shared.is_dir() else None


def candidate_dirs(data_dir: str | os.PathLike | None,
                   subdirs: Sequence[str]) -> list[Path]:
  """Folders to search: `data_dir` (itself, then `subdirs` in it) or the root.

  Args:
    data_dir: Explicit folder from the caller, or None for the data root.
    subdirs: Sub-folder names the files may sit in (e.g. ``['mnist']``).

  Returns:
    Candidate folders in search order (possibly not existing).
  """
  if data_dir is not None:
    base = [Path(data_dir).expanduser()]
  else:
    root = default_data_root()
    base = [root] if root is not None else []
  out = []
  for b in base:
    for c in [b / s for s in subdirs] + [b]:
      if c not in out:
        out.append(c)
  return out


def not_found(what: str, looked: Iterable[Path], how: str, *,
              root_hint: bool = True) -> DatasetNotFoundError:
  """Builds the error for a data set that was not found.

  Args:
    what: Data set description.
    looked: Every path that was looked at.
    how: How to provide the files.
    root_hint: Append how to point at another data root.
  """
  looked = [str(p) for p in looked]
  where = "\n  ".join(looked) if looked else "(nowhere)"
  msg = f"{what} not found. Looked in:\n  {where}\n{how}"
  if root_hint:
    root = default_data_root()
    if root is None:
      root = (f"unset: NC_JAX_DATA_DIR is empty and "
              f"{repo_root().parent / 'shared' / 'data'} does not exist")
    msg += ("\nPass data_dir=... or set NC_JAX_DATA_DIR to the folder holding "
            f"the data sets (current data root: {root}).")
  return DatasetNotFoundError(msg)


# --------------------------------------------------------------------- cache


def cache_dir() -> Path:
  """``$NC_JAX_CACHE`` or ``~/.cache/nc_jax``."""
  env = os.environ.get("NC_JAX_CACHE")
  return Path(env).expanduser() if env else Path.home() / ".cache" / "nc_jax"


def fingerprint(paths: Iterable[Path], base: Path | None = None) -> list:
  """[(path, size, mtime_ns)] of files, paths relative to `base` if given."""
  out = []
  prefix = str(base) + os.sep if base is not None else None
  for p in paths:
    st = os.stat(p)
    name = str(p)
    if prefix is not None and name.startswith(prefix):
      name = name[len(prefix):]
    elif prefix is None:
      name = str(Path(p).resolve())
    out.append((name, st.st_size, st.st_mtime_ns))
  return out


def cache_key(**parts) -> str:
  """A hex digest of JSON-able `parts` plus the cache version."""
  blob = json.dumps({"version": CACHE_VERSION, **parts}, sort_keys=True,
                    default=str)
  return hashlib.sha256(blob.encode()).hexdigest()[:20]


def cached(stem: str, key: str | None,
           build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
  """Returns `build()`, read from / written to ``cache_dir()/stem-key.npz``.

  Args:
    stem: Human-readable file name prefix.
    key: Cache key (see `cache_key`), or None to skip the cache.
    build: Produces a dict of arrays (no object arrays).

  Returns:
    The dict of arrays. A cache that cannot be written only warns.
  """
  if key is None:
    return build()
  stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)
  path = cache_dir() / f"{stem}-{key}.npz"
  if path.is_file():
    try:
      with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files}
    except Exception as e:  # noqa: BLE001 - a bad cache is rebuilt.
      warnings.warn(f"ignoring unreadable cache {path}: {e}", stacklevel=2)
  arrays = build()
  try:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    os.chmod(tmp, 0o644)  # mkstemp makes 0600
    try:
      with os.fdopen(fd, "wb") as f:
        np.savez(f, **arrays)
      os.replace(tmp, path)
    finally:
      if os.path.exists(tmp):
        os.remove(tmp)
  except OSError as e:
    warnings.warn(f"could not write cache {path}: {e}", stacklevel=2)
  return arrays
