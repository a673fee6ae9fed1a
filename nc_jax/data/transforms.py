"""Label transforms and input corruptions, each reproducible from a seed.

All functions return a new `Dataset` (or array) and never modify their input.
Randomness comes only from ``np.random.default_rng(seed)``.

Conventions:

- Symmetric label noise at rate r flips exactly ``round(r * N)`` samples,
  chosen uniformly without replacement, each to a label drawn uniformly from
  the *other* C - 1 classes. The realised noise rate is r (up to 1/N) and a
  flipped label never equals its clean label. (The other convention in the
  literature draws from all C classes, giving an effective rate r (C-1)/C.)
  `Dataset.clean_labels` keeps the labels from before the first noise.
- Corruptions follow CIFAR-10-C (Hendrycks & Dietterich, 2019), severities
  1-5 (0 = unchanged), on the [0, 1] pixel scale of uint8 images:

  ==========  ==============================  ==============================
  severity    gaussian_noise: std sigma        gaussian_blur: sigma (pixels)
  ==========  ==============================  ==============================
  1 .. 5      0.04, 0.06, 0.08, 0.09, 0.10     0.4, 0.6, 0.7, 0.8, 1.0
  ==========  ==============================  ==============================

  uint8 images are clipped to [0, 1] and rounded back to uint8; float inputs
  (MNIST-1D) get the same sigma in their own units, unclipped. Blur acts on
  the spatial axes (all but the first and, for 4-D NHWC, the last), with
  ``mode='nearest'`` borders; it is deterministic.
- Domain shifts (`DOMAIN_SHIFT_LEVELS`; paper 003 sec 4.3 trains on source
  domains that share the labels but not the input distribution), on uint8
  images with a height and width, severities 1-5 as above:

  ================  ==========================================================
  invert            1 - x (every severity: the same inversion), deterministic
  rotate            rotation by 15, 30, 45, 60, 90 degrees about the centre
                    (bilinear, zero fill outside), deterministic
  cifar_background  max(x, a * patch): a grey patch of a CIFAR-10 (JPEG copy)
                    test image, a random crop of the image size, one per
                    sample (seeded), at weight a = 0.2, 0.35, 0.5, 0.65, 0.8;
                    needs that data set under the data root
  ================  ==========================================================
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nc_jax.data import constants
from nc_jax.data.core import Dataset

CORRUPTION_LEVELS: dict[str, tuple[float, ...]] = {
    "gaussian_noise": (0.04, 0.06, 0.08, 0.09, 0.10),
    "gaussian_blur": (0.4, 0.6, 0.7, 0.8, 1.0),
}

DOMAIN_SHIFT_LEVELS: dict[str, tuple[float, ...]] = {
    "invert": (1.0, 1.0, 1.0, 1.0, 1.0),
    "rotate": (15.0, 30.0, 45.0, 60.0, 90.0),
    "cifar_background": (0.2, 0.35, 0.5, 0.65, 0.8),
}

# name -> (fine -> coarse table, coarse class names, fine data set it is for).
SUPERCLASS_MAPS: dict[str, tuple[np.ndarray, tuple[str, ...], str]] = {
    # MNIST parity: 0 = even digit, 1 = odd digit.
    "mnist_parity": (np.arange(10, dtype=np.int32) % 2, ("even", "odd"),
                     "mnist"),
    # CIFAR-10: 0 = object (airplane, automobile, ship, truck), 1 = animal.
    "cifar10_animals": (np.array([0, 0, 1, 1, 1, 1, 1, 1, 0, 0], np.int32),
                        ("object", "animal"), "cifar10"),
    # CIFAR-10 without deer and dog (paper 002 sec 4.2, after
    # `select_classes(ds, CIFAR10_EIGHT)`): 0 = object, 1 = animal, 4 + 4.
    "cifar10_animals8": (np.array([0, 0, 1, 1, 1, 1, 0, 0], np.int32),
                         ("object", "animal"), "cifar10"),
    # CIFAR-100: the official 20 super-classes.
    "cifar100_superclass": (constants.CIFAR100_FINE_TO_COARSE,
                            constants.CIFAR100_SUPERCLASSES, "cifar100"),
}


def _map(labels: np.ndarray | None, table: np.ndarray) -> np.ndarray | None:
  return None if labels is None else table[labels].astype(np.int32)


# ------------------------------------------------------------------- subsets


def balanced_subset(ds: Dataset, n_per_class: int, seed: int) -> Dataset:
  """Exactly `n_per_class` samples of every class of `ds.labels`.

  Apply before label noise if the balance should hold for clean labels.

  Args:
    ds: Source data set.
    n_per_class: Samples to keep per class.
    seed: Chooses which samples (uniformly without replacement per class).

  Returns:
    The subset, samples kept in their original order.

  Raises:
    ValueError: If a class has fewer than `n_per_class` samples.
  """
  counts = ds.class_counts()
  if counts.min() < n_per_class:
    short = np.flatnonzero(counts < n_per_class).tolist()
    raise ValueError(f"classes {short} have fewer than {n_per_class} samples "
                     f"(counts {counts[short].tolist()})")
  rng = np.random.default_rng(seed)
  keep = [rng.choice(np.flatnonzero(ds.labels == c), n_per_class,
                     replace=False) for c in range(ds.num_classes)]
  return ds.subset(np.sort(np.concatenate(keep)))


# ------------------------------------------------------------ coarse / fine


def mod_coarse_map(num_classes: int, num_coarse: int) -> np.ndarray:
  """Table y -> y mod `num_coarse` for ``y < num_classes``."""
  if not 1 <= num_coarse <= num_classes:
    raise ValueError(f"num_coarse={num_coarse} not in [1, {num_classes}]")
  return np.arange(num_classes, dtype=np.int32) % num_coarse


def coarse_table(ds: Dataset) -> np.ndarray:
  """The fine -> coarse table a coarse-labelled data set was made with.

  Read from the data set itself (`fine_labels` next to `labels`), so it is
  right for ``y mod C~`` and for any other table (`to_coarse`). Raises if the
  data set has no fine labels, if an original class has no sample, or if one
  original class carries two coarse labels.
  """
  if ds.fine_labels is None:
    raise ValueError(f"{ds.name}: no fine labels (not relabelled by to_coarse)")
  fine, coarse = np.asarray(ds.fine_labels), np.asarray(ds.labels)
  # The coarse names join the original ones with '+' (to_coarse), so a class
  # missing from the labels is still counted.
  named = sum(len(n.split("+")) for n in ds.class_names)
  num_fine = max(int(fine.max()) + 1, named)
  table = np.full(num_fine, -1, np.int64)
  table[fine] = coarse
  if (table < 0).any():
    raise ValueError(f"{ds.name}: original classes {np.flatnonzero(table < 0).tolist()} "
                     "have no sample, so their super-class is unknown")
  if not np.array_equal(table[fine], coarse):
    raise ValueError(f"{ds.name}: an original class carries more than one coarse label")
  return table.astype(np.int32)


def to_coarse(ds: Dataset, table: np.ndarray | Sequence[int] | None = None, *,
              num_coarse: int | None = None,
              class_names: Sequence[str] | None = None) -> Dataset:
  """Relabels with coarse classes: ``table[y]``, or ``y mod num_coarse``.

  The previous labels move to `fine_labels`; `clean_labels` (if any) are
  mapped with the same table.

  Args:
    ds: Source data set.
    table: int [num_classes] fine -> coarse map (every coarse id used).
    num_coarse: Instead of `table`: C~, giving y -> y mod C~.
    class_names: Coarse class names (default: fine names joined by ``+``).
  """
  if (table is None) == (num_coarse is None):
    raise ValueError("give exactly one of table or num_coarse")
  if table is None:
    table = mod_coarse_map(ds.num_classes, num_coarse)
  table = np.asarray(table, np.int32)
  if table.shape != (ds.num_classes,):
    raise ValueError(f"table has shape {table.shape}, need ({ds.num_classes},)")
  k = int(table.max()) + 1
  if set(table.tolist()) != set(range(k)):
    raise ValueError("table must use every coarse label 0..max")
  if class_names is None:
    class_names = ["+".join(ds.class_names[f] for f in np.flatnonzero(table == c))
                   for c in range(k)]
  return ds.replace(labels=_map(ds.labels, table), num_classes=k,
                    class_names=tuple(class_names), fine_labels=ds.labels,
                    clean_labels=_map(ds.clean_labels, table),
                    coarse_labels=None, coarse_class_names=None)


# The 8 CIFAR-10 classes of paper 002's transfer study (deer, dog dropped).
CIFAR10_EIGHT = (0, 1, 2, 3, 6, 7, 8, 9)


def select_classes(ds: Dataset, classes: Sequence[int]) -> Dataset:
  """Only the samples of ``classes``, relabelled 0..len(classes)-1 in that order.

  A smaller task, not a coarser one: `fine_labels` are not set;
  `clean_labels` are mapped the same way.
  """
  classes = [int(c) for c in classes]
  if len(set(classes)) != len(classes) or not all(0 <= c < ds.num_classes for c in classes):
    raise ValueError(f"classes {classes} must be distinct labels in [0, {ds.num_classes})")
  table = np.full(ds.num_classes, -1, np.int32)
  table[classes] = np.arange(len(classes))
  keep = np.flatnonzero(table[ds.labels] >= 0)
  sub = ds.subset(keep)
  return sub.replace(labels=table[sub.labels], num_classes=len(classes),
                     class_names=tuple(ds.class_names[c] for c in classes),
                     clean_labels=_map(sub.clean_labels, table))


def superclass(ds: Dataset, map_name: str) -> Dataset:
  """Relabels with a fixed super-class map from `SUPERCLASS_MAPS`.

  Args:
    ds: A data set with the classes the map is for.
    map_name: ``'mnist_parity'``, ``'cifar10_animals'`` or
      ``'cifar100_superclass'``.
  """
  if map_name not in SUPERCLASS_MAPS:
    raise ValueError(f"unknown map {map_name!r}; known: {list(SUPERCLASS_MAPS)}")
  table, names, _ = SUPERCLASS_MAPS[map_name]
  return to_coarse(ds, table, class_names=names)


def split_classes(ds: Dataset, seed: int, num_splits: int = 2, *,
                  balanced: bool = False) -> Dataset:
  """Splits every class into `num_splits` random sub-classes.

  New label ``y + b * C`` with ``b`` uniform on {0, .., num_splits - 1}
  drawn independently per sample (for 2 splits, b ~ Bernoulli(1/2)). With
  ``balanced=True`` each class is instead split into parts whose sizes differ
  by at most one. The previous labels move to `coarse_labels`; `clean_labels`
  (if any) get the same ``b``.

  Args:
    ds: Source data set (C classes).
    seed: Draws ``b``.
    num_splits: Sub-classes per class.
    balanced: Equal-size parts instead of i.i.d. draws.

  Returns:
    A data set with ``num_splits * C`` classes named ``'<name>/<b>'``.
  """
  if num_splits < 1:
    raise ValueError("num_splits must be >= 1")
  rng = np.random.default_rng(seed)
  c = ds.num_classes
  if balanced:
    b = np.empty(len(ds), np.int32)
    for k in range(c):
      idx = np.flatnonzero(ds.labels == k)
      b[rng.permutation(idx)] = np.arange(len(idx)) % num_splits
  else:
    b = rng.integers(0, num_splits, size=len(ds)).astype(np.int32)
  names = tuple(f"{ds.class_names[k]}/{j}" for j in range(num_splits)
                for k in range(c))
  clean = None if ds.clean_labels is None else ds.clean_labels + b * c
  return ds.replace(labels=ds.labels + b * c, num_classes=num_splits * c,
                    class_names=names, coarse_labels=ds.labels,
                    coarse_class_names=ds.class_names, clean_labels=clean)


# -------------------------------------------------------------- label noise


def symmetric_noise(labels: np.ndarray, num_classes: int, rate: float,
                    seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Flips ``round(rate * N)`` labels to a uniformly drawn *other* class.

  Args:
    labels: int [N] clean labels.
    num_classes: C >= 2.
    rate: Fraction r in [0, 1] of samples to flip.
    seed: Chooses the samples and their new labels.

  Returns:
    (noisy int32 [N], flipped bool [N]); ``noisy != labels`` exactly where
    flipped.
  """
  if not 0.0 <= rate <= 1.0:
    raise ValueError(f"rate {rate} not in [0, 1]")
  labels = np.asarray(labels, np.int32)
  n = len(labels)
  m = int(round(rate * n))
  if m and num_classes < 2:
    raise ValueError("label noise needs at least 2 classes")
  rng = np.random.default_rng(seed)
  idx = rng.choice(n, m, replace=False)
  shift = rng.integers(1, num_classes, size=m) if m else np.zeros(0, np.int64)
  noisy = labels.copy()
  noisy[idx] = (labels[idx] + shift) % num_classes
  flipped = np.zeros(n, bool)
  flipped[idx] = True
  return noisy, flipped


def add_label_noise(ds: Dataset, rate: float, seed: int) -> Dataset:
  """Symmetric label noise (see `symmetric_noise`); keeps `clean_labels`.

  Noise is applied to the current labels; `clean_labels` keeps the labels
  from before the first call.
  """
  noisy, _ = symmetric_noise(ds.labels, ds.num_classes, rate, seed)
  clean = ds.labels if ds.clean_labels is None else ds.clean_labels
  return ds.replace(labels=noisy, clean_labels=clean)


# --------------------------------------------------------------- corruption


def _blur_sigma(ndim: int, s: float) -> tuple[float, ...]:
  if ndim == 4:
    return (0.0, s, s, 0.0)
  return (0.0,) + (s,) * (ndim - 1)


def corrupt_images(images: np.ndarray, kind: str, severity: int, seed: int,
                   chunk: int = 4096) -> np.ndarray:
  """Applies a corruption at a severity level (see the module docstring).

  Args:
    images: uint8 (0-255) or float array, first axis = samples.
    kind: ``'gaussian_noise'``, ``'gaussian_blur'`` or a domain shift
      (`DOMAIN_SHIFT_LEVELS`: ``'invert'``, ``'rotate'``,
      ``'cifar_background'``; uint8 images only).
    severity: 0 (unchanged) to 5.
    seed: Noise seed (the blur ignores it).
    chunk: Samples processed at a time (bounds memory; part of the stream).

  Returns:
    The corrupted array, same shape and dtype.
  """
  if kind not in CORRUPTION_LEVELS and kind not in DOMAIN_SHIFT_LEVELS:
    raise ValueError(f"unknown corruption {kind!r}; known: "
                     f"{list(CORRUPTION_LEVELS) + list(DOMAIN_SHIFT_LEVELS)}")
  if not 0 <= severity <= 5:
    raise ValueError(f"severity {severity} not in 0..5")
  images = np.asarray(images)
  if severity == 0:
    return images.copy()
  if kind in DOMAIN_SHIFT_LEVELS:
    return _domain_shift(images, kind, DOMAIN_SHIFT_LEVELS[kind][severity - 1], seed)
  s = CORRUPTION_LEVELS[kind][severity - 1]
  is_int = images.dtype == np.uint8
  rng = np.random.default_rng(seed)
  out = np.empty_like(images)
  for start in range(0, len(images), chunk):
    x = images[start:start + chunk].astype(np.float32)
    if is_int:
      x /= 255.0
    if kind == "gaussian_noise":
      x += rng.normal(0.0, s, size=x.shape).astype(np.float32)
    else:
      from scipy import ndimage  # pylint: disable=g-import-not-at-top
      x = ndimage.gaussian_filter(x, sigma=_blur_sigma(x.ndim, s),
                                  mode="nearest")
    if is_int:
      x = np.rint(np.clip(x, 0.0, 1.0) * 255.0)
    out[start:start + chunk] = x.astype(images.dtype)
  return out


def _spatial(images: np.ndarray) -> np.ndarray:
  """uint8 ``[N, H, W]`` or ``[N, H, W, C]`` as float32 ``[N, H, W, C]`` on [0, 1]."""
  if images.dtype != np.uint8 or images.ndim not in (3, 4):
    raise ValueError("domain shifts need uint8 images [N, H, W(, C)], got "
                     f"{images.dtype} {images.shape}")
  x = images.astype(np.float32) / 255.0
  return x if images.ndim == 4 else x[..., None]


def _backgrounds(n: int, h: int, w: int, channels: int, seed: int) -> np.ndarray:
  """``n`` random ``h x w`` crops of CIFAR-10 (JPEG copy) test images, on [0, 1]:
  grey (ITU-R 601 luma) unless ``channels == 3``."""
  from nc_jax.data import sources  # pylint: disable=g-import-not-at-top
  cifar = sources.load("cifar10_jpeg", "test").images  # [10000, 32, 32, 3] uint8
  if h > cifar.shape[1] or w > cifar.shape[2]:
    raise ValueError(f"cifar_background crops 32 x 32 images; got {h} x {w} inputs")
  rng = np.random.default_rng(seed)
  idx = rng.integers(len(cifar), size=n)
  top = rng.integers(cifar.shape[1] - h + 1, size=n)
  left = rng.integers(cifar.shape[2] - w + 1, size=n)
  rows = top[:, None] + np.arange(h)
  cols = left[:, None] + np.arange(w)
  patch = cifar[idx[:, None, None], rows[:, :, None], cols[:, None, :]]
  patch = patch.astype(np.float32) / 255.0
  if channels != 3:
    patch = (patch @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
  return patch


def _domain_shift(images: np.ndarray, kind: str, level: float, seed: int) -> np.ndarray:
  """One of `DOMAIN_SHIFT_LEVELS` at ``level`` (the module docstring)."""
  x = _spatial(images)
  if kind == "invert":
    x = 1.0 - x
  elif kind == "rotate":
    from scipy import ndimage  # pylint: disable=g-import-not-at-top
    x = ndimage.rotate(x, level, axes=(1, 2), reshape=False, order=1, mode="constant",
                       cval=0.0)
  else:
    x = np.maximum(x, level * _backgrounds(len(x), x.shape[1], x.shape[2], x.shape[3],
                                           seed))
  x = np.rint(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)
  return x if images.ndim == 4 else x[..., 0]


def corrupt(ds: Dataset, kind: str, severity: int, seed: int) -> Dataset:
  """`corrupt_images` applied to ``ds.images`` (labels unchanged)."""
  from nc_jax.data import lazy  # pylint: disable=g-import-not-at-top
  if lazy.is_lazy(ds.images):
    raise ValueError(f"corrupt() needs images in memory; {ds.name} is loaded lazily "
                     "(data.loader.name='grain'): use data.loader.name='in_memory'")
  return ds.replace(images=corrupt_images(ds.images, kind, severity, seed))
