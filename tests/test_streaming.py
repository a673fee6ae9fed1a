"""Streaming statistics, merge and the sharded path equal the in-memory report."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nc_jax import metrics
from test_metrics import make_case, _classifier

ONE_PASS_KEYS = [k for k in metrics.BASE_KEYS]


def _splits(n, rng, with_singletons=True):
  cuts = np.sort(rng.choice(np.arange(1, n), size=6, replace=False))
  bounds = [0, *cuts, n]
  if with_singletons:  # batches of one sample
    bounds = [0, 1, 2, *[b for b in bounds if b > 2]]
  return list(zip(bounds[:-1], bounds[1:]))


def _stream(h, y, c, rng, **kw):
  stats = None
  for lo, hi in _splits(len(y), rng):
    stats = metrics.accumulate(h[lo:hi], y[lo:hi], num_classes=c, stats=stats,
                               **(kw if stats is None else {}))
  return stats


@pytest.mark.parametrize("case", ["random", "imbalanced", "absent_class", "p_lt_k"])
@pytest.mark.parametrize("pooled", [False, True])
def test_stream_equals_in_memory_float64(case, pooled):
  h, y, c = make_case(case)
  w, b = _classifier(c, h.shape[1])
  rng = np.random.default_rng(1)
  with jax.enable_x64(True):
    want = metrics.collapse_report(h, y, num_classes=c, classifier=(w, b), ood_features=h[:7])
    kw = dict(class_counts=np.bincount(y, minlength=c)) if pooled else {}
    stats = _stream(h, y, c, rng, **kw)
    got = metrics.report_from_stats(stats, classifier=(w, b), ood_features=h[:7])
    count = sum(int(metrics.ncc_mismatch(h[lo:hi], stats=stats, classifier=(w, b)))
                for lo, hi in _splits(len(y), rng))
  expected = set(want) - {"nc4_ncc_mismatch"} - ({"numerical_rank"} if pooled else set())
  assert set(got) == expected
  for key in expected:
    np.testing.assert_allclose(float(got[key]), float(want[key]), rtol=1e-9, atol=1e-12,
                               err_msg=key)
  np.testing.assert_allclose(count / len(y), float(want["nc4_ncc_mismatch"]))


def test_merge_is_exact_and_order_free():
  h, y, c = make_case("imbalanced")
  with jax.enable_x64(True):
    a = metrics.accumulate(h[:300], y[:300], num_classes=c)
    b = metrics.accumulate(h[300:], y[300:], num_classes=c)
    ab, ba = metrics.merge(a, b), metrics.merge(b, a)
    whole = metrics.accumulate(h, y, num_classes=c)
  for x, z in [(ab, whole), (ba, whole)]:
    for leaf_x, leaf_z in zip(jax.tree.leaves(x), jax.tree.leaves(z)):
      np.testing.assert_allclose(np.asarray(leaf_x), np.asarray(leaf_z), rtol=1e-10, atol=1e-10)


def test_stream_float32_large_offset_stays_accurate():
  """Mean 1e3, spread 1: centred merges keep float32 close to float64."""
  rng = np.random.default_rng(4)
  c, p = 5, 16
  y = rng.integers(0, c, 4000)
  h = 1e3 + rng.normal(size=(c, p))[y] + rng.normal(size=(len(y), p))
  with jax.enable_x64(True):
    want = metrics.collapse_report(h, y, num_classes=c, rtol=metrics.default_rtol(np.float32, p))
  stats = None
  for lo in range(0, len(y), 256):
    stats = metrics.accumulate(h[lo:lo + 256].astype(np.float32), y[lo:lo + 256],
                               num_classes=c, stats=stats)
  got = metrics.report_from_stats(stats)
  for key in ("nc1", "vci", "squared_distance", "cdnv", "nc2_etf", "within_vb",
              "within_vb_perp", "cosine_within", "cosine_total", "numerical_rank"):
    np.testing.assert_allclose(float(got[key]), float(want[key]), rtol=2e-3, err_msg=key)
  # The naive E[h^2] - E[h]^2 in float32 would have lost the within-class
  # variance (1.0 per dimension) to the offset entirely.
  sigma_w_trace = float(jnp.trace(metrics.moments_from_stats(stats).sigma_w))
  np.testing.assert_allclose(sigma_w_trace, p, rtol=0.05)


def test_bfloat16_features_are_measured_in_float32():
  """Features a bfloat16 model computed: streamed and in-memory reports equal
  the float64 report of the same values to float32 precision (the sums are
  never formed in bfloat16, whose 8-bit mantissa would be off by ~1e-2)."""
  rng = np.random.default_rng(5)
  c, p = 4, 32
  y = np.repeat(np.arange(c), 300)
  h16 = jnp.asarray(3.0 + rng.normal(size=(c, p))[y] + 0.5 * rng.normal(size=(len(y), p)),
                    jnp.bfloat16)
  h64 = np.asarray(h16.astype(jnp.float32), np.float64)  # The same values.
  keys = ("nc1", "vci", "squared_distance", "cdnv", "nc2_etf", "within_vb", "cosine_within")
  with jax.enable_x64(True):
    want = metrics.collapse_report(h64, y, num_classes=c)
  stats = None
  for lo in range(0, len(y), 100):
    stats = metrics.accumulate(h16[lo:lo + 100], y[lo:lo + 100], num_classes=c, stats=stats)
  assert stats.means.dtype == jnp.float32
  for got in (metrics.report_from_stats(stats), metrics.collapse_report(h16, y, num_classes=c)):
    for key in keys:
      np.testing.assert_allclose(float(got[key]), float(want[key]), rtol=1e-4, err_msg=key)


def test_pooled_stats_detect_wrong_declared_counts():
  h, y, c = make_case("random")
  stats = metrics.accumulate(h[:100], y[:100], num_classes=c,
                             class_counts=np.bincount(y, minlength=c))
  with pytest.raises(ValueError, match="declared"):
    metrics.report_from_stats(stats)


def test_stream_errors():
  h, y, c = make_case("random")
  stats = metrics.accumulate(h[:10], y[:10], num_classes=c)
  with pytest.raises(ValueError, match="stats are for"):
    metrics.accumulate(h[:10, :5], y[:10], num_classes=c, stats=stats)
  with pytest.raises(ValueError, match="cannot merge"):
    metrics.merge(stats, metrics.accumulate(h[:10, :5], y[:10], num_classes=c))
  with pytest.raises(ValueError, match="only 1 accumulated"):
    metrics.report_from_stats(metrics.accumulate(h[:3], np.zeros(3, int), num_classes=c))


@pytest.mark.parametrize("pooled", [False, True])
def test_sharded_over_8_devices_equals_one_device(pooled):
  assert jax.device_count() == 8, "tests/conftest.py sets 8 fake CPU devices"
  mesh = jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Explicit,))
  sharding = jax.sharding.NamedSharding(mesh, jax.P("data"))
  h, y, c = make_case("imbalanced")
  n = (len(y) // 16) * 16
  h, y = h[:n].astype(np.float32), y[:n]
  kw = dict(class_counts=np.bincount(y, minlength=c)) if pooled else {}
  half = n // 2
  stats = None
  for lo, hi in [(0, half), (half, n)]:
    f = jax.device_put(h[lo:hi], sharding)
    l = jax.device_put(y[lo:hi], sharding)
    stats = metrics.accumulate_sharded(f, l, num_classes=c, mesh=mesh, stats=stats,
                                       **(kw if stats is None else {}))
  one = None
  for lo, hi in [(0, half), (half, n)]:
    one = metrics.accumulate(h[lo:hi], y[lo:hi], num_classes=c, stats=one,
                             **(kw if one is None else {}))
  got, want = metrics.report_from_stats(stats), metrics.report_from_stats(one)
  assert set(got) == set(want)
  for key in want:
    np.testing.assert_allclose(float(got[key]), float(want[key]), rtol=2e-5, atol=1e-6,
                               err_msg=key)
  with pytest.raises(ValueError, match="does not split"):
    metrics.accumulate_sharded(h[:12], y[:12], num_classes=c, mesh=mesh)


@pytest.mark.parametrize("c,t", [(3, 4), (3, 64), (130, 1), (130, 2)])
def test_per_class_scatter_in_chunks_equals_one_block(monkeypatch, c, t):
  # Classes spanning several tiles, classes padded inside one tile, absent classes.
  from nc_jax.metrics import stats as stats_lib
  rng = np.random.default_rng(5)
  p, n = 4, 37
  h = rng.normal(size=(n, p)).astype(np.float32)
  y = rng.integers(0, c, n)
  tiles = stats_lib.sort_by_class(jnp.asarray(h), jnp.asarray(y, jnp.int32), c, tile_rows=t)
  whole = stats_lib._per_class_scatter(tiles)
  monkeypatch.setattr(stats_lib, "_OUTER_BLOCK_ELEMS", 3 * p * p)  # chunks of 3 tiles
  chunked = stats_lib._per_class_scatter(tiles)
  piv = np.asarray(tiles.pivots)  # rows are stored shifted by a sample of their class
  ref = np.stack([(h[y == k] - piv[k]).T @ (h[y == k] - piv[k]) for k in range(c)])
  np.testing.assert_allclose(np.asarray(chunked), ref, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.asarray(whole), ref, rtol=1e-5, atol=1e-5)
  # The layout itself: every sample exactly once, in its class's tiles.
  valid = np.asarray(tiles.valid)
  tile_class = np.repeat(np.asarray(tiles.tile_class), t)[valid.ravel()]
  np.testing.assert_array_equal(tile_class, np.sort(y) if t > 1 else y)  # T=1: sample order
  rows = np.asarray(tiles.rows)[valid] + piv[tile_class]
  np.testing.assert_allclose(np.sort(rows, axis=0), np.sort(h, axis=0), atol=1e-6)
  for k in set(y.tolist()):  # each pivot is a sample of its class
    assert np.any(np.all(h[y == k] == piv[k], axis=1))


def test_pooled_stream_with_more_classes_than_rows_per_batch():
  """The pooled update with C > batch rows (language-model vocabularies): its
  rank-C mean correction is taken as one row per sample; equal to the in-memory
  report in float64, with most classes absent from each batch."""
  rng = np.random.default_rng(3)
  c, n, p = 500, 4000, 24
  y = rng.integers(0, c, n)
  y[:c] = np.arange(c)  # every class present
  h = rng.normal(size=(c, p))[y] * 3 + rng.normal(size=(n, p)) + 50.0  # a common offset
  with jax.enable_x64(True):
    want = metrics.collapse_report(h, y, num_classes=c)
    stats = None
    for lo in range(0, n, 64):
      stats = metrics.accumulate(h[lo:lo + 64], y[lo:lo + 64], num_classes=c, stats=stats,
                                 class_counts=np.bincount(y, minlength=c) if stats is None
                                 else None)
    got = metrics.report_from_stats(stats)
  for key in set(got):
    np.testing.assert_allclose(float(got[key]), float(want[key]), rtol=1e-9, atol=1e-12,
                               err_msg=key)
