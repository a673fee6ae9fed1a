"""variance_to_means (002 TrainVariance(t)) and msdr (004) against the float64 reference."""

from functools import partial

import jax
import numpy as np
import pytest

import reference
from nc_jax import metrics


def _data(rng, counts, p=6, offset=0.0):
  """Features with unbalanced classes: counts[k] samples of class k."""
  y = np.repeat(np.arange(len(counts)), counts)
  rng.shuffle(y)
  means = rng.normal(size=(len(counts), p)) * 3 + offset
  h = means[y] + rng.normal(size=(len(y), p)) * rng.uniform(0.3, 2.0, len(counts))[y, None]
  return h.astype(np.float32), y


# ----------------------------------------------------------------------------
# variance_to_means
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("offset", [0.0, 100.0])
def test_variance_to_means_matches_reference_unbalanced(offset):
  rng = np.random.default_rng(0)
  counts = [3, 40, 7, 1, 19]
  h, y = _data(rng, counts, offset=offset)
  given = (rng.normal(size=(5, 6)) * 3 + offset).astype(np.float32)  # e.g. the final model's
  want = reference.variance_to_means(h, y, given)
  got = metrics.variance_to_means(h, y, given, num_classes=5)
  np.testing.assert_allclose(float(got), want, rtol=1e-5)
  jitted = jax.jit(partial(metrics.variance_to_means, num_classes=5))
  np.testing.assert_allclose(float(jitted(h, y, given)), want, rtol=1e-5)
  # Class-balanced (SPEC.md Notation), not paper 002's sample average, which
  # differs here because the classes are unbalanced.
  sample_avg = (np.mean(np.sum((h.astype(np.float64) - given[y]) ** 2, 1))
                / np.mean(np.sum((given - given.mean(0)) ** 2, 1)))
  assert abs(sample_avg - want) > 1e-2 * want


def test_variance_to_means_hand_example():
  # 1-D, c = (-1, 1): spread (1 + 1)/2 = 1. Class 0: one sample at distance 2;
  # class 1: three samples at distance 1 -> (4 + 1) / 2 = 2.5 (the sample
  # average would be (4 + 3) / 4 = 1.75).
  h = np.array([[1.0], [0.0], [2.0], [2.0]], np.float32)
  y = np.array([0, 1, 1, 1])
  c = np.array([[-1.0], [1.0]], np.float32)
  assert float(metrics.variance_to_means(h, y, c, num_classes=2)) == pytest.approx(2.5)


def test_variance_to_means_with_own_means_is_squared_distance():
  rng = np.random.default_rng(1)
  h, y = _data(rng, [5, 30, 12, 2])
  m = metrics.class_moments(h, y, num_classes=4)
  got = float(metrics.variance_to_means(h, y, m.means, num_classes=4))
  # Tr(Sigma_W) / Tr(Sigma_B) (SPEC.md squared_distance) = train_variance.
  ref = reference.report(h, y, 4)["squared_distance"]
  np.testing.assert_allclose(got, ref, rtol=1e-5)
  np.testing.assert_allclose(got, float(metrics.squared_distance(m)), rtol=1e-5)
  np.testing.assert_allclose(got, float(metrics.train_variance(h, y, num_classes=4)),
                             rtol=1e-5)


def test_variance_to_means_collapse_is_zero():
  rng = np.random.default_rng(2)
  c = rng.normal(size=(3, 4)).astype(np.float32)
  y = np.array([0, 0, 1, 2, 2, 2])
  assert float(metrics.variance_to_means(c[y], y, c, num_classes=3)) == 0.0


def test_variance_to_means_traced_leaves_out_absent_classes():
  rng = np.random.default_rng(3)
  h, y = _data(rng, [4, 9, 6])
  given = rng.normal(size=(4, 6)).astype(np.float32)  # class 3 has no samples
  got = jax.jit(partial(metrics.variance_to_means, num_classes=4))(h, y, given)
  np.testing.assert_allclose(float(got), reference.variance_to_means(h, y, given), rtol=1e-5)


def test_variance_to_means_errors():
  rng = np.random.default_rng(4)
  h, y = _data(rng, [4, 9, 6])
  c = rng.normal(size=(3, 6)).astype(np.float32)
  with pytest.raises(ValueError, match=r"classes \[3\] have none"):
    metrics.variance_to_means(h, y, np.concatenate([c, c[:1]]), num_classes=4)
  bad = h.copy()
  bad[2, 1] = np.nan
  with pytest.raises(ValueError, match="features contains NaN"):
    metrics.variance_to_means(bad, y, c, num_classes=3)
  bad_c = c.copy()
  bad_c[1, 0] = np.inf
  with pytest.raises(ValueError, match="class_means contains NaN"):
    metrics.variance_to_means(h, y, bad_c, num_classes=3)
  with pytest.raises(ValueError, match="class_means must have shape"):
    metrics.variance_to_means(h, y, c[:, :5], num_classes=3)
  with pytest.raises(ValueError, match="class_means must have shape"):
    metrics.variance_to_means(h, y, c[:2], num_classes=3)
  with pytest.raises(ValueError, match="disagree on N"):
    metrics.variance_to_means(h, y[:-1], c, num_classes=3)
  with pytest.raises(ValueError, match="labels must lie"):
    metrics.variance_to_means(h, y + 1, c, num_classes=3)


# ----------------------------------------------------------------------------
# msdr
# ----------------------------------------------------------------------------

# Unequal super-class sizes (4, 2, 3 and a singleton).
_SUPER = np.array([0, 1, 0, 2, 0, 1, 3, 2, 0, 2])


def _random_distance_matrix(rng, superclass, spread=2.0):
  """A valid class distance matrix D_ij = V_i + V_j + ||mu_i - mu_j||^2."""
  c = len(superclass)
  centres = rng.normal(size=(superclass.max() + 1, 5)) * 4
  mu = centres[superclass] + rng.normal(size=(c, 5)) * spread
  v = rng.uniform(0.2, 3.0, c)
  return v[:, None] + v[None, :] + ((mu[:, None] - mu[None]) ** 2).sum(-1)


def _msdr_with_diagonal(d, superclass):
  """The bug to catch: pairs i = j counted in the numerator."""
  same = superclass[:, None] == superclass[None, :]
  return d[same].mean() / np.diag(d).mean()


@pytest.mark.parametrize("seed", range(4))
def test_msdr_matches_reference_unequal_superclasses(seed):
  rng = np.random.default_rng(seed)
  d = _random_distance_matrix(rng, _SUPER)
  want = reference.msdr(d, _SUPER)
  np.testing.assert_allclose(float(metrics.msdr(d.astype(np.float32), _SUPER)), want,
                             rtol=1e-5)
  # The test can see the diagonal bug: it moves the value far beyond rtol.
  assert abs(_msdr_with_diagonal(d, _SUPER) - want) > 0.05 * want


def test_msdr_from_features_with_an_absent_class():
  rng = np.random.default_rng(5)
  counts = [6, 3, 9, 4, 0, 7, 5, 2, 8, 3]  # class 4 absent
  h, y = _data(rng, counts, p=4)
  d = metrics.class_distance_matrix(h, y, num_classes=10)
  d_ref = reference.class_distance_matrix(h, y, 10)
  want = reference.msdr(d_ref, _SUPER)
  np.testing.assert_allclose(float(metrics.msdr(d, _SUPER)), want, rtol=1e-4)
  assert abs(_msdr_with_diagonal(np.delete(np.delete(d_ref, 4, 0), 4, 1),
                                 np.delete(_SUPER, 4)) - want) > 0.05 * want


def _identical_subclasses(rng, superclass, scales, n=5, p=3):
  """Every sub-class of super-class s holds the same n points, V_s = scales[s]^2 V."""
  z = rng.normal(size=(n, p))
  base = [z * scales[s] + rng.normal(size=p) * 10 for s in range(superclass.max() + 1)]
  h = np.concatenate([base[s] for s in superclass])
  return h, np.repeat(np.arange(len(superclass)), n)


def _msdr_rtol(d):
  """float32 sums over the entries of D, in whatever order XLA picks: ~ size x eps."""
  return d.size * np.finfo(np.float32).eps


def test_msdr_identical_subclasses():
  rng = np.random.default_rng(6)
  sizes = np.bincount(_SUPER)
  # Equal spreads: D_ij = D_ii = 2V inside a super-class -> MSDR = 1.
  h, y = _identical_subclasses(rng, _SUPER, np.ones(4))
  d = reference.class_distance_matrix(h, y, 10)
  np.testing.assert_allclose(float(metrics.msdr(d, _SUPER)), 1.0, rtol=_msdr_rtol(d))
  # Unequal spreads V_s: SPEC.md's pooled means over pairs and over classes give
  # sum_s s(s-1) V_s / sum_s s(s-1)  /  (sum_s s V_s / sum_s s)  (not 1).
  scales = np.array([1.0, 3.0, 0.5, 2.0])
  h, y = _identical_subclasses(rng, _SUPER, scales)
  d = reference.class_distance_matrix(h, y, 10)
  v = np.array([np.diag(d)[_SUPER == s][0] / 2 for s in range(4)])
  want = (sizes * (sizes - 1) @ v / (sizes * (sizes - 1)).sum()) / (sizes @ v / sizes.sum())
  np.testing.assert_allclose(float(metrics.msdr(d, _SUPER)), want, rtol=_msdr_rtol(d))
  assert abs(want - 1) > 0.1
  # Equal super-class sizes: 1 whatever the spreads.
  sup = np.array([0, 1, 2, 0, 1, 2])
  h, y = _identical_subclasses(rng, sup, np.array([1.0, 3.0, 0.5]))
  np.testing.assert_allclose(
      float(metrics.msdr(reference.class_distance_matrix(h, y, 6), sup)), 1.0, rtol=1e-6)


def test_msdr_grows_with_subclass_separation():
  # Two sub-classes per super-class, means at +-a/2 with variance V:
  # D_ij = 2V + a^2, D_ii = 2V -> MSDR = 1 + a^2 / (2V).
  v = 0.5
  for a in (0.0, 1.0, 3.0):
    d = np.full((4, 4), 50.0)
    sup = np.array([0, 0, 1, 1])
    d[sup[:, None] == sup[None]] = 2 * v + a ** 2
    np.fill_diagonal(d, 2 * v)
    np.testing.assert_allclose(float(metrics.msdr(d, sup)), 1 + a ** 2 / (2 * v), rtol=1e-6)


def test_msdr_errors():
  d = np.ones((4, 4))
  with pytest.raises(ValueError, match="square"):
    metrics.msdr(d[:3], np.arange(4))
  with pytest.raises(ValueError, match="superclass must have shape"):
    metrics.msdr(d, np.arange(3))
  with pytest.raises(ValueError, match="at least two original classes"):
    metrics.msdr(d, np.arange(4))
