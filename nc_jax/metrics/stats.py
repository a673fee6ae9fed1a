"""Class statistics: in-memory moments, one-pass streaming and sharded accumulators.

Every metric of SPEC.md is a function of a few class statistics:

- n_k (counts), mu_k (class means), V_k (per-class variance),
- Sigma_W (class-balanced within-class covariance, SPEC.md),
- the class means of the normalised features h/||h|| (cosine metrics).

`class_moments` computes them from features in memory; `accumulate` / `merge`
build them batch by batch (`FeatureStats`) in one pass, with centred
(Chan et al.) updates so that float32 stays accurate when the features share a
large offset (`nc_jax.metrics.sharded.accumulate_sharded` does the same for a
batch split over the devices of a mesh axis); `moments_from_stats` turns a
`FeatureStats` into the same
`ClassMoments` that `class_moments` gives. All of them compute on the
class-sorted tile layout of `_tiles` (`sort_by_class`).

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

from nc_jax.metrics import _tiles
from nc_jax.metrics import checks
from nc_jax.metrics import planning
# (Also re-exported: the README and tests refer to `stats.sort_by_class`.)
from nc_jax.metrics._tiles import sort_by_class


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


# Memory budgets of the tile kernels, in elements of one block of temporaries:
# the [chunk, J, p] per-tile weighted sums of `_tiles.class_sums` and the
# [chunk, p, p] tile products of `_tiles.per_class_scatter` (tests shrink them
# to run the chunked loops on small inputs).
_SUM_BLOCK_ELEMS = 1 << 20
_OUTER_BLOCK_ELEMS = 1 << 22


def _class_sums(tiles: _tiles.ClassTiles) -> _tiles.ClassSums:
  return _tiles.class_sums(tiles, block_elems=_SUM_BLOCK_ELEMS)


def _per_class_scatter(tiles: _tiles.ClassTiles, init: jax.Array | None = None) -> jax.Array:
  """init_k + Z_k^T Z_k for all k ([C, p, p]): `_tiles.per_class_scatter`."""
  return _tiles.per_class_scatter(tiles, init, block_elems=_OUTER_BLOCK_ELEMS)


# ----------------------------------------------------------------------------
# In memory.
# ----------------------------------------------------------------------------


def tiled_moments(
    features, labels, num_classes) -> tuple[ClassMoments, _tiles.ClassTiles, _tiles.ClassSums]:
  """`ClassMoments` and the layout they came from (for a second use of the rows,
  e.g. the power iteration of `report`); not exported by `nc_jax.metrics`."""
  n = features.shape[0]

  def balanced(counts):  # rows scaled by sqrt(1/(K n_k)): Sigma_W is one GEMM
    k = jnp.sum(counts > 0)
    return jnp.sqrt(_tiles.safe_div(1.0, (k * counts).astype(features.dtype)))

  tiles = sort_by_class(features, labels, num_classes,
                        tile_rows=_tiles.tile_rows_for(n, num_classes), scale_fn=balanced)
  s = _class_sums(tiles)
  present = s.counts > 0
  moments = ClassMoments(s.counts, present, s.means, _tiles.weighted_scatter(tiles, s),
                         _tiles.safe_div(s.sq_dev, s.counts), s.unit_means,
                         _tiles.safe_div(s.unit_sq_dev, s.counts))
  return moments, tiles, s


@jax.jit(static_argnames=("num_classes",))
def class_moments(features: jax.Array, labels: jax.Array, *,
                  num_classes: int) -> ClassMoments:
  """Class statistics of features held in memory (SPEC.md, Notation).

  One stable sort of the labels puts the classes in contiguous tiles
  (`sort_by_class`, rows shifted by a sample of their class and scaled by
  sqrt(1/(K n_k))); then a few fused passes over the rows (class sums,
  spreads, unit-vector sums) and one GEMM of the rows for Sigma_W. One
  temporary of about N p (the sorted rows); no N x N, N x C or C x p x p
  intermediate.

  Args:
    features: [N, p] floating features h_i.
    labels: [N] integer labels y_i in [0, num_classes).
    num_classes: C (static).

  Returns:
    `ClassMoments`.
  """
  return tiled_moments(features, labels, num_classes)[0]


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

  Raises:
    ValueError: the per-class scatter (C p^2) exceeds the device's memory
      (`planning.check_scatter`; the message names the pooled layout).
  """
  if class_counts is None:
    planning.check_scatter(num_classes, dim, dtype)  # C p^2 may not fit: say so first.
    scatter = jnp.zeros((num_classes, dim, dim), dtype)
    weights = jnp.zeros((0,), dtype)
  else:
    class_counts = jnp.asarray(class_counts)
    if class_counts.shape != (num_classes,):
      raise ValueError(
          f"class_counts must have shape ({num_classes},), got {class_counts.shape}")
    scatter = jnp.zeros((dim, dim), dtype)
    weights = _tiles.safe_div(jnp.ones((), dtype), class_counts.astype(dtype))
  return FeatureStats(
      counts=jnp.zeros((num_classes,), jnp.int32),
      means=jnp.zeros((num_classes, dim), dtype),
      scatter=scatter,
      sq_dev=jnp.zeros((num_classes,), dtype),
      unit_means=jnp.zeros((num_classes, dim), dtype),
      unit_sq_dev=jnp.zeros((num_classes,), dtype),
      class_weights=weights)


def batch_stats(features, labels, like: FeatureStats) -> FeatureStats:
  """Statistics of one batch, centred on the batch's own class means."""
  c = like.num_classes
  features = features.astype(like.means.dtype)
  n = features.shape[0]
  if like.pooled:
    tiles = sort_by_class(features, labels, c, tile_rows=_tiles.tile_rows_for(n, c, minimum=1),
                          scale_fn=lambda _: jnp.sqrt(like.class_weights))
    s = _class_sums(tiles)
    scatter = _tiles.weighted_scatter(tiles, s)
  else:
    tiles = sort_by_class(features, labels, c, tile_rows=_tiles.scatter_tile_rows(n, c))
    s = _class_sums(tiles)
    m = s.shifted_means
    scatter = _per_class_scatter(tiles) - jnp.einsum("k,ki,kj->kij", s.counts, m, m)
  return FeatureStats(
      counts=tiles.counts,
      means=s.means,
      scatter=scatter,
      sq_dev=s.sq_dev,
      unit_means=s.unit_means,
      unit_sq_dev=s.unit_sq_dev,
      class_weights=like.class_weights)


def _merge(a: FeatureStats, b: FeatureStats, *, delta=None, scatter=None) -> FeatureStats:
  """Chan et al. pairwise merge of two sets of statistics (exact).

  ``delta`` (b.means - a.means) and the merged ``scatter`` may be given by a
  caller that has them more precisely or more cheaply (`_accumulate`).
  """
  dtype = a.means.dtype
  na = a.counts.astype(dtype)
  nb = b.counts.astype(dtype)
  n = na + nb
  frac_b = _tiles.safe_div(nb, n)
  if delta is None:
    delta = b.means - a.means  # [C, p]; small even when both means are large
  means = a.means + frac_b[:, None] * delta
  corr = na * frac_b  # n_a n_b / n
  if scatter is None:
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


def _accumulate(a: FeatureStats, features, labels) -> FeatureStats:
  """``_merge(a, batch_stats(features, labels, a))`` with one product of the rows.

  The batch's rows are shifted by the running class means c_k = mu_k (a
  sample of the class where it has none yet), so that

    S_k' = S_k + sum_{i in k} (h_i - c_k)(h_i - c_k)^T - (n_b^2 / n) d_k d_k^T,

  d_k = mu_k^batch - c_k and n = n_a + n_b: Chan's update when n_a > 0, the
  batch's own scatter when n_a = 0. The rows' product goes straight into the
  scatter (pooled: one GEMM; per class: added in place, tile by tile) and the
  correction is one rank-C product; d_k is computed from the shifted rows, so
  it stays exact when the means share a large offset.
  """
  c = a.num_classes
  dtype = a.means.dtype
  features = features.astype(dtype)
  n, p = features.shape
  seen = a.counts > 0
  pivot_fn = lambda first: jnp.where(seen[:, None], a.means, first)
  if a.pooled:  # no padding: tiles of one row (sample order) unless the batch is large
    tiles = sort_by_class(features, labels, c, tile_rows=_tiles.tile_rows_for(n, c, minimum=1),
                          scale_fn=lambda _: jnp.sqrt(a.class_weights), pivot_fn=pivot_fn)
  else:
    tiles = sort_by_class(features, labels, c, tile_rows=_tiles.scatter_tile_rows(n, c),
                          pivot_fn=pivot_fn)
  s = _class_sums(tiles)
  d = s.shifted_means
  coef = _tiles.safe_div(s.counts * s.counts, a.counts.astype(dtype) + s.counts)
  if a.pooled:
    flat = tiles.rows.reshape(-1, p)
    w = coef * a.class_weights
    if c > n:
      # More classes than rows (language-model vocabularies): the rank-C
      # correction sum_k w_k d_k d_k^T as n rows, each row carrying its
      # class's share w_k / n_bk (classes absent from the batch have w_k = 0),
      # so that it costs one batch-sized product instead of a C-row one.
      share = _tiles.safe_div(w, s.counts)
      dc = d[labels] * jnp.sqrt(share[labels])[:, None]
    else:
      dc = d * jnp.sqrt(w)[:, None]
    scatter = a.scatter + flat.T @ flat - dc.T @ dc
  else:
    scatter = _per_class_scatter(tiles, init=a.scatter - jnp.einsum("k,ki,kj->kij", coef, d, d))
  b = FeatureStats(counts=tiles.counts, means=s.means, scatter=scatter, sq_dev=s.sq_dev,
                   unit_means=s.unit_means, unit_sq_dev=s.unit_sq_dev,
                   class_weights=a.class_weights)
  return _merge(a, b, delta=jnp.where(seen[:, None], d, s.means), scatter=scatter)


_accumulate_jit = jax.jit(_accumulate)
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
    sigma_w = jnp.einsum("k,kij->ij", _tiles.safe_div(1.0, counts), stats.scatter) / k
  return ClassMoments(
      counts=counts,
      present=present,
      means=stats.means,
      sigma_w=sigma_w,
      variances=_tiles.safe_div(stats.sq_dev, counts),
      unit_means=stats.unit_means,
      unit_variances=_tiles.safe_div(stats.unit_sq_dev, counts))
