"""Readers for the original distribution formats (no caching, no lookup).

- IDX (MNIST, Fashion-MNIST), gzipped or not: `read_idx`.
- CIFAR-10/100 "python version" pickled batches: `read_cifar_pickle`.
- Image-folder trees ``{split}/{class}/*.jpg|png``: `list_image_folder`,
  `decode_images`; a file that does not decode raises `DamagedImageError`
  naming it, or is left out (`decode_readable`, `damaged_files`).
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

# IDX type codes (third magic byte) -> big-endian dtype.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4",
               0x0D: ">f4", 0x0E: ">f8"}

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".ppm")


def read_idx(path: str | os.PathLike) -> np.ndarray:
  """Reads an IDX file (``gzip`` detected from its first bytes).

  The header is the magic number ``0x00 0x00 <type> <ndim>`` followed by
  `ndim` big-endian uint32 sizes (images: 0x00000803, labels: 0x00000801).

  Args:
    path: The file.

  Returns:
    The array in native byte order (uint8 for MNIST).

  Raises:
    ValueError: For a bad magic number or a size mismatch.
  """
  with open(path, "rb") as f:
    raw = f.read()
  if raw[:2] == b"\x1f\x8b":
    raw = gzip.decompress(raw)
  if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
    raise ValueError(f"{path}: not an IDX file (magic {raw[:4].hex()})")
  dtype = np.dtype(_IDX_DTYPES[raw[2]])
  ndim = raw[3]
  shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
  offset = 4 + 4 * ndim
  count = int(np.prod(shape))
  if len(raw) - offset != count * dtype.itemsize:
    raise ValueError(f"{path}: header says {shape} {dtype} but holds "
                     f"{len(raw) - offset} bytes of data")
  arr = np.frombuffer(raw, dtype=dtype, count=count, offset=offset)
  return arr.reshape(shape).astype(dtype.newbyteorder("="))


def find_idx(folder: Path, stem: str) -> Path | None:
  """The IDX file `stem` in `folder` (``.gz`` or not, ``-`` or ``.`` before idx)."""
  alt = stem.replace("-idx", ".idx")
  for name in (stem + ".gz", stem, alt + ".gz", alt):
    if (folder / name).is_file():
      return folder / name
  return None


def _str_keys(d: dict) -> dict[str, Any]:
  return {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}


def read_cifar_pickle(source: str | os.PathLike | bytes) -> dict[str, Any]:
  """Unpickles one CIFAR "python version" file (a batch or ``meta``).

  The files were written by Python 2; keys come back as ``str`` and byte
  strings in lists (label names) are decoded. Only open files you trust:
  unpickling can run code.

  Args:
    source: A path or the file's bytes.

  Returns:
    The dict, e.g. ``{'data': uint8 [N, 3072], 'labels': [...]}``.
  """
  if isinstance(source, bytes):
    d = pickle.load(io.BytesIO(source), encoding="bytes")
  else:
    with open(source, "rb") as f:
      d = pickle.load(f, encoding="bytes")
  d = _str_keys(d)
  for k, v in d.items():
    if isinstance(v, list) and v and isinstance(v[0], bytes):
      d[k] = [x.decode() for x in v]
  return d


def cifar_images(data: np.ndarray) -> np.ndarray:
  """CIFAR rows [N, 3072] (channel-major: 1024 R, 1024 G, 1024 B) -> NHWC."""
  data = np.asarray(data, dtype=np.uint8)
  return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()


# -------------------------------------------------------------- image folder


def _subdirs(path: Path) -> list[str]:
  return sorted(e.name for e in os.scandir(path)
                if e.is_dir() and not e.name.startswith("."))


def folder_classes(root: Path) -> list[str]:
  """Class names of an image-folder tree: sorted union over its split folders.

  Using the union over every split keeps class indices identical across
  splits even if one split lacks a class.
  """
  names = set()
  for split in _subdirs(root):
    names.update(_subdirs(root / split))
  return sorted(names)


def list_image_folder(split_dir: Path, classes: Sequence[str]
                      ) -> tuple[list[Path], np.ndarray]:
  """Image files of ``split_dir/<class>/*`` and their class indices.

  Args:
    split_dir: The split folder.
    classes: Class names; label = index in this list.

  Returns:
    (files sorted by class then file name, int32 labels).
  """
  files, labels = [], []
  for idx, cls in enumerate(classes):
    d = split_dir / cls
    if not d.is_dir():
      continue
    names = sorted(e.name for e in os.scandir(d)
                   if e.is_file() and e.name.lower().endswith(IMAGE_EXTENSIONS))
    files.extend(d / n for n in names)
    labels.extend([idx] * len(names))
  return files, np.asarray(labels, dtype=np.int32)


SKIP_HINT = ("pass skip_damaged=True (a trainer config: data.options.skip_damaged=True) "
             "to leave unreadable images out, counted in the run's summary")


class DamagedImageError(OSError):
  """An image file that cannot be decoded (truncated, corrupt, not an image).

  The message names the file, what it belongs to, PIL's reason and
  `SKIP_HINT`.
  """


def decode_image(path: Path, channels: int,
                 size: tuple[int, int] | None = None, *, context: str = "") -> np.ndarray:
  """Decodes one image file to uint8 [H, W, channels] with PIL.

  Args:
    path: Image file.
    channels: 1 (grayscale) or 3 (RGB).
    size: Optional (height, width) to resize to (bilinear).
    context: what the file belongs to, for the error (e.g. ``"split 'train'
      of image folder /data/imagenet"``).

  Raises:
    DamagedImageError: PIL cannot read or fully decode the file.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  try:
    with Image.open(path) as im:
      im = im.convert("L" if channels == 1 else "RGB")
      if size is not None and im.size != (size[1], size[0]):
        im = im.resize((size[1], size[0]), Image.BILINEAR)
      arr = np.asarray(im, dtype=np.uint8)
  except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
    where = f" ({context})" if context else ""
    raise DamagedImageError(f"cannot decode image {path}{where}: "
                            f"{type(err).__name__}: {err}; {SKIP_HINT}") from err
  return arr[..., None] if channels == 1 else arr


def image_channels(path: Path, *, context: str = "") -> int:
  """1 if the image is grayscale (modes 1, L, LA, I, F), else 3.

  Raises:
    DamagedImageError: PIL cannot open the file.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  try:
    with Image.open(path) as im:
      return 1 if im.mode in ("1", "L", "LA", "I", "I;16", "F") else 3
  except (OSError, SyntaxError, ValueError) as err:
    where = f" ({context})" if context else ""
    raise DamagedImageError(f"cannot open image {path}{where}: {type(err).__name__}: "
                            f"{err}; {SKIP_HINT}") from err


def _threads(num_threads: int | None, n: int) -> int:
  return 1 if n < 256 else (num_threads or min(8, os.cpu_count() or 1))


def _each(fn, n: int, threads: int) -> list:
  """[fn(i) for i in range(n)], on ``threads`` threads."""
  if threads <= 1:
    return [fn(i) for i in range(n)]
  with ThreadPoolExecutor(threads) as ex:
    return list(ex.map(fn, range(n), chunksize=256))


def _decode_all(files: Sequence[Path], channels: int, size: tuple[int, int] | None,
                num_threads: int | None, skip: bool, context: str,
                keep: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
  """(images of the readable files or None if not ``keep``, readable mask)."""
  if not files:
    raise ValueError("no image files to decode")
  ok = np.ones(len(files), bool)
  first = None
  for i, f in enumerate(files):  # The first readable image sets the shape.
    try:
      first = decode_image(f, channels, size, context=context)
      break
    except DamagedImageError:
      if not skip:
        raise
      ok[i] = False
  if first is None:
    raise DamagedImageError(f"none of the {len(files)} image files decodes ({context})")
  start = int(np.argmax(ok))
  out = np.empty((len(files),) + first.shape, np.uint8) if keep else None
  if keep:
    out[start] = first

  def work(i):
    i += start + 1
    try:
      img = decode_image(files[i], channels, size, context=context)
    except DamagedImageError:
      if not skip:
        raise
      ok[i] = False
      return
    if img.shape != first.shape:
      raise ValueError(f"{files[i]} has shape {img.shape}, {files[start]} has "
                       f"{first.shape}: pass image_size=(H, W) to resize")
    if keep:
      out[i] = img

  _each(work, len(files) - start - 1, _threads(num_threads, len(files)))
  return (out[ok] if keep and not ok.all() else out), ok


def decode_images(files: Sequence[Path], channels: int,
                  size: tuple[int, int] | None = None,
                  num_threads: int | None = None, *, context: str = "") -> np.ndarray:
  """Decodes image files into one uint8 [N, H, W, C] array (threaded).

  Args:
    files: Image files.
    channels: 1 or 3.
    size: Optional (height, width); required if the images differ in size.
    num_threads: Decoder threads (default: number of CPUs, at most 8).
    context: what the files belong to, for errors.

  Raises:
    ValueError: If the images differ in size and no `size` was given.
    DamagedImageError: a file does not decode (named in the message).
  """
  return _decode_all(files, channels, size, num_threads, False, context)[0]


def decode_readable(files: Sequence[Path], channels: int,
                    size: tuple[int, int] | None = None, num_threads: int | None = None,
                    *, context: str = "") -> tuple[np.ndarray, np.ndarray]:
  """`decode_images` leaving out the files that do not decode.

  Returns:
    (uint8 [M, H, W, C] images of the readable files in order, bool [N]
    mask of the readable files).
  """
  return _decode_all(files, channels, size, num_threads, True, context)


def damaged_files(files: Sequence[Path], channels: int,
                  size: tuple[int, int] | None = None, num_threads: int | None = None,
                  *, context: str = "") -> np.ndarray:
  """Indices of the files that do not decode: one decoding pass, nothing kept."""
  return np.flatnonzero(~_decode_all(files, channels, size, num_threads, True, context,
                                     keep=False)[1])
