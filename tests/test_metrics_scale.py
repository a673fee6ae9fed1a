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
  """The four functions one by one, and `core.pairwise` (``fused_`` keys)."""
  log_mean, log_var = core.gnc2(m, pair_rows=rows)
  out = dict(cdnv=core.cdnv(m, pair_rows=rows), nc2_etf=core.nc2_etf(m, pair_rows=rows),
             nc2_equiangular=core.nc2_equiangular(m, pair_rows=rows),
             gnc2_log_mean=log_mean, gnc2_log_var=log_var)
  fused = core.pairwise(m, pair_rows=rows)
  assert set(fused) == set(PAIRWISE)
  return dict(out, **{f'fused_{k}': v for k, v in fused.items()})


@pytest.mark.parametrize('case', CASES)
@pytest.mark.parametrize('rows', [1, 3])
def test_tiled_pairwise_matches_the_float64_reference(case, rows):
  h, y, c = make_case(case)
  ref = reference.report(h, y, c, rtol=1e-9)
  with jax.enable_x64(True):
    m = metrics.class_moments(jnp.asarray(h), jnp.asarray(y), num_classes=c)
    got = _pairwise(m, rows)
    for key in PAIRWISE:
      for name in (key, f'fused_{key}'):
        np.testing.assert_allclose(float(got[name]), ref[key], rtol=1e-8, atol=1e-10,
                                   err_msg=name)


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
      for key in got:
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


# ---------------------------------------------------------------------------
# The planner.
# ---------------------------------------------------------------------------


def test_plan_costs_are_the_closed_forms():
  n, p, c = 983_040, 1024, 32_768  # 30 tokens per class of a 32k vocabulary
  pl = metrics.plan(n, p, c, memory_bytes=24 << 30)
  cost = pl.costs
  assert cost['per-class scatter (streamed)'].bytes == c * p * p * 4 + 2 * c * p * 4
  assert not cost['per-class scatter (streamed)'].fits and pl.scatter == 'pooled'
  assert cost['pooled scatter'].bytes == p * p * 4 + 2 * c * p * 4
  assert cost['pooled scatter'].gemms == 1.0
  assert cost['pairwise, one C x C array'].bytes == 4 * c * c * 4
  # One Gram of 2 C^2 p flops against the bare GEMM's 2 N p^2; tiled, two sweeps.
  assert cost['pairwise, one C x C array'].gemms == pytest.approx(c * c / (n * p))
  assert cost['pairwise, row blocks of 128'].gemms == pytest.approx(2 * c * c / (n * p))
  assert pl.pair_rows == core.PAIR_BLOCK_ELEMS // c == 128
  assert cost['pairwise, row blocks of 128'].bytes == 4 * 128 * c * 4
  assert 'class_counts' in pl.messages[0] and '128.0 GiB' in pl.messages[0]
  assert '| per-class scatter (streamed) | 128.2 GiB | 1 | **no** |' in pl.table()
  # float64 doubles every byte; a small problem keeps one dense array.
  assert metrics.plan(n, p, c, dtype='float64', memory_bytes=1 << 40).costs[
      'pooled scatter'].bytes == 2 * cost['pooled scatter'].bytes
  small = metrics.plan(1000, 64, 10, memory_bytes=1 << 30)
  assert small.pair_rows == 0 and small.scatter == 'per_class' and not small.messages
  with pytest.raises(ValueError, match='N, p, C >= 1'):
    metrics.plan(0, 4, 3)


def test_per_class_scatter_that_cannot_fit_is_refused_before_allocating():
  h = np.zeros((4, 1024), np.float32)
  y = np.array([0, 1, 2, 3])
  with pytest.raises(ValueError, match=r'per-class scatter for C=200,000.*class_counts='):
    metrics.accumulate(h, y, num_classes=200_000)  # 800 GB of C p^2
  stats = metrics.accumulate(h, y, num_classes=200_000,  # the pooled layout fits
                             class_counts=np.bincount(y, minlength=200_000))
  assert stats.pooled


def test_report_takes_the_planners_rows_under_a_small_budget(monkeypatch):
  from nc_jax.metrics import planning as plan_lib
  monkeypatch.setattr(plan_lib, 'available_bytes', lambda device=None: 16 * 600)
  assert metrics.plan(400, 8, 50).pair_rows == 12  # blocks of 600 elements: 12 rows
  h, y, c = make_case('p_lt_k')
  dense = metrics.collapse_report(h.astype(np.float32), y, num_classes=c, pair_rows=0)
  monkeypatch.setattr(plan_lib, 'available_bytes', lambda device=None: 16 * 4 * c)
  assert metrics.plan(len(y), h.shape[1], c).pair_rows == 4
  planned = metrics.collapse_report(h.astype(np.float32), y, num_classes=c)
  for key in dense:
    np.testing.assert_allclose(float(planned[key]), float(dense[key]), rtol=1e-5, err_msg=key)


def test_bench_scale_point_measures_the_report_of_its_own_data():
  """benchmarks/bench_scale.py in its smoke form: one small point, in process."""
  import importlib.util
  import os
  path = os.path.join(os.path.dirname(__file__), '..', 'benchmarks', 'bench_scale.py')
  spec = importlib.util.spec_from_file_location('bench_scale', path)
  bench = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(bench)
  k, p, batch = 300, 16, 256
  row = bench.point(k, p, per_class=4, batch=batch)
  assert row['n'] == 5 * batch  # 1,200 rows rounded up to whole batches
  assert row['gemm_s'] > 0 and row['stream_s'] > 0 and row['peak_mib'] > 0
  xs, ys = zip(*bench._batches(row['n'], p, k, batch))
  x, y = np.concatenate(xs), np.concatenate(ys)
  np.testing.assert_array_equal(sum(np.bincount(l, minlength=k) for l in ys),
                                bench._counts(row['n'], k, batch))
  want = metrics.collapse_report(x, y, num_classes=k)
  for key in ('nc1', 'cdnv'):
    np.testing.assert_allclose(row['check'][key], float(want[key]), rtol=1e-4, err_msg=key)
  text = bench.table(dict(machine='m', jax='j', per_class=4, batch=batch, points=[
      row, dict(k=50_000, p=1024, n=10**6, error='MemoryError', pair_rows=83,
                plan_messages=['the per-class scatter ...'])]))
  assert '| 300 | 16 | 1,280 |' in text and 'failed: MemoryError' in text
  assert 'the per-class scatter ...' in text


def test_bench_scale_names_a_killed_point():
  """A point's process killed (as the kernel kills it for memory) is recorded as such."""
  import importlib.util
  import os
  import sys
  path = os.path.join(os.path.dirname(__file__), '..', 'benchmarks', 'bench_scale.py')
  spec = importlib.util.spec_from_file_location('bench_scale', path)
  bench = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(bench)
  killed = bench._subprocess(
      [sys.executable, '-c', 'import os, signal; os.kill(os.getpid(), signal.SIGKILL)'], 60)
  assert killed == dict(error='killed (SIGKILL: out of memory)', returncode=-9)
  ok = bench._subprocess([sys.executable, '-c', 'print("x"); print(\'{"a": 1}\')'], 60)
  assert ok == dict(a=1)
