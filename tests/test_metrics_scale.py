"""Many classes: the pairwise metrics reduced tile by tile equal the C x C path.

`core.cdnv`, `nc2_etf`, `nc2_equiangular` and `gnc2` either build the C x C
Gram of the centred means (``pair_rows=0``) or reduce row blocks of T
classes against all of them (``pair_rows=T``); past `PAIR_BLOCK_ELEMS` pairs
the report picks the tiles. Checked against the float64 reference of SPEC.md
on every reference case, against the dense path to float64 rounding on
blocks that do and do not divide C (absent classes, p < C and p > C), at
K = 2,000 in float32 in memory and streamed, and by the shapes XLA is asked
to build.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import reference
from nc_jax import metrics
from nc_jax.metrics import core
from test_metrics import CASES, make_case

PAIRWISE = ('cdnv', 'nc2_etf', 'nc2_equiangular', 'gnc2_log_mean', 'gnc2_log_var')


def _pairwise(m, rows):
  log_mean, log_var = core.gnc2(m, pair_rows=rows)
  return dict(cdnv=core.cdnv(m, pair_rows=rows), nc2_etf=core.nc2_etf(m, pair_rows=rows),
              nc2_equiangular=core.nc2_equiangular(m, pair_rows=rows),
              gnc2_log_mean=log_mean, gnc2_log_var=log_var)


@pytest.mark.parametrize('case', CASES)
@pytest.mark.parametrize('rows', [1, 3])
def test_tiled_pairwise_matches_the_float64_reference(case, rows):
  h, y, c = make_case(case)
  ref = reference.report(h, y, c, rtol=1e-9)
  with jax.enable_x64(True):
    m = metrics.class_moments(jnp.asarray(h), jnp.asarray(y), num_classes=c)
    got = _pairwise(m, rows)
    for key in PAIRWISE:
      np.testing.assert_allclose(float(got[key]), ref[key], rtol=1e-8, atol=1e-10,
                                 err_msg=key)


def _moments(c, p, n=3, seed=0, absent=(5, 40)):
  """C classes of n samples in p dims, a large common offset, some classes absent."""
  rng = np.random.default_rng(seed)
  y = np.repeat(np.arange(c), n)
  h = rng.normal(size=(c, p))[y] * 3 + rng.normal(size=(c * n, p)) + 10.0
  keep = ~np.isin(y, absent)
  return metrics.class_moments(jnp.asarray(h[keep]), jnp.asarray(y[keep]), num_classes=c)


@pytest.mark.parametrize('c,p', [(300, 16), (60, 100)])  # p < C, and p > C (norm by blocks)
def test_tiled_pairwise_equals_dense_to_float64_rounding(c, p):
  with jax.enable_x64(True):
    m = _moments(c, p)
    dense = _pairwise(m, 0)
    for rows in (7, c - 1, c + 13):  # blocks that divide C or not, one block past C
      got = _pairwise(m, rows)
      for key in PAIRWISE:
        np.testing.assert_allclose(float(got[key]), float(dense[key]), rtol=1e-12,
                                   err_msg=f'{key} rows={rows}')


def test_pair_tile_rows_rule():
  assert core.pair_tile_rows(2048) == 0  # 2048^2 = PAIR_BLOCK_ELEMS: one dense array
  assert core.pair_tile_rows(2049) == core.PAIR_BLOCK_ELEMS // 2049
  assert core.pair_tile_rows(50_000) == 83 and core.pair_tile_rows(10, block_elems=50) == 5
  assert core.pair_tile_rows(10**8) == 1  # Never 0 rows.


def test_k2000_float32_tiled_report_equals_untiled_in_memory_and_streamed():
  rng = np.random.default_rng(3)
  c, p, n = 2000, 24, 8
  y = np.repeat(np.arange(c), n)
  h = (rng.normal(size=(c, p))[y] * 2 + rng.normal(size=(c * n, p)) + 5).astype(np.float32)
  dense = metrics.collapse_report(h, y, num_classes=c, pair_rows=0)
  tiled = metrics.collapse_report(h, y, num_classes=c, pair_rows=96)
  assert set(dense) == set(tiled)
  for key in dense:
    np.testing.assert_allclose(float(tiled[key]), float(dense[key]), rtol=2e-5, err_msg=key)
  # Streamed with the pooled scatter (p^2, not C p^2), in batches.
  counts = np.bincount(y, minlength=c)
  stats = None
  order = rng.permutation(len(y))
  for part in np.array_split(order, 4):
    stats = metrics.accumulate(h[part], y[part], num_classes=c, stats=stats,
                               class_counts=None if stats else counts)
  streamed = metrics.report_from_stats(stats, pair_rows=96)
  for key in PAIRWISE:
    np.testing.assert_allclose(float(streamed[key]), float(dense[key]), rtol=1e-4,
                               err_msg=key)


def test_past_the_budget_no_class_by_class_array_is_built():
  """The shapes XLA is asked for: a C x C array on the dense path, none tiled."""
  c, p = 3000, 32  # 9M pairs > PAIR_BLOCK_ELEMS: the report tiles.
  h = jax.ShapeDtypeStruct((2 * c, p), jnp.float32)
  y = jax.ShapeDtypeStruct((2 * c,), jnp.int32)

  def program(rows):
    return str(jax.make_jaxpr(lambda f, l: metrics.report._report(
        f, l, None, None, num_classes=c, rank=None, rtol=None, pair_rows=rows))(h, y))

  square = f'[{c},{c}]'
  assert square in program(0)
  assert core.pair_tile_rows(c) > 0 and square not in program(None)


def test_k10000_sharded_over_8_devices_equals_one_device():
  """The streamed, sharded path at a vocabulary's scale (pooled scatter, tiled pairs)."""
  assert jax.device_count() == 8, 'tests/conftest.py sets 8 fake CPU devices'
  mesh = jax.make_mesh((8,), ('data',), axis_types=(jax.sharding.AxisType.Explicit,))
  sharding = jax.sharding.NamedSharding(mesh, jax.P('data'))
  rng = np.random.default_rng(4)
  c, p, n = 10_000, 16, 4
  y = rng.permutation(np.repeat(np.arange(c), n))
  h = (rng.normal(size=(c, p))[y] * 2 + rng.normal(size=(c * n, p))).astype(np.float32)
  counts = np.bincount(y, minlength=c)
  assert core.pair_tile_rows(c) > 0  # The report tiles at this K.
  sharded = one = None
  for part in np.array_split(np.arange(c * n), 2):
    sharded = metrics.accumulate_sharded(
        jax.device_put(h[part], sharding), jax.device_put(y[part], sharding), num_classes=c,
        mesh=mesh, stats=sharded, class_counts=None if sharded else counts)
    one = metrics.accumulate(h[part], y[part], num_classes=c, stats=one,
                             class_counts=None if one else counts)
  got, want = metrics.report_from_stats(sharded), metrics.report_from_stats(one)
  assert set(got) == set(want) and 'numerical_rank' not in got  # pooled: no per-class scatter
  for key in want:
    np.testing.assert_allclose(float(got[key]), float(want[key]), rtol=2e-5, atol=1e-6,
                               err_msg=key)
