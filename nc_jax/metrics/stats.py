"""Class statistics: in-memory moments and one-pass streaming accumulators.

Every metric of SPEC.md is a function of a few class statistics:

- n_k (counts), mu_k (class means), V_k (per-class variance),
- Sigma_W (class-balanced within-class covariance, SPEC.md),
- the class means of the normalised features h/||h|| (cosine metrics).

`class_moments` computes them from features in memory; `accumulate` / `merge`
build them batch by batch (`FeatureStats`) in one pass, with centred
(Chan et al.) updates so that float32 stays accurate when the features share a
large offset; `moments_from_stats` turns a `FeatureStats` into the same
`ClassMoments` that `class_moments` gives.

Within-class scatter, two layouts (chosen by `accumulate`'s ``class_counts``):

- per class (default): S_k, shape [C, p, p]. Exact whatever the batches; also
  gives the numerical rank in one pass. Memory C p^2.
- pooled: sum_k S_k / N_k, shape [p, p], where N_k are the final class counts,
  given up front (the labels of a data set are known before its features).
  Memory p^2, for large C x p (ResNet-50 on ImageNet). `moments_from_stats`
  checks that the accumulated counts equal the declared ones.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from nc_jax.metrics import checks


class ClassMoments(NamedTuple):
  """Class statistics every metric is computed from (SPEC.md notation).

  Attributes:
    counts: [C] n_k (float dtype); 0 for classes with no samples.
    present: [C] bool, n_k > 0. K = present.sum().
    means: [C, p] mu_k (0 for absent classes).
    sigma_w: [p, p] Sigma_W = (1/K) sum_k (1/n_k) sum_i (h_i - mu_k)(h_i - mu_k)^T.
    variances: [C] V_k = (1/n_k) sum_i ||h_i - mu_k||^2.
    unit_means: [C, p] (1/n_k) sum_i u_i, u_i = h_i / ||h_i|| (0 for h_i = 0).
    unit_variances: [C] (1/n_k) sum_i ||u_i - unit_means_k||^2. For unit
      vectors this equals 1 - ||unit_means_k||^2, the class's mean cosine
      distance, but computed centred it does not cancel catastrophically when
      the features are nearly parallel (large offset, late collapse).
  """

  counts: jax.Array
  present: jax.Array
  means: jax.Array
  sigma_w: jax.Array
  variances: jax.Array
  unit_means: jax.Array
  unit_variances: jax.Array


class FeatureStats(NamedTuple):
  """Sufficient statistics for one pass over (features, labels); a pytree.

  Attributes:
    counts: [C] int32 n_k so far.
    means: [C, p] running class means.
    scatter: [C, p, p] per-class scatter S_k = sum (h - mu_k)(h - mu_k)^T, or
      [p, p] pooled sum_k S_k * class_weights_k (see the module docstring).
    sq_dev: [C] sum_i ||h_i - mu_k||^2 (trace of S_k).
    unit_means: [C, p] running class means of u_i = h_i / ||h_i||.
    unit_sq_dev: [C] sum_i ||u_i - unit_means_k||^2.
    class_weights: [C] 1 / N_k of the declared final counts (pooled layout)
      or an empty [0] array (per-class layout).
  """

  counts: jax.Array
  means: jax.Array
  scatter: jax.Array
  sq_dev: jax.Array
  unit_means: jax.Array
  unit_sq_dev: jax.Array
  class_weights: jax.Array

  @property
  def pooled(self) -> bool:
    return self.scatter.ndim == 2

  @property
  def num_classes(self) -> int:
    return self.counts.shape[0]

  @property
  def dim(self) -> int:
    return self.means.shape[1]


def _unit(features: jax.Array) -> jax.Array:
  nrm = jnp.linalg.norm(features, axis=-1, keepdims=True)
  return jnp.where(nrm > 0, features / jnp.where(nrm > 0, nrm, 1.0), 0.0)


def _safe_div(x, n):
  n = jnp.asarray(n)
  return jnp.where(n > 0, x / jnp.where(n > 0, n, 1), 0)


# Up to this many classes, segment sums are one-hot matrix products: XLA:CPU
# scatter-adds are slow, and the [N, C] one-hot is no bigger than the features.
_ONE_HOT_MAX_CLASSES = 128


def segment_sum(x: jax.Array, labels: jax.Array, num_classes: int) -> jax.Array:
  """sum_{i: labels_i = k} x_i for every k; [N, ...] -> [C, ...]."""
  if num_classes <= _ONE_HOT_MAX_CLASSES:
    onehot = jax.nn.one_hot(labels, num_classes, dtype=x.dtype)
    return jnp.tensordot(onehot, x, axes=(0, 0), precision=jax.lax.Precision.HIGHEST)
  return jax.ops.segment_sum(x, labels, num_segments=num_classes)


class _ClassSums(NamedTuple):
  counts: jax.Array  # [C] float
  means: jax.Array  # [C, p]
  centred: jax.Array  # [N, p], h_i - mu_{y_i}
  sq_dev: jax.Array  # [C] sum ||h_i - mu_k||^2
  unit_means: jax.Array  # [C, p]
  unit_sq_dev: jax.Array  # [C] sum ||u_i - mean u||^2


def _class_sums(features, labels, num_classes) -> _ClassSums:
  """Per-class counts, means and centred sums of squares of a batch.

  The means are taken of features shifted by one sample (the pivot): a large
  common offset then costs no precision in float32, where plain sum/n loses
  about eps * |offset| * sqrt(n). The features and their unit vectors go
  through one segment-sum together.
  """
  dtype = features.dtype
  p = features.shape[1]
  pivot = jax.lax.stop_gradient(features[0])
  units = _unit(features)
  both = jnp.concatenate([features - pivot, units, jnp.ones_like(features[:, :1])], axis=1)
  sums = segment_sum(both, labels, num_classes)
  counts = sums[:, -1]
  inv = _safe_div(jnp.ones((), dtype), counts)[:, None]
  means = sums[:, :p] * inv + pivot
  unit_means = sums[:, p:2 * p] * inv
  centred = features - means[labels]
  du = units - unit_means[labels]
  sq = segment_sum(jnp.stack([jnp.sum(centred * centred, -1), jnp.sum(du * du, -1)], 1),
                   labels, num_classes)
  # Absent classes: means of exactly zero, not the pivot.
  means = jnp.where(counts[:, None] > 0, means, 0)
  return _ClassSums(counts, means, centred, sq[:, 0], unit_means, sq[:, 1])


@jax.jit(static_argnames=("num_classes",))
def class_moments(features: jax.Array, labels: jax.Array, *,
                  num_classes: int) -> ClassMoments:
  """Class statistics of features held in memory (SPEC.md, Notation).

  Two segment-sums (means, sums of squares) and one weighted GEMM (N x p by
  N x p) for Sigma_W; no N x N or C x p x p intermediate (an N x C one-hot
  only for C <= 128, where it replaces a slow scatter-add).

  Args:
    features: [N, p] floating features h_i.
    labels: [N] integer labels y_i in [0, num_classes).
    num_classes: C (static).

  Returns:
    `ClassMoments`.
  """
  s = _class_sums(features, labels, num_classes)
  counts = s.counts
  present = counts > 0
  k = jnp.sum(present).astype(features.dtype)
  # Class-balanced weights 1/(K n_k), one per sample: Sigma_W is one GEMM.
  w = _safe_div(1.0, k * counts)[labels]
  sigma_w = (s.centred * w[:, None]).T @ s.centred
  means = s.means
  variances = _safe_div(s.sq_dev, counts)
  unit_means = s.unit_means
  unit_variances = _safe_div(s.unit_sq_dev, counts)
  return ClassMoments(counts, present, means, sigma_w, variances, unit_means,
                      unit_variances)


# ----------------------------------------------------------------------------
# Streaming.
# ----------------------------------------------------------------------------


def empty_stats(num_classes: int, dim: int, *, dtype=jnp.float32,
                class_counts=None) -> FeatureStats:
  """Zero statistics (the identity of `merge`).

  Args:
    num_classes: C.
    dim: p.
    dtype: floating dtype of the statistics.
    class_counts: optional [C] final class counts N_k; selects the pooled
      [p, p] scatter layout (see the module docstring).
  """
  if class_counts is None:
    scatter = jnp.zeros((num_classes, dim, dim), dtype)
    weights = jnp.zeros((0,), dtype)
  else:
    class_counts = jnp.asarray(class_counts)
    if class_counts.shape != (num_classes,):
      raise ValueError(
          f"class_counts must have shape ({num_classes},), got {class_counts.shape}")
    scatter = jnp.zeros((dim, dim), dtype)
    weights = _safe_div(jnp.ones((), dtype), class_counts.astype(dtype))
  return FeatureStats(
      counts=jnp.zeros((num_classes,), jnp.int32),
      means=jnp.zeros((num_classes, dim), dtype),
      scatter=scatter,
      sq_dev=jnp.zeros((num_classes,), dtype),
      unit_means=jnp.zeros((num_classes, dim), dtype),
      unit_sq_dev=jnp.zeros((num_classes,), dtype),
      class_weights=weights)


# Largest [chunk, p, p] block of outer products built at once.
_OUTER_BLOCK_ELEMS = 1 << 24


def _per_class_scatter(centred, labels, num_classes):
  """S_k = sum_{i in k} c_i c_i^T for all k, with bounded memory.

  For C <= 128 a one-hot-weighted matrix product ([chunk, C p]^T [chunk, p]):
  C times the flops of one p x p GEMM, but GEMM-speed. Beyond that, outer
  products of chunks of samples segment-summed into [C, p, p] (N p^2 flops,
  scatter-speed). Either way in chunks of rows, so no [N, C, p] or [N, p, p].
  """
  n, p = centred.shape
  dense = num_classes <= _ONE_HOT_MAX_CLASSES
  row_elems = num_classes * p if dense else p * p
  chunk = max(1, min(n, _OUTER_BLOCK_ELEMS // row_elems))
  pad = (-n) % chunk
  # Zero rows add nothing to any class.
  centred = jnp.pad(centred, ((0, pad), (0, 0)))
  labels = jnp.pad(labels, (0, pad))
  cs = centred.reshape(-1, chunk, p)
  ls = labels.reshape(-1, chunk)

  def outer_sum(c, l):
    if dense:
      onehot = jax.nn.one_hot(l, num_classes, dtype=c.dtype)
      a = (onehot[:, :, None] * c[:, None, :]).reshape(c.shape[0], -1)
      return (a.T @ c).reshape(num_classes, p, p)
    return jax.ops.segment_sum(c[:, :, None] * c[:, None, :], l, num_segments=num_classes)

  # The first chunk seeds the carry (so it has the same type as the body's
  # output, also inside shard_map where values are device-varying).
  init = outer_sum(cs[0], ls[0])
  if cs.shape[0] == 1:
    return init
  body = lambda acc, xs: (acc + outer_sum(*xs), None)
  return jax.lax.scan(body, init, (cs[1:], ls[1:]))[0]


def _batch_stats(features, labels, like: FeatureStats) -> FeatureStats:
  """Statistics of one batch, centred on the batch's own class means."""
  c = like.num_classes
  dtype = like.means.dtype
  features = features.astype(dtype)
  s = _class_sums(features, labels, c)
  centred = s.centred
  if like.pooled:
    w = like.class_weights[labels]
    scatter = (centred * w[:, None]).T @ centred
  else:
    scatter = _per_class_scatter(centred, labels, c)
  return FeatureStats(
      counts=jnp.rint(s.counts).astype(jnp.int32),
      means=s.means,
      scatter=scatter,
      sq_dev=s.sq_dev,
      unit_means=s.unit_means,
      unit_sq_dev=s.unit_sq_dev,
      class_weights=like.class_weights)


def _merge(a: FeatureStats, b: FeatureStats) -> FeatureStats:
  """Chan et al. pairwise merge of two sets of statistics (exact)."""
  dtype = a.means.dtype
  na = a.counts.astype(dtype)
  nb = b.counts.astype(dtype)
  n = na + nb
  frac_b = _safe_div(nb, n)
  delta = b.means - a.means  # [C, p]; small even when both means are large
  means = a.means + frac_b[:, None] * delta
  corr = na * frac_b  # n_a n_b / n
  if a.pooled:
    cw = corr * a.class_weights
    scatter = a.scatter + b.scatter + (delta * cw[:, None]).T @ delta
  else:
    scatter = a.scatter + b.scatter + jnp.einsum("k,ki,kj->kij", corr, delta, delta)
  delta_u = b.unit_means - a.unit_means
  return FeatureStats(
      counts=a.counts + b.counts,
      means=means,
      scatter=scatter,
      sq_dev=a.sq_dev + b.sq_dev + corr * jnp.sum(delta * delta, axis=-1),
      unit_means=a.unit_means + frac_b[:, None] * delta_u,
      unit_sq_dev=a.unit_sq_dev + b.unit_sq_dev + corr * jnp.sum(delta_u * delta_u, -1),
      class_weights=a.class_weights)


_accumulate_jit = jax.jit(lambda stats, f, y: _merge(stats, _batch_stats(f, y, stats)))
_merge_jit = jax.jit(_merge)


def accumulate(features: jax.Array, labels: jax.Array, *, num_classes: int,
               stats: FeatureStats | None = None,
               class_counts=None) -> FeatureStats:
  """Adds a batch to streaming statistics (one pass; SPEC.md Notation).

  ``accumulate(b2, ..., stats=accumulate(b1, ...))`` equals the statistics of
  the concatenated batches up to rounding, with centred merges that stay
  accurate in float32 for features with a large common offset. Batches of one
  sample and batches missing classes are fine.

  Args:
    features: [B, p] floating features.
    labels: [B] integer labels in [0, num_classes).
    num_classes: C.
    stats: statistics so far; None starts new ones.
    class_counts: only when starting (stats=None): the final [C] class counts,
      selecting the pooled p x p layout (memory p^2 instead of C p^2).

  Returns:
    Updated `FeatureStats`.

  Raises:
    ValueError: on bad shapes, non-integer labels, labels out of range,
      non-finite features (value checks only on concrete, non-traced arrays),
      or statistics of another C / p.
  """
  features, labels = checks.check_features_labels(
      features, labels, num_classes, min_classes=0)
  if stats is None:
    stats = empty_stats(num_classes, features.shape[1], dtype=features.dtype,
                        class_counts=class_counts)
  else:
    if class_counts is not None:
      raise ValueError("class_counts is only accepted when starting new stats (stats=None)")
    if stats.num_classes != num_classes or stats.dim != features.shape[1]:
      raise ValueError(
          f"stats are for C={stats.num_classes}, p={stats.dim}; got num_classes="
          f"{num_classes} and features of dim {features.shape[1]}")
  return _accumulate_jit(stats, features, labels)


def merge(a: FeatureStats, b: FeatureStats) -> FeatureStats:
  """Merges two `FeatureStats` of disjoint data (exact, order-independent)."""
  if a.scatter.shape != b.scatter.shape or a.means.shape != b.means.shape:
    raise ValueError(
        f"cannot merge stats of different shapes: scatter {a.scatter.shape} vs "
        f"{b.scatter.shape}, means {a.means.shape} vs {b.means.shape}")
  return _merge_jit(a, b)


def moments_from_stats(stats: FeatureStats) -> ClassMoments:
  """`ClassMoments` of accumulated statistics (equal to `class_moments`).

  Raises:
    ValueError: (pooled layout, concrete stats) if the accumulated counts
      differ from the class counts declared when the stats were started.
  """
  if stats.pooled and not checks.is_traced(stats.counts):
    import numpy as np
    declared = np.asarray(stats.class_weights)
    declared = np.where(declared > 0, np.rint(1.0 / np.where(declared > 0, declared, 1)), 0)
    got = np.asarray(stats.counts)
    if not np.array_equal(declared, got):
      bad = np.flatnonzero(declared != got)[:5].tolist()
      raise ValueError(
          "pooled stats: accumulated class counts differ from the class_counts "
          f"declared at the start (first classes differing: {bad}); the pooled "
          "Sigma_W is only exact when the declared counts are the final ones")
  return _moments_from_stats(stats)


@jax.jit
def _moments_from_stats(stats: FeatureStats) -> ClassMoments:
  dtype = stats.means.dtype
  counts = stats.counts.astype(dtype)
  present = counts > 0
  k = jnp.sum(present).astype(dtype)
  if stats.pooled:
    sigma_w = stats.scatter / k
  else:
    sigma_w = jnp.einsum("k,kij->ij", _safe_div(1.0, counts), stats.scatter) / k
  return ClassMoments(
      counts=counts,
      present=present,
      means=stats.means,
      sigma_w=sigma_w,
      variances=_safe_div(stats.sq_dev, counts),
      unit_means=stats.unit_means,
      unit_variances=_safe_div(stats.unit_sq_dev, counts))
