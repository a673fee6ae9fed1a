"""The class-sorted tile layout and the per-class kernels on it (private).

Every per-class statistic of SPEC.md (counts, class means, spreads, the
class means of h/||h||, Sigma_W, per-class scatter S_k) is computed on one
layout, `ClassTiles`: one stable sort of the labels puts each class's rows
in contiguous tiles of T rows, shifted by a sample of their class (a pivot)
and scaled per class. Per-class sums are then products within tiles followed
by a segment-sum over tiles; no per-sample scatter or gather after the one
that builds the layout.

- `sort_by_class` builds the layout, `tile_rows_for` / `scatter_tile_rows`
  choose T.
- `class_sums` gives counts, means, spreads and unit-vector statistics
  (`ClassSums`); `weighted_scatter` sum_k scale_k^2 S_k as one GEMM;
  `per_class_scatter` the [C, p, p] Z_k^T Z_k; `scatter_matvec` S_k v_k.

The kernels that build blocks of temporaries take their size as
``block_elems``; the callers (`stats`) own those memory budgets.

Used by `stats` (in-memory moments and streaming) and `report` (power
iteration on the rows); not part of the public API.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


def safe_div(x, n):
  """x / n where n > 0, else 0."""
  n = jnp.asarray(n)
  return jnp.where(n > 0, x / jnp.where(n > 0, n, 1), 0)


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


class ClassSums(NamedTuple):
  """Per-class statistics of a `ClassTiles` layout (from `class_sums`)."""

  counts: jax.Array  # [C] float
  means: jax.Array  # [C, p]
  shifted_means: jax.Array  # [C, p] m_k = mu_k - pivot_k
  sq_dev: jax.Array  # [C] sum ||h_i - mu_k||^2
  unit_means: jax.Array  # [C, p]
  unit_sq_dev: jax.Array  # [C] sum ||u_i - mean u||^2


def weighted_class_sums(tiles: ClassTiles, weights: jax.Array, *,
                        block_elems: int) -> jax.Array:
  """sum_{i in k} w_ij z_i for every class k and weight j: [tiles, J, T] -> [C, J, p].

  A batched product per tile, then a segment-sum over tiles, in chunks of
  tiles so that the per-tile sums ([chunk, J, p], at most ``block_elems``
  elements) stay small next to the rows.
  """
  rows = tiles.rows
  num_tiles, t, p = rows.shape
  j = weights.shape[1]

  def block(r, w, tc):
    per_tile = w[..., 0, None] * r[:, None, 0] if t == 1 else jnp.einsum("tjn,tnp->tjp", w, r)
    return jax.ops.segment_sum(per_tile, tc, num_segments=tiles.num_classes,
                               indices_are_sorted=t > 1)

  chunk = max(1, min(num_tiles, block_elems // (j * p)))
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


def class_sums(tiles: ClassTiles, *, block_elems: int) -> ClassSums:
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
  inv_n = safe_div(jnp.ones((), dtype), counts)
  unscale = tiles.per_tile(1.0 / tiles.scale)[:, None]  # [tiles, 1]
  valid = tiles.valid.astype(dtype)
  a = tiles.class_sum(jnp.sum(inv, 1)) * inv_n  # class mean of 1 / ||h||
  dev = (inv - tiles.per_tile(a)[:, None]) * valid  # inv_i - a_k on real rows
  weights = jnp.stack([valid, inv, inv * inv, dev * inv], axis=1) * unscale[:, None]
  sums = weighted_class_sums(tiles, weights, block_elems=block_elems)
  s0, s1, s2, sw = jnp.unstack(sums, axis=1)
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
  return ClassSums(counts, means, m, sq_dev, unit_means, unit_sq_dev)


def weighted_scatter(tiles: ClassTiles, s: ClassSums) -> jax.Array:
  """sum_k scale_k^2 S_k ([p, p]) with S_k the centred scatter of class k:
  one GEMM of the rows as stored, minus the rank-C correction of the shift."""
  flat = tiles.rows.reshape(-1, tiles.rows.shape[-1])
  corr = s.shifted_means * (tiles.scale * jnp.sqrt(s.counts))[:, None]
  return flat.T @ flat - corr.T @ corr


def scatter_matvec(tiles: ClassTiles, s: ClassSums, v: jax.Array) -> jax.Array:
  """S_k v_k for every class ([C, p] -> [C, p]): two fused passes over the rows."""
  proj = jnp.einsum("tnp,tp->tn", tiles.rows, tiles.per_tile(v))
  zz_v = tiles.class_sum(jnp.einsum("tn,tnp->tp", proj, tiles.rows))
  m = s.shifted_means
  return zz_v / (tiles.scale ** 2)[:, None] - (s.counts * jnp.sum(m * v, 1))[:, None] * m


def per_class_scatter(tiles: ClassTiles, init: jax.Array | None = None, *,
                      block_elems: int) -> jax.Array:
  """init_k + Z_k^T Z_k for all k from `ClassTiles` rows z_i. [C, p, p].

  One [T, p]^T [T, p] product per tile (N p^2 flops plus the padding),
  segment-summed over tiles into the classes, in chunks of tiles so that no
  more than ``block_elems`` elements of products exist at once.
  """
  rows, tile_class = tiles.rows, tiles.tile_class
  num_tiles, _, p = rows.shape
  c = tiles.num_classes
  chunk = max(1, min(num_tiles, block_elems // (p * p)))
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


def scatter_tile_rows(batch: int, num_classes: int) -> int:
  """Tile rows for per-class scatter: a power of two >= B / C, so that the
  padded tiles number about 2 C (memory C p^2) for about 2 B p^2 flops."""
  t = max(1, -(-batch // num_classes))
  return 1 << (t - 1).bit_length()

