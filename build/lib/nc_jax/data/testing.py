"""Writers of tiny data sets in the original distribution formats.

For tests (here and in other packages): write a few samples into a temporary
folder, then point `nc_jax.data.load` at it with ``data_dir=``.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nc_jax.data import constants


def write_idx(path: Path, arr: np.ndarray, gz: bool = True) -> bytes:
  """Writes uint8 `arr` as an IDX file; returns its header.

  The magic number is ``0x00 0x00 0x08 <ndim>`` (0x00000803 = 2051 for
  [N, H, W] images, 0x00000801 = 2049 for [N] labels), then the sizes as
  big-endian uint32.
  """
  arr = np.asarray(arr, np.uint8)
  header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I",
                                                        *arr.shape)
  raw = header + arr.tobytes()
  Path(path).write_bytes(gzip.compress(raw) if gz else raw)
  return header


def write_mnist(folder: Path, split: str, images: np.ndarray,
                labels: np.ndarray, gz: bool = True) -> None:
  """Writes ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`` in `folder`."""
  folder = Path(folder)
  folder.mkdir(parents=True, exist_ok=True)
  prefix = "train" if split == "train" else "t10k"
  sfx = ".gz" if gz else ""
  write_idx(folder / f"{prefix}-images-idx3-ubyte{sfx}", images, gz)
  write_idx(folder / f"{prefix}-labels-idx1-ubyte{sfx}", labels, gz)


def cifar_rows(images: np.ndarray) -> np.ndarray:
  """NHWC uint8 -> CIFAR rows [N, 3072]: 1024 red, 1024 green, 1024 blue."""
  images = np.asarray(images, np.uint8)
  return images.transpose(0, 3, 1, 2).reshape(len(images), 3072)


def _dump(path: Path, obj) -> None:
  with open(path, "wb") as f:
    pickle.dump(obj, f, protocol=2)


def _names(names: Sequence[str]) -> list[bytes]:
  return [n.encode() for n in names]


def write_cifar10(folder: Path, train: Sequence[tuple[np.ndarray, Sequence[int]]],
                  test: tuple[np.ndarray, Sequence[int]]) -> None:
  """Writes ``cifar-10-batches-py`` content into `folder`.

  Args:
    folder: Target (usually ``<root>/cifar-10-batches-py``).
    train: Five (images NHWC, labels) pairs for ``data_batch_1..5``.
    test: (images, labels) for ``test_batch``.
  """
  folder = Path(folder)
  folder.mkdir(parents=True, exist_ok=True)
  if len(train) != 5:
    raise ValueError("CIFAR-10 has five training batches")
  batches = [(f"data_batch_{i + 1}", b) for i, b in enumerate(train)]
  for fname, (imgs, labs) in batches + [("test_batch", test)]:
    # Keys as bytes: how Python 3 sees the original Python 2 pickles.
    _dump(folder / fname, {b"batch_label": fname.encode(),
                           b"labels": [int(v) for v in labs],
                           b"data": cifar_rows(imgs),
                           b"filenames": [b"img.png"] * len(labs)})
  _dump(folder / "batches.meta",
        {b"label_names": _names(constants.CIFAR10_CLASSES),
         b"num_cases_per_batch": len(train[0][1]), b"num_vis": 3072})


def write_cifar100(folder: Path, split: str, images: np.ndarray,
                   fine_labels: Sequence[int]) -> None:
  """Writes ``train`` or ``test`` (and ``meta``) of ``cifar-100-python``.

  Coarse labels are derived with the official fine -> coarse table.
  """
  folder = Path(folder)
  folder.mkdir(parents=True, exist_ok=True)
  fine = np.asarray(fine_labels, np.int64)
  _dump(folder / split, {b"data": cifar_rows(images),
                         b"fine_labels": fine.tolist(),
                         b"coarse_labels": constants.CIFAR100_FINE_TO_COARSE[
                             fine].tolist()})
  _dump(folder / "meta",
        {b"fine_label_names": _names(constants.CIFAR100_CLASSES),
         b"coarse_label_names": _names(constants.CIFAR100_SUPERCLASSES)})


def write_image_folder(root: Path, split: str,
                       images_by_class: dict[str, Sequence[np.ndarray]]) -> None:
  """Writes ``root/split/<class>/NNNN.png`` (stored, uncompressed PNGs).

  Uncompressed PNGs have a size that depends only on the image shape, which
  lets tests rewrite a file without changing its size.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  for cls, imgs in images_by_class.items():
    d = Path(root) / split / cls
    d.mkdir(parents=True, exist_ok=True)
    for j, img in enumerate(imgs):
      Image.fromarray(np.asarray(img, np.uint8)).save(d / f"{j:04d}.png",
                                                      compress_level=0)


def write_tfds_array_record(data_dir: Path, images: np.ndarray,
                            labels: Sequence[int],
                            class_names: Sequence[str]) -> str:
  """Prepares a TFDS data set ``tiny_array_record`` (split ``train``).

  Runs a real TFDS ``download_and_prepare`` in array_record format, so
  ``tfds.data_source`` reads it from files as it would a user's prepared
  data: an ``Image`` feature (PNG-encoded here with PIL, since TFDS encodes
  NumPy images with TensorFlow) and a ``ClassLabel``.

  Returns:
    The TFDS name to load (``'tiny_array_record'``).
  """
  import io  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top
  images = np.asarray(images, np.uint8)

  def png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(buf, "png")
    return buf.getvalue()

  class TinyArrayRecord(tfds.core.GeneratorBasedBuilder,
                        skip_registration=True):
    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
      return tfds.core.DatasetInfo(
          builder=self, features=tfds.features.FeaturesDict({
              "image": tfds.features.Image(shape=images.shape[1:]),
              "label": tfds.features.ClassLabel(names=list(class_names))}))

    def _split_generators(self, dl_manager):
      del dl_manager
      return {"train": self._generate_examples()}

    def _generate_examples(self):
      for i, (img, lab) in enumerate(zip(images, labels, strict=True)):
        yield i, {"image": png(img), "label": int(lab)}

  tfds.disable_progress_bar()
  TinyArrayRecord(data_dir=str(data_dir),
                  file_format="array_record").download_and_prepare()
  return "tiny_array_record"
