"""Collapse beyond the train set (paper 002) and memorization across layers (003).

- ``train_variance``: SPEC.md `squared_distance` on the train features.
- ``strong_test_variance``: the same on test features with their own class
  means (does the test set collapse to its class means?).
- ``weak_test_variance``: the test features need only collapse to SOME K
  points, found by k-means: mean_i min_j ||h_i - c_j||^2 / mean_j ||c_j - c_bar||^2.
- ``memorization_ratio``: cdnv on clean labels / cdnv on the noisy training
  labels, per layer; memorization layers are those where it exceeds 1.

k-means (`kmeans`) is plain JAX: k-means++ or random initialisation, jitted
Lloyd iterations in a ``lax.while_loop``, restarts run side by side under
``vmap`` and the lowest inertia kept. Only the N x K distance matrix is ever
built.

References:
  Hui, Belkin, Nakkiran 2022 (paper 002) sec 3.1, TrainVariance,
  StrongTestVariance, WeakTestVariance; SPEC.md lines 49-52.
  Paper 003 Definitions 1-2 (memorization ratio and layers); SPEC.md line 61.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nc_jax.metrics import checks
from nc_jax.metrics import core
from nc_jax.metrics.stats import class_moments

KMEANS_INITS = ("k-means++", "random")
_PAD = 256


class KMeansResult(NamedTuple):
  """The best of several k-means runs.

  Attributes:
    centroids: [K, p] cluster centres c_j.
    assignments: [N] int32 index of the nearest centre of each sample.
    inertia: scalar mean_i min_j ||h_i - c_j||^2 (per sample, not summed).
    num_iters: scalar int32, Lloyd iterations of the kept run.
  """

  centroids: jax.Array
  assignments: jax.Array
  inertia: jax.Array
  num_iters: jax.Array


def _sq_dists(x: jax.Array, x_sq: jax.Array, c: jax.Array) -> jax.Array:
  """||x_i - c_j||^2 as ||x||^2 - 2 x.c + ||c||^2, clipped at 0. [N, K]."""
  d = x_sq[:, None] - 2.0 * x @ c.T + jnp.sum(c * c, axis=-1)[None, :]
  return jnp.maximum(d, 0.0)


def _init_plus_plus(key: jax.Array, x: jax.Array, x_sq: jax.Array, w: jax.Array,
                    k: int) -> jax.Array:
  """k-means++ seeding (Arthur & Vassilvitskii 2007): P(pick i) ~ w_i D(x_i)^2."""
  p = x.shape[1]
  key, sub = jax.random.split(key)
  first = x[jax.random.categorical(sub, jnp.log(w))]
  centroids = jnp.zeros((k, p), x.dtype).at[0].set(first)
  d2 = _sq_dists(x, x_sq, first[None])[:, 0]

  def body(j, carry):
    centroids, d2, key = carry
    key, sub = jax.random.split(key)
    # All points already on a centre (fewer distinct points than K): uniform.
    mass = w * d2
    logits = jnp.where(jnp.sum(mass) > 0, jnp.log(mass), jnp.log(w))
    c = x[jax.random.categorical(sub, logits)]
    d2 = jnp.minimum(d2, _sq_dists(x, x_sq, c[None])[:, 0])
    return centroids.at[j].set(c), d2, key

  centroids, _, _ = jax.lax.fori_loop(1, k, body, (centroids, d2, key))
  return centroids


def _lloyd(x, x_sq, w, centroids, *, max_iters: int, tol: float):
  """Weighted Lloyd iterations until the largest centre move is <= tol (relative)."""
  k = centroids.shape[0]
  n_eff = jnp.sum(w)
  scale = jnp.sum(w * x_sq) / n_eff + jnp.finfo(x.dtype).tiny

  def step(c):
    assign = jnp.argmin(_sq_dists(x, x_sq, c), axis=1)
    sums = jax.ops.segment_sum(x * w[:, None], assign, num_segments=k)
    counts = jax.ops.segment_sum(w, assign, num_segments=k)
    # An empty cluster keeps its centre (it may win points back later).
    return jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1)[:, None], c)

  def cond(carry):
    _, shift, i = carry
    return (i < max_iters) & (shift > tol * scale)

  def body(carry):
    c, _, i = carry
    new = step(c)
    return new, jnp.max(jnp.sum((new - c) ** 2, axis=-1)), i + 1

  inf = jnp.asarray(jnp.inf, x.dtype)
  c, _, iters = jax.lax.while_loop(cond, body, (centroids, inf, jnp.int32(0)))
  d = _sq_dists(x, x_sq, c)
  inertia = jnp.sum(w * jnp.min(d, axis=1)) / n_eff
  return c, jnp.argmin(d, axis=1).astype(jnp.int32), inertia, iters


@partial(jax.jit, static_argnames=("num_clusters", "init", "max_iters", "tol"))
def _kmeans(x, w, keys, *, num_clusters, init, max_iters, tol):
  # k-means is translation invariant; centring first keeps the expanded
  # distance ||x||^2 - 2 x.c + ||c||^2 accurate in float32 under a large offset.
  offset = (w @ x) / jnp.sum(w)
  x = x - offset
  x_sq = jnp.sum(x * x, axis=-1)

  def run(key):
    if init == "k-means++":
      c0 = _init_plus_plus(key, x, x_sq, w, num_clusters)
    else:
      c0 = x[jax.random.choice(key, x.shape[0], (num_clusters,), replace=False,
                               p=w / jnp.sum(w))]
    return _lloyd(x, x_sq, w, c0, max_iters=max_iters, tol=tol)

  c, assign, inertia, iters = jax.vmap(run)(keys)
  best = jnp.argmin(inertia)
  return KMeansResult(c[best] + offset, assign[best], inertia[best], iters[best])


def _as_key(key: jax.Array | int) -> jax.Array:
  if isinstance(key, (int, np.integer)):
    return jax.random.key(int(key))
  return key


def kmeans(features: jax.Array, *, num_clusters: int, key: jax.Array | int = 0,
           num_restarts: int = 10, init: str = "k-means++", max_iters: int = 300,
           tol: float = 1e-8) -> KMeansResult:
  """k-means (Lloyd) with several restarts; the run of lowest inertia is kept.

  Args:
    features: [N, p] points.
    num_clusters: K (static), 1 <= K <= N.
    key: a PRNG key or an int seed.
    num_restarts: independent initialisations, run together under ``vmap``.
    init: ``'k-means++'`` (D^2 seeding) or ``'random'`` (K distinct points).
    max_iters: cap on Lloyd iterations per restart.
    tol: stop when every centre moves by at most tol * mean ||x - x_bar||^2
      (squared distance), as scikit-learn does.

  Returns:
    `KMeansResult`; ``inertia`` is per sample (mean, not sum).

  References:
    Lloyd 1982; Arthur & Vassilvitskii 2007 (k-means++). Used by
    `weak_test_variance` (paper 002 sec 3.1; SPEC.md line 51).
  """
  x = checks.check_features(features)
  if init not in KMEANS_INITS:
    raise ValueError(f"init must be one of {KMEANS_INITS}; got {init!r}")
  if not 1 <= num_clusters <= x.shape[0]:
    raise ValueError(f"num_clusters must lie in [1, N={x.shape[0]}]; got {num_clusters}")
  if num_restarts < 1:
    raise ValueError(f"num_restarts must be >= 1; got {num_restarts}")
  keys = jax.random.split(_as_key(key), num_restarts)
  # Rows padded (weight 0) to a multiple of _PAD: sizes that differ a little
  # (the super-classes of CLP, test sets) share one compilation.
  n = x.shape[0]
  padded = -(-n // _PAD) * _PAD
  w = np.zeros((padded,), x.dtype)
  w[:n] = 1
  if checks.is_traced(x):
    xp = jnp.pad(x, ((0, padded - n), (0, 0)))
  else:  # host padding: no per-shape compilation of a pad op
    xp = np.zeros((padded, x.shape[1]), x.dtype)
    xp[:n] = np.asarray(x)
  res = _kmeans(xp, w, keys, num_clusters=num_clusters, init=init,
                max_iters=max_iters, tol=float(tol))
  return res._replace(assignments=res.assignments[:n])


# ----------------------------------------------------------------------------
# Train, strong and weak test collapse (002).
# ----------------------------------------------------------------------------


def train_variance(features: jax.Array, labels: jax.Array, *, num_classes: int) -> jax.Array:
  """Tr(Sigma_W) / Tr(Sigma_B) of the TRAIN features (SPEC.md line 52; 002 TrainVariance).

  Args:
    features: [N, p] train features.
    labels: [N] train labels in [0, num_classes).
    num_classes: C (static).

  Returns:
    Scalar; 0 under train collapse.

  References:
    Paper 002 sec 3.1; SPEC.md `squared_distance` (line 32) and line 52.
  """
  features, labels = checks.check_features_labels(features, labels, num_classes)
  return core.squared_distance(class_moments(features, labels, num_classes=num_classes))


def strong_test_variance(features: jax.Array, labels: jax.Array, *,
                         num_classes: int) -> jax.Array:
  """Tr(Sigma_W) / Tr(Sigma_B) of the TEST features, test class means (SPEC.md line 50).

  Args:
    features: [N, p] test features.
    labels: [N] test labels in [0, num_classes).
    num_classes: C (static).

  Returns:
    Scalar; 0 when every test point sits on its test class mean.

  References:
    Paper 002 sec 3.1 StrongTestVariance (class-balanced per SPEC.md line 50).
  """
  features, labels = checks.check_features_labels(features, labels, num_classes)
  return core.squared_distance(class_moments(features, labels, num_classes=num_classes))


def weak_test_variance_of(features: jax.Array, centroids: jax.Array) -> jax.Array:
  """mean_i min_j ||h_i - c_j||^2 / mean_j ||c_j - c_bar||^2 for given centres.

  Args:
    features: [N, p].
    centroids: [K, p] centres c_j (e.g. `kmeans(...).centroids`).

  Returns:
    Scalar (SPEC.md line 51 for k-means centres).
  """
  x = checks.check_features(features)
  c = checks.check_features(centroids, "centroids", dim=x.shape[1])
  offset = jnp.mean(c, axis=0)
  x, c = x - offset, c - offset
  within = jnp.mean(jnp.min(_sq_dists(x, jnp.sum(x * x, -1), c), axis=1))
  return within / jnp.mean(jnp.sum(c * c, axis=-1))


def weak_test_variance(features: jax.Array, *, num_clusters: int,
                       key: jax.Array | int = 0, num_restarts: int = 10,
                       init: str = "k-means++", max_iters: int = 300) -> jax.Array:
  """Weak test collapse: the test features against K k-means centres (SPEC.md line 51).

  mean_i min_j ||h_i - c_j||^2 / mean_j ||c_j - c_bar||^2 with c_1..c_K from
  k-means (K clusters) on the test features and c_bar their mean. Labels are
  not used. Where the classes are balanced and k-means recovers them it is at
  most `strong_test_variance` (k-means minimises the numerator).

  Args:
    features: [N, p] test features.
    num_clusters: K, the number of classes (static).
    key: PRNG key or int seed for the k-means initialisations.
    num_restarts: k-means restarts (the lowest inertia is kept).
    init: ``'k-means++'`` or ``'random'``.
    max_iters: Lloyd iterations per restart.

  Returns:
    Scalar; 0 when the test features take only K distinct values.

  References:
    Paper 002 sec 3.1 WeakTestVariance, Definition 2; SPEC.md line 51.
  """
  x = checks.check_features(features)
  res = kmeans(x, num_clusters=num_clusters, key=key, num_restarts=num_restarts,
               init=init, max_iters=max_iters)
  return weak_test_variance_of(x, res.centroids)


def collapse_beyond_train(train_features: jax.Array, train_labels: jax.Array,
                         test_features: jax.Array, test_labels: jax.Array, *,
                         num_classes: int, key: jax.Array | int = 0,
                         num_restarts: int = 10) -> dict[str, jax.Array]:
  """train_variance, strong_test_variance and weak_test_variance together (002 Fig 3).

  Args:
    train_features: [N, p]; train_labels: [N].
    test_features: [M, p]; test_labels: [M].
    num_classes: C; also the number of k-means clusters.
    key: PRNG key or seed for k-means.
    num_restarts: k-means restarts.

  Returns:
    ``{'train_variance', 'strong_test_variance', 'weak_test_variance'}``, scalars.

  References:
    Paper 002 sec 3.1; SPEC.md lines 49-52.
  """
  return {
      "train_variance": train_variance(train_features, train_labels,
                                       num_classes=num_classes),
      "strong_test_variance": strong_test_variance(test_features, test_labels,
                                                   num_classes=num_classes),
      "weak_test_variance": weak_test_variance(test_features, num_clusters=num_classes,
                                               key=key, num_restarts=num_restarts),
  }



# ----------------------------------------------------------------------------
# Memorization across layers (003).
# ----------------------------------------------------------------------------


def memorization_ratio(features: jax.Array, clean_labels: jax.Array,
                       noisy_labels: jax.Array, *, num_classes: int) -> jax.Array:
  """cdnv(features, clean labels) / cdnv(features, noisy labels) (SPEC.md line 61).

  Both CDNVs are computed on the same inputs (the noisy training set); only
  the labels differ. A layer that has memorised the noisy labels separates
  the noisy classes better than the clean ones: ratio > 1.

  Args:
    features: [N, p] features of one layer on the training inputs.
    clean_labels: [N] true labels.
    noisy_labels: [N] the labels the network was trained on.
    num_classes: C (static).

  Returns:
    Scalar Delta_CDNV,l; about 1 when the noise rate is near 0.

  References:
    Paper 003 Definition 1; SPEC.md line 61; `cdnv` (SPEC.md line 36).
  """
  features, clean = checks.check_features_labels(features, clean_labels, num_classes)
  _, noisy = checks.check_features_labels(features, noisy_labels, num_classes)
  clean_cdnv = core.cdnv(class_moments(features, clean, num_classes=num_classes))
  noisy_cdnv = core.cdnv(class_moments(features, noisy, num_classes=num_classes))
  return clean_cdnv / noisy_cdnv


def memorization_ratios(features: Mapping[str, jax.Array], clean_labels: jax.Array,
                        noisy_labels: jax.Array, *, num_classes: int) -> dict[str, jax.Array]:
  """`memorization_ratio` of every layer: ``{layer: ratio}`` (003 Fig 2, third row).

  Args:
    features: ``{layer name: [N, p_l]}``, all on the same N training inputs.
    clean_labels: [N] true labels.
    noisy_labels: [N] training labels.
    num_classes: C.

  Returns:
    ``{layer name: scalar ratio}`` in the order of ``features``.

  References:
    Paper 003 Definition 1; SPEC.md line 61.
  """
  return {name: memorization_ratio(h, clean_labels, noisy_labels, num_classes=num_classes)
          for name, h in features.items()}


def memorization_layers(ratios: Mapping[str, float | jax.Array], *,
                        order: Sequence[str] | None = None) -> tuple[str, ...]:
  """Layers whose memorization ratio exceeds 1 (paper 003 Definition 2; SPEC.md line 61).

  Args:
    ratios: ``{layer name: ratio}`` from `memorization_ratios`.
    order: layer names from input to output (e.g. ``models.feature_names``);
      default the order of ``ratios``.

  Returns:
    The memorization layers, in ``order``.
  """
  names = tuple(ratios) if order is None else tuple(order)
  missing = [n for n in names if n not in ratios]
  if missing:
    raise ValueError(f"no ratio for layers {missing}")
  return tuple(n for n in names if float(ratios[n]) > 1.0)
