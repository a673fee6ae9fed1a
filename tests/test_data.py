"""nc_jax.data: original-format readers, real data, built-ins, transforms.

Formats are checked on tiny files written here in the original layouts; the
real copies under ``../shared/data`` (or ``$NC_JAX_DATA_DIR``) are checked
against published facts (sizes, class counts, first labels, channel means).
Decoded-array caches go to a temporary folder, never into the repository.
"""

from __future__ import annotations

import os
import pickle
import random
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nc_jax import data
from nc_jax.data import formats
from nc_jax.data.testing import (write_cifar10, write_cifar100, write_idx,
                                 write_image_folder, write_mnist)

# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory) -> Path:
  return tmp_path_factory.mktemp("nc_jax_cache")


@pytest.fixture(autouse=True)
def _hermetic_cache(session_cache, monkeypatch):
  monkeypatch.setenv("NC_JAX_CACHE", str(session_cache))


def _real_root(sub: str) -> Path:
  root = data.default_data_root()
  if root is None or not (root / sub).is_dir():
    pytest.skip(f"REAL DATA MISSING: {sub}/ not found under the data root "
                f"({root}); set NC_JAX_DATA_DIR or provide ../shared/data "
                "to run this test")
  return root


def rand_images(rng, n, h=32, w=32, c=3) -> np.ndarray:
  return rng.integers(0, 256, (n, h, w, c), dtype=np.uint8)


def _no_decode(*args, **kwargs):
  raise AssertionError("decoded although cached")


# ------------------------------------------------------------ IDX (MNIST)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_files_roundtrip_exactly(tmp_path, gz):
  rng = np.random.default_rng(0)
  folder = tmp_path / "mnist"
  folder.mkdir()
  want = {}
  for prefix, n in (("train", 7), ("t10k", 3)):
    imgs = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labs = rng.integers(0, 10, n, dtype=np.uint8)
    sfx = ".gz" if gz else ""
    h_img = write_idx(folder / f"{prefix}-images-idx3-ubyte{sfx}", imgs, gz)
    h_lab = write_idx(folder / f"{prefix}-labels-idx1-ubyte{sfx}", labs, gz)
    assert struct.unpack(">I", h_img[:4])[0] == 2051  # 0x00000803
    assert struct.unpack(">I", h_lab[:4])[0] == 2049  # 0x00000801
    want["train" if prefix == "train" else "test"] = (imgs, labs)
  for split, (imgs, labs) in want.items():
    for data_dir in (tmp_path, folder):  # the root or the folder itself
      ds = data.load("mnist", split, data_dir=data_dir)
      assert ds.images.dtype == np.uint8 and ds.labels.dtype == np.int32
      assert ds.images.shape == imgs.shape + (1,)
      np.testing.assert_array_equal(ds.images[..., 0], imgs)
      np.testing.assert_array_equal(ds.labels, labs)
      assert ds.num_classes == 10 and ds.split == split


def test_fashion_mnist_subfolder_and_slice(tmp_path):
  rng = np.random.default_rng(1)
  imgs = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
  labs = np.array([9, 0, 0, 3, 1], np.uint8)
  write_mnist(tmp_path / "fashion_mnist", "test", imgs, labs)
  ds = data.load("fashion_mnist", "test[1:4]", data_dir=tmp_path)
  np.testing.assert_array_equal(ds.images[..., 0], imgs[1:4])
  np.testing.assert_array_equal(ds.labels, labs[1:4])
  assert ds.class_names[9] == "Ankle boot"


def test_read_idx_rejects_bad_files(tmp_path):
  bad = tmp_path / "bad"
  bad.write_bytes(b"\x12\x34\x08\x01" + b"\x00" * 8)
  with pytest.raises(ValueError, match="not an IDX"):
    formats.read_idx(bad)
  short = tmp_path / "short"
  write_idx(short, np.zeros((4, 2), np.uint8), gz=False)
  short.write_bytes(short.read_bytes()[:-1])
  with pytest.raises(ValueError, match="header says"):
    formats.read_idx(short)


# ------------------------------------------------------------ CIFAR pickles


def _write_cifar10(folder: Path, rng) -> dict:
  train = [(rand_images(rng, 3), rng.integers(0, 10, 3)) for _ in range(5)]
  test = (rand_images(rng, 4), np.array([3, 1, 4, 1]))
  write_cifar10(folder, train, test)
  return {"train": (np.concatenate([t[0] for t in train]),
                    np.concatenate([t[1] for t in train])), "test": test}


def test_cifar10_python_batches_exact(tmp_path):
  want = _write_cifar10(tmp_path / "cifar-10-batches-py",
                        np.random.default_rng(2))
  for split, (imgs, labs) in want.items():
    ds = data.load("cifar10", split, data_dir=tmp_path)
    assert ds.images.shape == imgs.shape and ds.images.dtype == np.uint8
    np.testing.assert_array_equal(ds.images, imgs)
    np.testing.assert_array_equal(ds.labels, labs)
    assert ds.class_names == data.CIFAR10_CLASSES
  # The layout of the spec: row = 1024 red, 1024 green, 1024 blue, row-major.
  with open(tmp_path / "cifar-10-batches-py" / "test_batch", "rb") as f:
    rows = pickle.load(f, encoding="bytes")[b"data"]
  for y, x, c in [(0, 0, 0), (2, 5, 1), (31, 7, 2), (9, 30, 1)]:
    assert ds.images[1, y, x, c] == rows[1, c * 1024 + y * 32 + x]
  # The same from the distribution archive, read without extracting.
  arch = tmp_path / "arch"
  arch.mkdir()
  with tarfile.open(arch / "cifar-10-python.tar.gz", "w:gz") as t:
    t.add(tmp_path / "cifar-10-batches-py", arcname="cifar-10-batches-py")
  ds = data.load("cifar10", "train", data_dir=arch)
  np.testing.assert_array_equal(ds.images, want["train"][0])
  np.testing.assert_array_equal(ds.labels, want["train"][1])


def test_cifar100_python_pickles_exact(tmp_path):
  rng = np.random.default_rng(3)
  folder = tmp_path / "cifar100" / "cifar-100-python"
  want = {}
  for split, n in (("train", 6), ("test", 4)):
    imgs, fine = rand_images(rng, n), rng.integers(0, 100, n)
    write_cifar100(folder, split, imgs, fine)
    want[split] = (imgs, fine, data.CIFAR100_FINE_TO_COARSE[fine])
  for split, (imgs, fine, coarse) in want.items():
    ds = data.load("cifar100", split, data_dir=tmp_path)
    np.testing.assert_array_equal(ds.images, imgs)
    np.testing.assert_array_equal(ds.labels, fine)
    np.testing.assert_array_equal(ds.coarse_labels, coarse)
    assert ds.num_classes == 100 and len(ds.coarse_class_names) == 20
    assert ds.class_names[1] == "aquarium_fish"


# --------------------------------------------------------------- image folder


def _write_tree(root: Path, rng) -> dict:
  """train: ant, cat, dog; test: ant, dog (no cat). RGB PNGs 6x5."""
  layout = {"train": {"cat": 2, "ant": 3, "dog": 1}, "test": {"dog": 2, "ant": 1}}
  classes = ["ant", "cat", "dog"]
  want = {}
  for split, counts in layout.items():
    by_class = {c: list(rand_images(rng, n, 6, 5)) for c, n in counts.items()}
    write_image_folder(root, split, by_class)
    order = [c for c in classes if c in by_class]
    want[split] = (np.concatenate([by_class[c] for c in order]),
                   np.repeat([classes.index(c) for c in order],
                             [counts[c] for c in order]))
  return want


def test_image_folder_exact_pixels_and_classes(tmp_path):
  root = tmp_path / "tree"
  want = _write_tree(root, np.random.default_rng(4))
  for split, (imgs, labs) in want.items():
    ds = data.load(f"image_folder:{root}", split)
    assert ds.class_names == ("ant", "cat", "dog")  # union over splits
    np.testing.assert_array_equal(ds.images, imgs)
    np.testing.assert_array_equal(ds.labels, labs)
  # Relative path, resolved against data_dir.
  ds = data.load("image_folder:tree", "test", data_dir=tmp_path)
  np.testing.assert_array_equal(ds.labels, want["test"][1])


def test_image_folder_cache_hit_and_invalidation(tmp_path, monkeypatch):
  monkeypatch.setenv("NC_JAX_CACHE", str(tmp_path / "cache"))
  root = tmp_path / "tree"
  want = _write_tree(root, np.random.default_rng(5))
  data.load_image_folder(root, "train")
  assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
  real_decode = formats.decode_image
  monkeypatch.setattr(formats, "decode_image", _no_decode)
  ds = data.load_image_folder(root, "train")  # served from the cache
  np.testing.assert_array_equal(ds.images, want["train"][0])
  # Rewriting a file with the same size but a new mtime rebuilds the cache.
  new = np.zeros((6, 5, 3), np.uint8)
  path = root / "train" / "ant" / "0000.png"
  size = path.stat().st_size
  Image.fromarray(new).save(path, compress_level=0)  # stored: same size
  assert path.stat().st_size == size
  os.utime(path, ns=(1, 1))
  with pytest.raises(AssertionError, match="decoded although cached"):
    data.load_image_folder(root, "train")
  monkeypatch.setattr(formats, "decode_image", real_decode)
  ds = data.load_image_folder(root, "train")
  np.testing.assert_array_equal(ds.images[0], new)
  assert not list((tmp_path / "cache").glob("*.tmp"))


def test_image_folder_gray_and_sizes(tmp_path):
  root = tmp_path / "g"
  for i, size in enumerate([(4, 4), (6, 3)]):
    d = root / "train" / f"c{i}"
    d.mkdir(parents=True)
    Image.fromarray(np.full(size, 10 * (i + 1), np.uint8)).save(d / "a.png")
  with pytest.raises(ValueError, match="image_size"):
    data.load_image_folder(root, "train", cache=False)
  ds = data.load_image_folder(root, "train", image_size=(5, 5), cache=False)
  assert ds.images.shape == (2, 5, 5, 1)  # grayscale kept as 1 channel
  np.testing.assert_array_equal(ds.images[1], 20)


# ---------------------------------------------------------- missing / errors


@pytest.mark.parametrize("name,hint", [
    ("mnist", "train-images-idx3-ubyte"), ("fashion_mnist", "t10k"),
    ("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python"),
    ("cifar10_jpeg", "cifar10_jpeg"), ("image_folder:nowhere", "<class name>"),
])
def test_missing_data_error_names_paths(tmp_path, name, hint):
  empty = tmp_path / "empty_root"
  empty.mkdir()
  split = "test" if name == "fashion_mnist" else "train"
  with pytest.raises(data.DatasetNotFoundError) as err:
    data.load(name, split, data_dir=empty)
  assert isinstance(err.value, FileNotFoundError)
  msg = str(err.value)
  assert str(empty) in msg and hint in msg and "NC_JAX_DATA_DIR" in msg


def test_missing_data_error_uses_env_root(tmp_path, monkeypatch):
  monkeypatch.setenv("NC_JAX_DATA_DIR", str(tmp_path / "myroot"))
  assert data.default_data_root() == tmp_path / "myroot"
  with pytest.raises(FileNotFoundError, match="myroot"):
    data.load("mnist", "test")


def test_default_data_root_fallback(monkeypatch):
  monkeypatch.delenv("NC_JAX_DATA_DIR", raising=False)
  shared = Path(__file__).resolve().parents[1].parent / "shared" / "data"
  assert data.default_data_root() == (shared if shared.is_dir() else None)


def test_unknown_name_and_split():
  with pytest.raises(ValueError, match="unknown data set"):
    data.load("imagenet21k", "train")
  with pytest.raises(ValueError, match="unknown split"):
    data.load("digits", "validation")


# ------------------------------------------------------------------ real data

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851,
                      5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_real_mnist():
  root = _real_root("mnist")
  train, test = data.load("mnist", "train"), data.load("mnist", "test")
  assert train.images.shape == (60000, 28, 28, 1)
  assert test.images.shape == (10000, 28, 28, 1)
  assert train.labels[0] == 5 and test.labels[0] == 7  # the well-known ones
  np.testing.assert_array_equal(train.class_counts(), MNIST_TRAIN_COUNTS)
  np.testing.assert_array_equal(test.class_counts(), MNIST_TEST_COUNTS)
  mean, std = data.compute_stats(train.images)
  np.testing.assert_allclose(mean, [0.1307], atol=1e-3)
  np.testing.assert_allclose(std, [0.3081], atol=1e-3)
  # Explicit data_dir gives the same arrays.
  again = data.load("mnist", "test", data_dir=root / "mnist", cache=False)
  np.testing.assert_array_equal(again.images, test.images)


def test_real_fashion_mnist():
  _real_root("fashion_mnist")
  train, test = data.load("fashion_mnist", "train"), data.load(
      "fashion_mnist", "test")
  assert train.images.shape == (60000, 28, 28, 1)
  assert test.images.shape == (10000, 28, 28, 1)
  assert train.labels[0] == 9 and test.labels[0] == 9  # ankle boots
  np.testing.assert_array_equal(train.class_counts(), [6000] * 10)
  np.testing.assert_array_equal(test.class_counts(), [1000] * 10)
  mean, std = data.compute_stats(train.images)
  np.testing.assert_allclose(mean, data.DATASET_STATS["fashion_mnist"][0],
                             atol=1e-3)
  np.testing.assert_allclose(std, data.DATASET_STATS["fashion_mnist"][1],
                             atol=1e-3)


def test_real_cifar10_jpeg_test_split(monkeypatch):
  _real_root("cifar10_jpeg")
  ds = data.load("cifar10_jpeg", "test")  # ~1-3 s of decoding, then cached
  assert ds.images.shape == (10000, 32, 32, 3) and ds.images.dtype == np.uint8
  assert ds.class_names == data.CIFAR10_CLASSES
  np.testing.assert_array_equal(ds.class_counts(), [1000] * 10)
  # Channel means of the original CIFAR-10 test set; the JPEG copy is close.
  mean, _ = data.compute_stats(ds.images)
  np.testing.assert_allclose(mean, [0.4942, 0.4851, 0.4504], atol=0.01)
  monkeypatch.setattr(formats, "decode_image", _no_decode)
  again = data.load("cifar10_jpeg", "test")
  np.testing.assert_array_equal(again.images, ds.images)


# ----------------------------------------------------------------- built-ins


def test_digits_split_is_stratified_and_deterministic():
  train, test = data.load("digits", "train"), data.load("digits", "test")
  assert train.images.shape[1:] == (8, 8, 1) and train.images.dtype == np.uint8
  assert len(train) + len(test) == 1797
  full = np.bincount(np.concatenate([train.labels, test.labels]))
  np.testing.assert_array_equal(full, [178, 182, 177, 183, 181, 182, 181, 179,
                                       174, 180])
  np.testing.assert_array_equal(test.class_counts(), np.rint(full / 4))
  assert train.images.max() == 255  # 16 -> 255
  # No sample in both splits (digits has a few exact duplicates; compare as
  # multisets of the whole data set instead of pairwise).
  from sklearn.datasets import load_digits
  allx = np.rint(load_digits().images * 255 / 16).astype(np.uint8)
  got = np.concatenate([train.images, test.images])[..., 0]
  key = lambda a: sorted(map(bytes, a.reshape(len(a), -1)))
  assert key(got) == key(allx)
  again = data.load("digits", "test")
  np.testing.assert_array_equal(again.images, test.images)
  other = data.load("digits", "test", split_seed=1)
  assert not np.array_equal(other.images, test.images)


def test_mnist1d_regenerated_deterministic():
  np.random.seed(1234)
  random.seed(1234)
  np_state, py_state = np.random.get_state()[1].copy(), random.getstate()
  train = data.load("mnist1d", "train")
  np.testing.assert_array_equal(np.random.get_state()[1], np_state)
  assert random.getstate() == py_state
  test = data.load("mnist1d", "test")
  assert train.images.shape == (4000, 40) and train.images.dtype == np.float32
  assert test.images.shape == (1000, 40)
  # Pinned output of make_dataset(get_dataset_args()) (seed 42).
  np.testing.assert_array_equal(train.class_counts(),
                                [398, 396, 411, 394, 394, 402, 401, 404, 402,
                                 398])
  np.testing.assert_array_equal(test.class_counts(),
                                [102, 104, 89, 106, 106, 98, 99, 96, 98, 102])
  np.testing.assert_array_equal(train.labels[:10], [2, 6, 4, 5, 6, 6, 6, 0, 3, 1])
  np.testing.assert_allclose(train.images[0, :3], [-0.3320057, -0.4719104,
                                                   -0.7786971], atol=1e-5)


# ---------------------------------------------------------------------- TFDS


def test_tfds_mock_data():
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=9):
    ds = data.load("tfds:mnist", "train")
    direct = tfds.data_source("mnist", split="train")
    assert ds.images.shape == (9, 28, 28, 1) and ds.num_classes == 10
    np.testing.assert_array_equal(ds.images, np.stack([direct[i]["image"]
                                                       for i in range(9)]))
    np.testing.assert_array_equal(ds.labels, [direct[i]["label"]
                                              for i in range(9)])
    ds = data.load("tfds:cifar100", "test")
    assert ds.images.shape == (9, 32, 32, 3) and ds.num_classes == 100
    assert ds.coarse_labels.shape == (9,) and ds.coarse_labels.max() < 20


def test_tfds_prepared_array_record(tmp_path):
  """A real (non-mock) data_source read from files prepared in tmp_path."""
  pytest.importorskip("tensorflow_datasets")
  from nc_jax.data.testing import write_tfds_array_record
  images = np.random.default_rng(6).integers(0, 256, (5, 4, 3, 3), np.uint8)
  name = write_tfds_array_record(tmp_path, images, np.arange(5) % 3, "abc")
  ds = data.load(f"tfds:{name}", "train", data_dir=tmp_path)
  assert ds.class_names == ("a", "b", "c") and len(ds) == 5
  # TFDS shuffles records: match each returned image to its written index.
  idx = [next(i for i in range(5) if np.array_equal(images[i], x))
         for x in ds.images]
  assert sorted(idx) == list(range(5))
  np.testing.assert_array_equal(ds.labels, np.array(idx) % 3)
  with pytest.raises(data.DatasetNotFoundError, match=name):
    data.load(f"tfds:{name}", "train", data_dir=tmp_path / "nope")


# ---------------------------------------------------------- label transforms


def synthetic(n_per_class=(30, 40, 50, 60), seed=0) -> data.Dataset:
  """images[i] = i, so every selection can be traced back."""
  y = np.repeat(np.arange(len(n_per_class)), n_per_class)
  y = np.random.default_rng(seed).permutation(y)
  x = np.arange(len(y), dtype=np.float32)[:, None]
  return data.Dataset(x, y, len(n_per_class),
                      [f"c{i}" for i in range(len(n_per_class))], name="syn")


def test_balanced_subset_exact_and_seeded():
  ds = synthetic()
  sub = data.balanced_subset(ds, 25, seed=3)
  np.testing.assert_array_equal(sub.class_counts(), [25] * 4)
  src = sub.images[:, 0].astype(int)
  np.testing.assert_array_equal(ds.labels[src], sub.labels)  # same samples
  assert len(set(src)) == 100 and np.all(np.diff(src) > 0)
  same = data.balanced_subset(ds, 25, seed=3)
  np.testing.assert_array_equal(same.images, sub.images)
  assert not np.array_equal(data.balanced_subset(ds, 25, seed=4).images,
                            sub.images)
  with pytest.raises(ValueError, match="fewer than 31"):
    data.balanced_subset(ds, 31, seed=0)


def test_coarse_mod_and_fixed_maps():
  ds = synthetic((20,) * 10)
  c = data.to_coarse(ds, num_coarse=3)
  np.testing.assert_array_equal(c.labels, ds.labels % 3)
  np.testing.assert_array_equal(c.fine_labels, ds.labels)
  assert c.num_classes == 3 and c.class_names[0] == "c0+c3+c6+c9"
  parity = data.superclass(ds, "mnist_parity")
  np.testing.assert_array_equal(parity.labels, ds.labels % 2)
  animals = data.superclass(ds.replace(class_names=data.CIFAR10_CLASSES),
                            "cifar10_animals")
  objects = {"airplane", "automobile", "ship", "truck"}
  for f, k in zip(ds.labels, animals.labels, strict=True):
    assert animals.class_names[k] == ("object" if data.CIFAR10_CLASSES[f]
                                      in objects else "animal")


def test_coarse_table_is_read_back_from_any_pairing():
  """`coarse_table` recovers the fine -> coarse map from the data set itself, for
  y mod C~ and for a 'table:' pairing (the trainer's label_map), and names the
  cases it cannot."""
  from nc_jax.train import input as input_lib
  ds = synthetic((20,) * 10)
  np.testing.assert_array_equal(data.coarse_table(data.to_coarse(ds, num_coarse=5)),
                                np.arange(10) % 5)
  pairing = [1, 0, 3, 3, 2, 4, 1, 2, 0, 4]
  c = input_lib.apply_label_map(ds, "table:" + ",".join(map(str, pairing)), seed=0)
  np.testing.assert_array_equal(c.labels, np.asarray(pairing)[ds.labels])
  np.testing.assert_array_equal(data.coarse_table(c), pairing)
  assert c.class_names[0] == "c1+c8"
  with pytest.raises(ValueError, match="no fine labels"):
    data.coarse_table(ds)
  with pytest.raises(ValueError, match=r"original classes \[9\] have no sample"):
    data.coarse_table(c.subset(np.flatnonzero(c.fine_labels != 9)))
  with pytest.raises(ValueError, match="more than one coarse label"):
    data.coarse_table(c.replace(labels=np.roll(c.labels, 1)))


def test_cifar100_superclass_table():
  table = data.CIFAR100_FINE_TO_COARSE
  assert table.shape == (100,) and table.dtype == np.int32
  np.testing.assert_array_equal(np.bincount(table), [5] * 20)
  assert len(set(data.CIFAR100_CLASSES)) == 100
  members = data.CIFAR100_SUPERCLASS_MEMBERS
  assert list(members) == list(data.CIFAR100_SUPERCLASSES)
  assert sorted(sum(members.values(), ())) == sorted(data.CIFAR100_CLASSES)
  for fine, name in enumerate(data.CIFAR100_CLASSES):
    assert name in members[data.CIFAR100_SUPERCLASSES[table[fine]]], name
  ds = synthetic((3,) * 100)
  ds = ds.replace(class_names=data.CIFAR100_CLASSES)
  sup = data.superclass(ds, "cifar100_superclass")
  assert sup.num_classes == 20 and sup.class_names[1] == "fish"
  np.testing.assert_array_equal(sup.labels, table[ds.labels])


def test_split_classes_halves():
  ds = synthetic((2000, 3000, 2500))
  f = data.split_classes(ds, seed=7)
  assert f.num_classes == 6 and f.class_names[4] == "c1/1"
  np.testing.assert_array_equal(f.labels % 3, ds.labels)
  np.testing.assert_array_equal(f.coarse_labels, ds.labels)
  counts = f.class_counts()
  frac = counts[3:] / (counts[:3] + counts[3:])
  assert np.all(np.abs(frac - 0.5) < 0.05), frac  # ~5 sigma at n=2000
  again = data.split_classes(ds, seed=7)
  np.testing.assert_array_equal(again.labels, f.labels)
  assert not np.array_equal(data.split_classes(ds, seed=8).labels, f.labels)
  bal = data.split_classes(ds, seed=7, balanced=True).class_counts()
  np.testing.assert_array_equal(bal, [1000, 1500, 1250] * 2)


def test_symmetric_label_noise():
  ds = synthetic((5000,) * 10)
  noisy = data.add_label_noise(ds, 0.3, seed=11)
  flipped = noisy.labels != ds.labels
  assert flipped.sum() == 15000  # exactly round(r N), never to itself
  np.testing.assert_array_equal(noisy.clean_labels, ds.labels)
  np.testing.assert_array_equal(noisy.images, ds.images)
  # New labels uniform over the 9 other classes.
  pair = np.zeros((10, 10))
  np.add.at(pair, (ds.labels[flipped], noisy.labels[flipped]), 1)
  assert np.all(np.diag(pair) == 0)
  off = pair[~np.eye(10, dtype=bool)]
  assert np.all(np.abs(off - 1500 / 9) < 5 * np.sqrt(1500 / 9)), off
  # Flipped samples spread over classes like the data (~30 % each).
  per_class = np.bincount(ds.labels[flipped], minlength=10) / 5000
  assert np.all(np.abs(per_class - 0.3) < 0.04), per_class
  again = data.add_label_noise(ds, 0.3, seed=11)
  np.testing.assert_array_equal(again.labels, noisy.labels)
  assert not np.array_equal(data.add_label_noise(ds, 0.3, 12).labels,
                            noisy.labels)
  twice = data.add_label_noise(noisy, 0.1, seed=1)
  np.testing.assert_array_equal(twice.clean_labels, ds.labels)
  np.testing.assert_array_equal(data.add_label_noise(ds, 0.0, 0).labels,
                                ds.labels)
  # Transforms after noise carry the clean labels along.
  c = data.to_coarse(noisy, num_coarse=2)
  np.testing.assert_array_equal(c.clean_labels, ds.labels % 2)


def test_corruptions_monotone_and_seeded():
  x = data.load("digits", "test").images  # natural-ish 8x8 images
  x = np.repeat(np.repeat(x, 3, axis=1), 3, axis=2)  # 24x24
  for kind in data.CORRUPTION_LEVELS:
    dev = []
    for sev in range(6):
      y = data.corrupt_images(x, kind, sev, seed=0)
      assert y.dtype == np.uint8 and y.shape == x.shape
      dev.append(np.abs(y.astype(float) - x).mean())
    assert dev[0] == 0
    assert all(a < b for a, b in zip(dev, dev[1:], strict=False)), (kind, dev)
  a = data.corrupt_images(x, "gaussian_noise", 3, seed=5)
  np.testing.assert_array_equal(a, data.corrupt_images(x, "gaussian_noise", 3,
                                                       seed=5))
  assert not np.array_equal(a, data.corrupt_images(x, "gaussian_noise", 3,
                                                   seed=6))
  # Float input (MNIST-1D layout): sigma in input units, unclipped.
  z = np.zeros((4000, 40), np.float32)
  sd = data.corrupt_images(z, "gaussian_noise", 5, seed=0).std()
  assert abs(sd - data.CORRUPTION_LEVELS["gaussian_noise"][4]) < 2e-3
  with pytest.raises(ValueError):
    data.corrupt_images(x, "gaussian_noise", 6, seed=0)


def test_domain_shifts_exact():
  x = data.load("digits", "test").images[:50]  # [50, 8, 8, 1] uint8
  inv = data.corrupt_images(x, "invert", 1, seed=0)
  np.testing.assert_array_equal(inv, 255 - x)  # 1 - x on [0, 1], exactly
  np.testing.assert_array_equal(data.corrupt_images(inv, "invert", 5, seed=3), x)
  np.testing.assert_array_equal(data.corrupt_images(x, "invert", 0, seed=0), x)
  # 90 degrees on a square grid lands on grid points: a pure rotation of the
  # array (counter-clockwise, as np.rot90), with channels and without.
  np.testing.assert_array_equal(data.corrupt_images(x, "rotate", 5, seed=0),
                                np.rot90(x, 1, axes=(1, 2)))
  np.testing.assert_array_equal(data.corrupt_images(x[..., 0], "rotate", 5, seed=0),
                                np.rot90(x[..., 0], 1, axes=(1, 2)))
  # A digit framed by black keeps its ink under a small rotation (bilinear).
  framed = data.load("digits", "test", image_size=(20, 20), padding=4).images[:50]
  r = data.corrupt_images(framed, "rotate", 1, seed=0).astype(float)
  assert abs(r.sum() / framed.sum() - 1) < 0.05 and not np.array_equal(r, framed)
  with pytest.raises(ValueError, match="uint8"):
    data.corrupt_images(x.astype(np.float32), "invert", 1, seed=0)


def test_cifar_background():
  _real_root("cifar10_jpeg")
  x = data.load("digits", "test", image_size=(20, 20), padding=4).images[:64, ..., 0]
  y = data.corrupt_images(x, "cifar_background", 3, seed=0)
  a = data.DOMAIN_SHIFT_LEVELS["cifar_background"][2]
  assert y.shape == x.shape and y.dtype == np.uint8
  assert (y >= x).all()  # max-composited: the digit's strokes stay
  back = y[x == 0].astype(float)
  assert back.max() <= a * 255 + 0.5 and back.std() > 5  # a textured background
  np.testing.assert_array_equal(y, data.corrupt_images(x, "cifar_background", 3, seed=0))
  assert not np.array_equal(y, data.corrupt_images(x, "cifar_background", 3, seed=1))


def test_digits_resized_and_framed():
  ds = data.load("digits", "test", image_size=(20, 20), padding=4)
  plain = data.load("digits", "test")
  assert ds.images.shape == (len(plain), 28, 28, 1) and ds.images.dtype == np.uint8
  np.testing.assert_array_equal(ds.labels, plain.labels)
  ring = np.ones((28, 28), bool)
  ring[4:24, 4:24] = False
  assert (ds.images[:, ring] == 0).all() and ds.images[:, 4:24, 4:24].max() > 200
  # Bilinear upsampling keeps the mean brightness of each image (to a few %).
  np.testing.assert_allclose(ds.images[:, 4:24, 4:24].mean((1, 2, 3)),
                             plain.images.mean((1, 2, 3)), rtol=0.1, atol=3)


# -------------------------------------------------------------------- pipeline


def test_normalize_and_stats():
  rng = np.random.default_rng(8)
  x = rng.integers(0, 256, (50, 4, 4, 3), dtype=np.uint8)
  mean, std = data.compute_stats(x)
  ref = x.reshape(-1, 3) / 255.0
  np.testing.assert_allclose(mean, ref.mean(0), rtol=1e-5)
  np.testing.assert_allclose(std, ref.std(0), rtol=1e-5)
  z = data.normalize(x, mean, std)
  assert z.dtype == np.float32
  np.testing.assert_allclose(z.reshape(-1, 3).mean(0), 0, atol=1e-5)
  np.testing.assert_allclose(z.reshape(-1, 3).std(0), 1, atol=1e-4)
  ds = data.Dataset(x[..., :1], np.zeros(50), 1, ["a"], name="mnist")
  np.testing.assert_allclose(data.to_float(ds),
                             (x[..., :1] / 255.0 - 0.1307) / 0.3081, rtol=1e-5)
  m1 = data.Dataset(rng.normal(size=(10, 40)).astype(np.float32),
                    np.zeros(10), 1, ["a"], name="mnist1d")
  np.testing.assert_array_equal(data.to_float(m1), m1.images)


def test_batch_iterator_epochs_and_seeds():
  ds = synthetic((11, 12))  # 23 samples
  epoch0 = list(data.epoch_batches(ds, 5, seed=1, epoch=0,
                                   drop_remainder=False, with_index=True))
  assert [len(b["label"]) for b in epoch0] == [5, 5, 5, 5, 3]
  seen = np.concatenate([b["image"][:, 0] for b in epoch0]).astype(int)
  assert sorted(seen) == list(range(23))  # every sample exactly once
  for b in epoch0:
    np.testing.assert_array_equal(b["label"], ds.labels[b["index"]])
    assert b["label"].dtype == np.int32
  stream = list(data.batch_iterator(ds, 5, seed=1, num_epochs=3))
  assert len(stream) == 12 and all(len(b["label"]) == 5 for b in stream)
  orders = [np.concatenate([b["image"][:, 0] for b in stream[i:i + 4]])
            for i in (0, 4, 8)]
  assert not np.array_equal(orders[0], orders[1])
  resumed = list(data.batch_iterator(ds, 5, seed=1, num_epochs=2,
                                     start_epoch=1))
  for a, b in zip(stream[4:], resumed, strict=True):
    np.testing.assert_array_equal(a["image"], b["image"])
  other = list(data.batch_iterator(ds, 5, seed=2, num_epochs=1))
  assert not np.array_equal(other[0]["image"], stream[0]["image"])
  plain = next(data.epoch_batches(ds, 4, shuffle=False,
                                  preprocess=lambda v: v * 2))
  np.testing.assert_array_equal(plain["image"][:, 0], [0, 2, 4, 6])
  with pytest.raises(ValueError):
    next(data.batch_iterator(ds, 100, seed=0))


def test_dataset_validation_and_subset():
  with pytest.raises(ValueError):
    data.Dataset(np.zeros((3, 2)), np.zeros(4), 1, ["a"])
  with pytest.raises(ValueError):
    data.Dataset(np.zeros((3, 2)), np.array([0, 1, 2]), 2, ["a", "b"])
  ds = data.add_label_noise(synthetic(), 0.5, seed=0)
  sub = ds.subset([3, 1])
  np.testing.assert_array_equal(sub.clean_labels, ds.clean_labels[[3, 1]])
  np.testing.assert_array_equal(sub.images, ds.images[[3, 1]])
