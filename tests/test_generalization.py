"""nc_jax.metrics.generalization: k-means, train / strong / weak test collapse, memorization."""

import itertools

import jax.numpy as jnp
import numpy as np
import pytest

from nc_jax import metrics
from nc_jax.metrics import generalization as gen


def _blobs(seed, *, c=4, p=6, n=60, spread=1.0, scale=6.0, offset=0.0):
  rng = np.random.default_rng(seed)
  mu = rng.normal(size=(c, p)) * scale
  y = np.repeat(np.arange(c), n)
  x = mu[y] + spread * rng.normal(size=(len(y), p)) + offset
  return x.astype(np.float32), y


def _best_label_match(assign, y, c):
  best = 0
  for perm in itertools.permutations(range(c)):
    best = max(best, np.mean(np.asarray(perm)[assign] == y))
  return best


@pytest.mark.parametrize("init", gen.KMEANS_INITS)
def test_kmeans_finds_separated_clusters(init):
  x, y = _blobs(0, offset=1e3)  # a large common offset: float32 must cope
  res = gen.kmeans(x, num_clusters=4, key=0, init=init, num_restarts=4)
  assert _best_label_match(np.asarray(res.assignments), y, 4) == 1.0
  means = np.stack([x[y == k].mean(0) for k in range(4)])
  # Each centroid is a class mean.
  d = np.linalg.norm(np.asarray(res.centroids)[:, None] - means[None], axis=-1)
  np.testing.assert_allclose(d.min(axis=1), 0, atol=1e-2)
  inertia = np.mean(np.min(((x[:, None] - np.asarray(res.centroids)[None]) ** 2).sum(-1), 1))
  np.testing.assert_allclose(float(res.inertia), inertia, rtol=1e-3)


def test_kmeans_matches_sklearn_inertia():
  from sklearn.cluster import KMeans
  x, _ = _blobs(1, c=5, spread=3.0)  # overlapping: a real optimisation problem
  ours = float(gen.kmeans(x, num_clusters=5, key=0, num_restarts=10).inertia)
  ref = KMeans(5, n_init=10, random_state=0).fit(x).inertia_ / len(x)
  assert ours <= ref * 1.01


def test_kmeans_errors():
  x, _ = _blobs(0)
  with pytest.raises(ValueError, match="init"):
    gen.kmeans(x, num_clusters=3, init="forgy")
  with pytest.raises(ValueError, match="num_clusters"):
    gen.kmeans(x[:2], num_clusters=3)


def test_train_and_strong_test_variance_are_squared_distance():
  x, y = _blobs(2, spread=2.0)
  expected = float(metrics.squared_distance(metrics.class_moments(x, y, num_classes=4)))
  assert float(gen.train_variance(x, y, num_classes=4)) == pytest.approx(expected)
  assert float(gen.strong_test_variance(x, y, num_classes=4)) == pytest.approx(expected)
  # By hand (balanced classes): mean squared distance to own class mean / spread of means.
  means = np.stack([x[y == k].mean(0) for k in range(4)])
  num = np.mean(np.sum((x - means[y]) ** 2, 1))
  den = np.mean(np.sum((means - means.mean(0)) ** 2, 1))
  assert expected == pytest.approx(num / den, rel=1e-4)


def test_weak_below_strong_test_variance():
  """k-means minimises the numerator: weak <= strong where it finds the classes (002 Fig 3)."""
  x, y = _blobs(3, spread=4.0)  # overlapping: k-means finds the classes up to ~2%
  res = gen.kmeans(x, num_clusters=4, key=0)
  assert 0.95 < _best_label_match(np.asarray(res.assignments), y, 4) < 1
  weak = float(gen.weak_test_variance(x, num_clusters=4, key=0))
  strong = float(gen.strong_test_variance(x, y, num_classes=4))
  assert 0 < weak < strong
  # Separated and balanced: k-means returns the class means, the two agree.
  x, y = _blobs(4, spread=0.5)
  weak = float(gen.weak_test_variance(x, num_clusters=4, key=0))
  strong = float(gen.strong_test_variance(x, y, num_classes=4))
  assert weak == pytest.approx(strong, rel=1e-3)
  # Full weak collapse: K distinct points give 0.
  assert float(gen.weak_test_variance(np.repeat(x[:4], 10, 0), num_clusters=4)) == pytest.approx(0, abs=1e-6)


def test_collapse_beyond_train_keys():
  x, y = _blobs(5, spread=2.0)
  xt, yt = _blobs(6, spread=2.0)
  r = gen.collapse_beyond_train(x, y, xt, yt, num_classes=4)
  assert set(r) == {"train_variance", "strong_test_variance", "weak_test_variance"}
  assert all(np.isfinite(float(v)) for v in r.values())


def test_memorization_ratio():
  """Layer 'early' follows the clean labels, 'late' has memorised the noisy ones."""
  rng = np.random.default_rng(0)
  c, n, p = 4, 400, 8
  clean = rng.integers(0, c, n)
  flip = rng.random(n) < 0.4
  noisy = np.where(flip, rng.integers(0, c, n), clean)
  centres = rng.normal(size=(c, p)) * 5
  early = centres[clean] + rng.normal(size=(n, p))
  late = centres[noisy] + rng.normal(size=(n, p))
  ratios = gen.memorization_ratios({"early": early, "late": late}, clean, noisy, num_classes=c)
  assert float(ratios["early"]) < 1 < float(ratios["late"])
  assert gen.memorization_layers(ratios) == ("late",)
  # By the definition: cdnv(clean) / cdnv(noisy).
  m = lambda lab: float(metrics.cdnv(metrics.class_moments(
      jnp.asarray(late, jnp.float32), lab, num_classes=c)))
  assert float(ratios["late"]) == pytest.approx(m(clean) / m(noisy), rel=1e-5)
  # No noise: ratio exactly 1.
  assert float(gen.memorization_ratio(early, clean, clean, num_classes=c)) == pytest.approx(1.0)
  with pytest.raises(ValueError, match="no ratio"):
    gen.memorization_layers(ratios, order=("early", "middle"))


def test_class_distance_matrix_brute_force():
  """D_ij = mean over all pairs (u in i, v in j) of ||h_u - h_v||^2 (SPEC.md line 55)."""
  x, y = _blobs(7, c=3, n=15, spread=1.5)
  x = x[:40]; y = y[:40]  # unequal class sizes
  d = np.asarray(metrics.class_distance_matrix(x, y, num_classes=3))
  for i in range(3):
    for j in range(3):
      a, b = x[y == i].astype(np.float64), x[y == j].astype(np.float64)
      brute = np.mean(np.sum((a[:, None] - b[None]) ** 2, -1))
      np.testing.assert_allclose(d[i, j], brute, rtol=1e-4)
