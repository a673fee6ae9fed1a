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


def _safe_div(x, n):
  n = jnp.asarray(n)
  return jnp.where(n > 0, x / jnp.where(n > 0, n, 1), 0)


# ----------------------------------------------------------------------------
# The class-sorted layout every per-class statistic is computed on.
# ----------------------------------------------------------------------------


class ClassTiles(NamedTuple):
  """Rows sorted by class, each class padded with zero rows to whole tiles.

  One sort of the labels gives contiguous classes; cut into tiles of T rows
  that each hold one class, every per-class sum is a reduction within tiles
  followed by a segment-sum over tiles (sorted, [tiles, p] -> [C, p]), and
  every per-class vector enters one row per tile: no per-sample scatter or
  gather after the one that builds the layout.

  Rows are stored as z_i = (h_i - pivot_k) * scale_k: shifted by a pivot, one
  sample of their class, so that an offset common to the class costs float32
  no precision (sums of z, and Z_k^T Z_k - n_k m_k m_k^T with m_k the mean of
  z, cancel at most by about 2x where raw sums cancel by |offset|^2 /
  variance); and scaled per class, so that a weighted scatter such as Sigma_W
  is one GEMM of the rows as stored.

  Attributes:
    rows: [tiles, T, p] z_i (zero rows pad each class to whole tiles and fill
      the unused tiles at the end).
    valid: [tiles, T] bool, True on real rows.
    inv_norms: [tiles, T] 1 / ||h_i|| of the unshifted rows (0 on padding
      rows and for h_i = 0).
    tile_class: [tiles] int32, the class of each tile (sorted, except for
      tiles of one row, which keep the samples' order).
    pivots: [C, p] pivot_k: the first sample of class k, or what ``pivot_fn``
      made of it (0 if absent).
    scale: [C] scale_k (> 0).
    counts: [C] int32 n_k.
  """

  rows: jax.Array
  valid: jax.Array
  inv_norms: jax.Array
  tile_class: jax.Array
  pivots: jax.Array
  scale: jax.Array
  counts: jax.Array

  @property
  def num_classes(self) -> int:
    return self.counts.shape[0]

  def class_sum(self, per_tile: jax.Array) -> jax.Array:
    """[tiles, ...] -> [C, ...]: sum over the tiles of each class."""
    return jax.ops.segment_sum(per_tile, self.tile_class, num_segments=self.num_classes,
                               indices_are_sorted=self.rows.shape[1] > 1)

  def per_tile(self, per_class: jax.Array) -> jax.Array:
    """[C, ...] -> [tiles, ...]: each tile's class's row."""
    return per_class[self.tile_class]


def tile_rows_for(n: int, num_classes: int, minimum: int = 4) -> int:
  """Rows per tile: a power of two near N / (16 C), so that padding the C
  classes to whole tiles adds at most ~1/16 rows; at least ``minimum``
  (narrower tiles make the per-tile products and broadcasts slow, but tiles
  of one row need no sort and no padding) and at most 64."""
  t = max(1, n // (16 * num_classes))
  return max(minimum, min(64, 1 << (t.bit_length() - 1)))


def _pivots(first, counts, pivot_fn):
  pivots = first if pivot_fn is None else pivot_fn(first)
  return jax.lax.stop_gradient(jnp.where((counts > 0)[:, None], pivots, 0))


def sort_by_class(features: jax.Array, labels: jax.Array, num_classes: int, *,
                  tile_rows: int, scale_fn=None, pivot_fn=None) -> ClassTiles:
  """The `ClassTiles` layout of (features, labels): one stable sort, one gather.

  With ``tile_rows=1`` there is nothing to sort: the rows stay in sample
  order (tile classes are the labels, unsorted, and no padding is added).

  Args:
    features: [N, p].
    labels: [N] int in [0, num_classes).
    num_classes: C.
    tile_rows: T, static.
    scale_fn: maps the [C] integer counts to the [C] per-class row scales;
      None for 1.
    pivot_fn: maps the [C, p] first samples of the classes to the pivots the
      rows are shifted by (e.g. running class means); None keeps the samples.
  """
  n, p = features.shape
  c, t = num_classes, tile_rows
  dtype = features.dtype
  counts = jax.ops.segment_sum(jnp.ones_like(labels), labels, num_segments=c)
  scale = jnp.ones((c,), dtype) if scale_fn is None else scale_fn(counts).astype(dtype)
  scale = jnp.where(scale > 0, scale, 1.0)
  nrm = jnp.sqrt(jnp.sum(features * features, axis=1))
  inv = jnp.where(nrm > 0, 1.0 / jnp.where(nrm > 0, nrm, 1.0), 0.0)
  if t == 1:
    # Tiles of one row need no sort: the samples in their own order, with
    # their labels as tile classes (class_sum then scatters unsorted).
    first = jax.ops.segment_min(jnp.arange(n, dtype=jnp.int32), labels, num_segments=c)
    pivots = _pivots(features[jnp.minimum(first, n - 1)], counts, pivot_fn)
    rows = (features - pivots[labels]) * scale[labels][:, None]
    return ClassTiles(rows=rows[:, None, :], valid=jnp.ones((n, 1), bool),
                      inv_norms=inv[:, None], tile_class=labels.astype(jnp.int32),
                      pivots=pivots, scale=scale, counts=counts.astype(jnp.int32))
  per_class_tiles = (counts + t - 1) // t
  num_tiles = -(-n // t) + c  # static bound on sum_k ceil(n_k / T)
  tile_end = jnp.cumsum(per_class_tiles)
  tile_start = tile_end - per_class_tiles
  class_start = jnp.cumsum(counts) - counts
  if c * n < 2**31:  # a stable sort by class as one sort of distinct integer keys
    order = jnp.sort(labels.astype(jnp.int32) * n + jnp.arange(n, dtype=jnp.int32)) % n
  else:
    order = jnp.argsort(labels, stable=True).astype(jnp.int32)
  sorted_labels = labels[order]
  dest = tile_start[sorted_labels] * t + (jnp.arange(n, dtype=jnp.int32)
                                          - class_start[sorted_labels])
  # Row r of the layout comes from sample src[r]; index n (out of range) marks padding.
  # (No unique_indices promise: labels outside [0, C) inside jit would break it.)
  src = jnp.full((num_tiles * t,), n, jnp.int32).at[dest].set(order)
  valid = src < n
  tile_class = jnp.minimum(jnp.searchsorted(tile_end, jnp.arange(num_tiles), side="right"),
                           c - 1).astype(jnp.int32)
  pivots = _pivots(features[order[jnp.minimum(class_start, n - 1)]], counts, pivot_fn)
  # Shift and scale in sample order, then one gather: the gather's output is
  # the one materialised copy every consumer (GEMM, products per tile,
  # reductions) reads.
  # Row n is the zero row padding points to: a plain gather, no select after it.
  shifted = jnp.concatenate([(features - pivots[labels]) * scale[labels][:, None],
                             jnp.zeros((1, p), dtype)])
  rows = shifted.at[src].get(mode="promise_in_bounds")
  # Norms of the unshifted rows, gathered with them.
  inv_norms = jnp.concatenate([inv, jnp.zeros((1,), dtype)]).at[src].get(
      mode="promise_in_bounds")
  return ClassTiles(rows=rows.reshape(num_tiles, t, p), valid=valid.reshape(num_tiles, t),
                    inv_norms=inv_norms.reshape(num_tiles, t), tile_class=tile_class,
                    pivots=pivots, scale=scale, counts=counts.astype(jnp.int32))


class _ClassSums(NamedTuple):
  counts: jax.Array  # [C] float
  means: jax.Array  # [C, p]
  shifted_means: jax.Array  # [C, p] m_k = mu_k - pivot_k
  sq_dev: jax.Array  # [C] sum ||h_i - mu_k||^2
  unit_means: jax.Array  # [C, p]
  unit_sq_dev: jax.Array  # [C] sum ||u_i - mean u||^2


# Largest [chunk, J, p] block of per-tile weighted sums built at once.
_SUM_BLOCK_ELEMS = 1 << 20


def _weighted_class_sums(tiles: ClassTiles, weights: jax.Array) -> jax.Array:
  """sum_{i in k} w_ij z_i for every class k and weight j: [tiles, J, T] -> [C, J, p].

  A batched product per tile, then a segment-sum over tiles, in chunks of
  tiles so that the per-tile sums ([chunk, J, p]) stay small next to the rows.
  """
  rows = tiles.rows
  num_tiles, t, p = rows.shape
  j = weights.shape[1]

  def block(r, w, tc):
    per_tile = w[..., 0, None] * r[:, None, 0] if t == 1 else jnp.einsum("tjn,tnp->tjp", w, r)
    return jax.ops.segment_sum(per_tile, tc, num_segments=tiles.num_classes,
                               indices_are_sorted=t > 1)

  chunk = max(1, min(num_tiles, _SUM_BLOCK_ELEMS // (j * p)))
  full = num_tiles // chunk
  take = lambda x, start, size: jax.lax.dynamic_slice_in_dim(x, start, size)
  total = block(rows[:chunk], weights[:chunk], tiles.tile_class[:chunk])
  if full > 1:
    total = jax.lax.fori_loop(1, full, lambda i, acc: acc + block(
        take(rows, i * chunk, chunk), take(weights, i * chunk, chunk),
        take(tiles.tile_class, i * chunk, chunk)), total)
  if num_tiles % chunk:
    lo = full * chunk
    total = total + block(rows[lo:], weights[lo:], tiles.tile_class[lo:])
  return total


def _class_sums(tiles: ClassTiles) -> _ClassSums:
  """Per-class counts, means, spreads and unit-vector statistics of `ClassTiles`.

  Few passes over the rows: batched products of per-row weights with each
  tile (sum_i w_i z_i for w = 1, inv, inv^2, (inv - a) inv, with
  inv_i = 1 / ||h_i|| and a_k the class mean of inv) and one reduction to
  q_i = ||z_i||^2. Every statistic is assembled from those per-class sums
  without cancellation of large terms: writing h_i = mu_k + c_i and
  u_i = inv_i h_i, the unit-vector spread is

    sum_i ||u_i - mean u||^2 = ||mu||^2 sum (inv_i - a)^2
        + 2 mu . sum (inv_i - a) inv_i c_i + sum ||inv_i c_i - b||^2,
    b = mean_i inv_i c_i,

  whose terms are each of the order of the result (the offset mu enters only
  multiplied by the deviations inv_i - a), and the spread of the features is
  sum ||z_i||^2 - n ||m||^2 with m = mean z (cancellation at most ~2x, as z is
  shifted by a sample of its class).
  """
  rows, inv = tiles.rows, tiles.inv_norms
  dtype = rows.dtype
  counts = tiles.counts.astype(dtype)
  present = counts > 0
  inv_n = _safe_div(jnp.ones((), dtype), counts)
  unscale = tiles.per_tile(1.0 / tiles.scale)[:, None]  # [tiles, 1]
  valid = tiles.valid.astype(dtype)
  a = tiles.class_sum(jnp.sum(inv, 1)) * inv_n  # class mean of 1 / ||h||
  dev = (inv - tiles.per_tile(a)[:, None]) * valid  # inv_i - a_k on real rows
  weights = jnp.stack([valid, inv, inv * inv, dev * inv], axis=1) * unscale[:, None]
  s0, s1, s2, sw = jnp.unstack(_weighted_class_sums(tiles, weights), axis=1)
  q = jnp.sum(rows * rows, axis=-1) * unscale * unscale  # [tiles, T] ||z_i||^2
  q0 = tiles.class_sum(jnp.sum(q, 1))
  q2 = tiles.class_sum(jnp.sum(q * inv * inv, 1))
  i1 = tiles.class_sum(jnp.sum(inv, 1))
  i2 = tiles.class_sum(jnp.sum(inv * inv, 1))
  iv = tiles.class_sum(jnp.sum(dev * dev, 1))
  wsum = tiles.class_sum(jnp.sum(dev * inv, 1))

  m = s0 * inv_n[:, None]  # mu - pivot
  means = jnp.where(present[:, None], m + tiles.pivots, 0)
  dot = lambda x, y: jnp.sum(x * y, -1)
  sq_dev = jnp.maximum(q0 - counts * dot(m, m), 0)
  unit_means = (s1 + i1[:, None] * tiles.pivots) * inv_n[:, None]
  b = (s1 - i1[:, None] * m) * inv_n[:, None]
  middle = sw - wsum[:, None] * m
  within = q2 - 2 * dot(m, s2) + dot(m, m) * i2  # sum inv_i^2 ||c_i||^2
  unit_sq_dev = dot(means, means) * iv + 2 * dot(means, middle) + within - counts * dot(b, b)
  unit_sq_dev = jnp.where(present, jnp.maximum(unit_sq_dev, 0), 0)
  return _ClassSums(counts, means, m, sq_dev, unit_means, unit_sq_dev)


def _weighted_scatter(tiles: ClassTiles, s: _ClassSums) -> jax.Array:
  """sum_k scale_k^2 S_k ([p, p]) with S_k the centred scatter of class k:
  one GEMM of the rows as stored, minus the rank-C correction of the shift."""
  flat = tiles.rows.reshape(-1, tiles.rows.shape[-1])
  corr = s.shifted_means * (tiles.scale * jnp.sqrt(s.counts))[:, None]
  return flat.T @ flat - corr.T @ corr


def _scatter_matvec(tiles: ClassTiles, s: _ClassSums, v: jax.Array) -> jax.Array:
  """S_k v_k for every class ([C, p] -> [C, p]): two fused passes over the rows."""
  proj = jnp.einsum("tnp,tp->tn", tiles.rows, tiles.per_tile(v))
  zz_v = tiles.class_sum(jnp.einsum("tn,tnp->tp", proj, tiles.rows))
  m = s.shifted_means
  return zz_v / (tiles.scale ** 2)[:, None] - (s.counts * jnp.sum(m * v, 1))[:, None] * m


def _tiled_moments(features, labels, num_classes) -> tuple[ClassMoments, ClassTiles, _ClassSums]:
  """`ClassMoments` and the layout they came from (for a second use of the rows)."""
  n = features.shape[0]

  def balanced(counts):  # rows scaled by sqrt(1/(K n_k)): Sigma_W is one GEMM
    k = jnp.sum(counts > 0)
    return jnp.sqrt(_safe_div(1.0, (k * counts).astype(features.dtype)))

  tiles = sort_by_class(features, labels, num_classes,
                        tile_rows=tile_rows_for(n, num_classes), scale_fn=balanced)
  s = _class_sums(tiles)
  present = s.counts > 0
  moments = ClassMoments(s.counts, present, s.means, _weighted_scatter(tiles, s),
                         _safe_div(s.sq_dev, s.counts), s.unit_means,
                         _safe_div(s.unit_sq_dev, s.counts))
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
  return _tiled_moments(features, labels, num_classes)[0]


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


# Largest [chunk, p, p] block of tile products built at once.
_OUTER_BLOCK_ELEMS = 1 << 22


def _per_class_scatter(tiles: ClassTiles, init: jax.Array | None = None) -> jax.Array:
  """init_k + Z_k^T Z_k for all k from `ClassTiles` rows z_i. [C, p, p].

  One [T, p]^T [T, p] product per tile (N p^2 flops plus the padding),
  segment-summed over tiles into the classes, in chunks of tiles so that no
  more than ``_OUTER_BLOCK_ELEMS`` of products exist at once.
  """
  rows, tile_class = tiles.rows, tiles.tile_class
  num_tiles, _, p = rows.shape
  c = tiles.num_classes
  chunk = max(1, min(num_tiles, _OUTER_BLOCK_ELEMS // (p * p)))
  pad = (-num_tiles) % chunk
  # Zero tiles add nothing to any class.
  rows = jnp.pad(rows, ((0, pad), (0, 0), (0, 0)))
  tile_class = jnp.pad(tile_class, (0, pad), constant_values=c - 1)
  rs = rows.reshape(-1, chunk, *rows.shape[1:])
  ts = tile_class.reshape(-1, chunk)

  is_sorted = rows.shape[1] > 1  # tiles of one row keep the samples' order

  def add(acc, xs):
    r, tc = xs
    return acc.at[tc].add(jnp.einsum("tni,tnj->tij", r, r), indices_are_sorted=is_sorted), None

  # The carry is seeded with the first chunk's sum so that it has the type of
  # the body's output (also inside shard_map, where values are device-varying).
  init = jnp.zeros((c, p, p), rows.dtype) if init is None else init
  init = add(init, (rs[0], ts[0]))[0]
  if rs.shape[0] == 1:
    return init
  return jax.lax.scan(add, init, (rs[1:], ts[1:]))[0]


def _scatter_tile_rows(batch: int, num_classes: int) -> int:
  """Tile rows for per-class scatter: a power of two >= B / C, so that the
  padded tiles number about 2 C (memory C p^2) for about 2 B p^2 flops."""
  t = max(1, -(-batch // num_classes))
  return 1 << (t - 1).bit_length()


def _batch_stats(features, labels, like: FeatureStats) -> FeatureStats:
  """Statistics of one batch, centred on the batch's own class means."""
  c = like.num_classes
  features = features.astype(like.means.dtype)
  n = features.shape[0]
  if like.pooled:
    tiles = sort_by_class(features, labels, c, tile_rows=tile_rows_for(n, c, minimum=1),
                          scale_fn=lambda _: jnp.sqrt(like.class_weights))
    s = _class_sums(tiles)
    scatter = _weighted_scatter(tiles, s)
  else:
    tiles = sort_by_class(features, labels, c, tile_rows=_scatter_tile_rows(n, c))
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
  frac_b = _safe_div(nb, n)
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
  """``_merge(a, _batch_stats(features, labels, a))`` with one product of the rows.

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
    tiles = sort_by_class(features, labels, c, tile_rows=tile_rows_for(n, c, minimum=1),
                          scale_fn=lambda _: jnp.sqrt(a.class_weights), pivot_fn=pivot_fn)
  else:
    tiles = sort_by_class(features, labels, c, tile_rows=_scatter_tile_rows(n, c),
                          pivot_fn=pivot_fn)
  s = _class_sums(tiles)
  d = s.shifted_means
  coef = _safe_div(s.counts * s.counts, a.counts.astype(dtype) + s.counts)
  if a.pooled:
    flat = tiles.rows.reshape(-1, p)
    dc = d * jnp.sqrt(coef * a.class_weights)[:, None]
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
    sigma_w = jnp.einsum("k,kij->ij", _safe_div(1.0, counts), stats.scatter) / k
  return ClassMoments(
      counts=counts,
      present=present,
      means=stats.means,
      sigma_w=sigma_w,
      variances=_safe_div(stats.sq_dev, counts),
      unit_means=stats.unit_means,
      unit_variances=_safe_div(stats.unit_sq_dev, counts))
