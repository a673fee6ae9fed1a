"""nc_jax.probes.correlation against closed forms, hand-computed examples and scipy."""

import math

import jax
import numpy as np
import pytest
import scipy.stats

from nc_jax.probes import correlation

CORRS = (correlation.pearson, correlation.spearman)


def test_spearman_of_monotone_transforms_and_reversal():
  x = np.array([0.3, -1.2, 2.5, 0.0, 7.1, -3.3, 1.9])
  for f in (np.exp, lambda v: v ** 3, lambda v: np.arctan(v) * 5 - 1):
    assert correlation.spearman(x, f(x)) == 1.0
    assert correlation.spearman(x, -f(x)) == -1.0
  assert correlation.spearman(np.arange(6), np.arange(6)[::-1]) == -1.0


def test_spearman_hand_examples_are_exact():
  # No ties: 1 - 6 sum d^2 / (n (n^2 - 1)); d = (1, 1, 1, 1, 0) -> 1 - 24/120.
  assert correlation.spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == 0.8
  # d = (2, 0, 2, 0) ... ranks (1,2,3,4) vs (3,2,1,4): sum d^2 = 8 -> 1 - 48/60.
  assert correlation.spearman([10, 20, 30, 40], [0.3, 0.2, 0.1, 0.4]) == 0.2
  # Ties: Pearson of the average ranks (1, 2.5, 2.5, 4) vs (1, 2, 3, 4):
  # sxy = 4.5, sxx = 5, syy = 4.5 -> sqrt(0.9); the no-ties formula would give 0.95.
  r = correlation.spearman([1, 2, 3, 4], [1, 2, 2, 3])
  assert r == pytest.approx(math.sqrt(0.9), abs=1e-12) and r != 0.95


def test_pearson_hand_examples():
  # xc = (-1, 0, 1), yc = (-4, -1, 5)/3: r = 3 / sqrt(2 * 14/3) = sqrt(27/28).
  assert correlation.pearson([1, 2, 3], [1, 2, 4]) == pytest.approx(math.sqrt(27 / 28),
                                                                    abs=1e-12)
  x = np.array([0.1, 0.7, -2.0, 3.3])
  assert correlation.pearson(x, 3 * x + 2) == 1.0
  assert correlation.pearson(x, -0.5 * x + 1) == -1.0
  assert correlation.pearson([1, 2, 3, 4], [1, -1, -1, 1]) == 0.0


@pytest.mark.parametrize("corr", CORRS)
def test_nan_rules(corr):
  assert math.isnan(corr([1.0, 2.0], [3.0, 5.0]))          # 2 points: always +-1
  assert math.isnan(corr([1.0], [3.0]))
  assert math.isnan(corr([0.1] * 5, [1, 2, 3, 4, 5]))      # constant x
  assert math.isnan(corr([1, 2, 3, 4, 5], [7, 7, 7, 7, 7]))  # constant y
  assert math.isnan(corr([1, 2, np.nan, 4], [1, 2, 3, 4]))
  assert math.isnan(corr([1, 2, 3, 4], [1, np.nan, 3, 4]))
  assert not math.isnan(corr([1, 2, 3], [1, 3, 2]))         # 3 points suffice


@pytest.mark.parametrize("corr", CORRS)
def test_nan_rules_under_jit(corr):
  f = jax.jit(corr)
  assert np.isnan(f(np.array([1.0, 2.0]), np.array([3.0, 5.0])))
  assert np.isnan(f(np.full(5, 0.1), np.arange(5.0)))
  assert np.isnan(f(np.array([1.0, 2.0, np.nan, 4.0]), np.arange(4.0)))
  assert float(f(np.arange(5.0), 2 * np.arange(5.0) + 1)) == pytest.approx(1.0, abs=1e-6)


def test_matches_scipy_with_ties():
  rng = np.random.default_rng(0)
  for n in (3, 4, 7, 30):
    x = rng.integers(0, 4, n).astype(float)  # many ties
    y = x + rng.normal(size=n)
    if np.ptp(x) == 0:
      continue
    assert correlation.spearman(x, y) == pytest.approx(scipy.stats.spearmanr(x, y)[0],
                                                       abs=1e-12)
    assert correlation.pearson(x, y) == pytest.approx(scipy.stats.pearsonr(x, y)[0],
                                                      abs=1e-12)


@pytest.mark.parametrize("corr", CORRS)
def test_batched_jit_and_vmap_agree_with_one_by_one(corr):
  rng = np.random.default_rng(1)
  x, y = rng.normal(size=(3, 9)), rng.normal(size=(3, 9))
  x[1, 2] = x[1, 5]  # a tie
  one = np.array([corr(a, b) for a, b in zip(x, y)])
  np.testing.assert_array_equal(corr(x, y), one)
  np.testing.assert_array_equal(corr(x, y[0]), [corr(a, y[0]) for a in x])  # broadcast
  np.testing.assert_allclose(np.asarray(jax.jit(corr)(x, y)), one, atol=1e-6)
  np.testing.assert_allclose(np.asarray(jax.vmap(corr)(x, y)), one, atol=1e-6)


@pytest.mark.parametrize("corr", CORRS)
def test_returns_a_float_and_checks_shapes(corr):
  r = corr([1, 2, 3, 4], [2, 1, 4, 3])
  assert isinstance(r, float)
  with pytest.raises(ValueError, match="same number of points"):
    corr([1, 2, 3], [1, 2, 3, 4])
  with pytest.raises(ValueError, match="points axis"):
    corr(1.0, 2.0)


def test_rankdata_average_ties():
  np.testing.assert_array_equal(correlation.rankdata([3.0, 1.0, 3.0, 2.0]),
                                [3.5, 1.0, 3.5, 2.0])
  np.testing.assert_array_equal(jax.jit(correlation.rankdata)(np.array([3.0, 1.0, 3.0, 2.0])),
                                [3.5, 1.0, 3.5, 2.0])
