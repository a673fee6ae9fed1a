"""nc_jax.sims: the UFM reaches the ETF limits, Prop. 4.1, sweeps, the mixture generator.

Compile time dominates these tests on CPU: problems are tiny and share specs
(jit caches by spec value) wherever possible.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nc_jax import metrics
from nc_jax.sims import gaussian_mixture as gm
from nc_jax.sims import engine
from nc_jax.sims import ufm

# K = 4 classes x 5 samples in p = 8: strong weight decay converges in 1,000
# GD steps to the simplex ETF to ~1e-6.
ETF_HP = ufm.UFMHparams(learning_rate=0.5, lambda_w=1e-2, lambda_h=1e-2)


def _etf_spec(loss, **kwargs):
  return ufm.UFMSpec.balanced(num_classes=4, samples_per_class=5, dim=8, loss=loss,
                              num_steps=1000, log_every=500, **kwargs)


@pytest.fixture(scope="module", params=["ce", "mse"])
def trained(request):
  spec = _etf_spec(request.param)
  return spec, engine.simulate(ETF_HP, 0, spec=spec)


def test_ufm_reaches_etf_limits(trained):
  spec, result = trained
  final = {k: float(v[-1]) for k, v in result.history.items()}
  initial = {k: float(v[0]) for k, v in result.history.items()}
  # nc2_* are first-order in the distance to the ETF, the others second-order.
  for key in ("nc1", "nc3_self_duality", "vci", "within_vb_perp", "nc4_ncc_mismatch"):
    assert abs(final[key]) < 1e-4, (spec.loss, key, final[key])
  for key in ("nc2_etf", "nc2_equinorm", "nc2_equiangular"):
    assert abs(final[key]) < 1e-3, (spec.loss, key, final[key])
  assert initial["nc1"] > 0.5 and initial["vci"] > 0.2  # random init: far from collapse
  assert final["accuracy"] == 1.0
  # Direct check of the geometry: centred class means form a simplex ETF and
  # the classifier rows are proportional to them (self-duality).
  h, w = np.asarray(result.params.h, np.float64), np.asarray(result.params.w, np.float64)
  mu = np.stack([h[spec.labels == k].mean(0) for k in range(spec.num_classes)])
  m = mu - mu.mean(0)
  cos = (m @ m.T) / np.outer(np.linalg.norm(m, axis=1), np.linalg.norm(m, axis=1))
  k = spec.num_classes
  np.testing.assert_allclose(cos, np.where(np.eye(k) > 0, 1.0, -1.0 / (k - 1)), atol=1e-3)
  np.testing.assert_allclose(w / np.linalg.norm(w), m / np.linalg.norm(m), atol=1e-3)


def test_history_matches_report_on_final_params(trained):
  spec, result = trained
  report = metrics.collapse_report(result.params.h, spec.labels, num_classes=spec.num_classes,
                                   classifier=(result.params.w, result.params.b))
  for key, value in report.items():
    np.testing.assert_allclose(result.history[key][-1], value, rtol=1e-5, atol=1e-6,
                               err_msg=key)
  assert result.history["nc1"].shape == (len(spec.steps),) == (3,)


def _perturbed_loss_rounding_bound(params, hp, scales, *, spec, rows=None):
  """Bound on |data_loss(s) - data_loss(0)| in `ufm.perturbed_records` from float32 rounding. [L].

  In exact arithmetic W v = 0, so the loss does not move (Prop. 4.1). In
  float32, perturbed row i (``rows``, default one per class) gets logits
  z'_i = fl(W fl(h_i + s v) + b), off by
  delta_i = eps ||W||_F ((p/2 + 2)(s + 2 ||h_i||) + p s): rounding of s v and
  of h_i + s v (2 eps), p-term dot products (p/2 eps worst case), on both the
  perturbed and the unperturbed evaluation (hence 2 ||h_i||), and W v = 0 only
  to the backward error ~p eps ||W|| of the float32 SVD behind v. The
  per-sample loss l has gradient g_i = dl/dz (z - t for MSE, softmax - t for
  CE) and Hessian <= I, so it moves by <= ||g_i|| delta_i + delta_i^2 / 2;
  evaluating l_i rounds by (K + 2) eps (l_i + ||z_i||_inf) on each side, and
  the mean over N rows by (N + 1) eps data. Other rows are bit-identical on
  both sides (same program, same inputs); for two different programs on the
  same inputs pass all rows and s = 0. A worst case: the observed change is
  180x (MSE) / 380x (CE) below it at s = 100, yet a perturbation leaking
  1e-4 (MSE) / 3e-4 (CE) of its length into row(W) already exceeds it
  (a random direction: by 2e6 - 2e8x).
  """
  eps = float(np.finfo(np.float32).eps)
  w, b, h = (np.asarray(x, np.float64) for x in (params.w, params.b, params.h))
  t = np.asarray(ufm.targets(ufm._as_arrays(hp), spec=spec), np.float64)
  z = h @ w.T + b
  if spec.loss == "ce":
    lse = z.max(1) + np.log(np.exp(z - z.max(1, keepdims=True)).sum(1))
    per_sample = lse - (t * z).sum(1)
    g = np.exp(z - lse[:, None]) - t
  else:
    per_sample = 0.5 * ((z - t) ** 2).sum(1)
    g = z - t
  n, p = h.shape
  k = spec.num_classes
  rows = np.asarray(spec.first_of_class if rows is None else rows)
  s = np.asarray(scales, np.float64)[:, None]
  h_norm = np.linalg.norm(h[rows], axis=1)
  delta = eps * np.linalg.norm(w) * ((p / 2 + 2) * (s + 2 * h_norm) + p * s)  # [L, rows]
  evaluation = 2 * (k + 2) * eps * (per_sample[rows] + np.abs(z[rows]).max(1))
  change = np.linalg.norm(g[rows], axis=1) * delta + delta ** 2 / 2 + evaluation
  return change.sum(1) / n + (n + 1) * eps * per_sample.mean()


def test_null_space_perturbation_keeps_loss_raises_within_vb_perp(trained):
  spec, result = trained
  hp = ETF_HP._replace(lambda_h=0.0)  # Prop. 4.1: no feature decay in the objective
  scales = np.array([0.0, 1.0, 10.0, 100.0], np.float32)
  rec = {k: np.asarray(v) for k, v in
         ufm.perturbed_records(result.params, hp, scales, spec=spec).items()}
  base = float(ufm.objective(result.params, ufm._as_arrays(hp), spec=spec)[0])
  # W h' = W h up to float32 rounding: the data loss moves by at most `bound`;
  # the regulariser (W and b only: lambda_h = 0) does not move, so the
  # objective moves by that plus the rounding of data + regulariser (2 eps base).
  eps = np.finfo(np.float32).eps
  bound = _perturbed_loss_rounding_bound(result.params, hp, scales, spec=spec)
  data_change = np.abs(rec["data_loss"] - rec["data_loss"][0])
  assert np.all(data_change <= bound), (data_change, bound)
  loss_change = np.abs(rec["loss"] - rec["loss"][0])
  assert np.all(loss_change <= bound + 2 * eps * base), (loss_change, bound)
  # s = 0 is the objective itself, evaluated by another program (every row rounds).
  same = _perturbed_loss_rounding_bound(result.params, hp, [0.0], spec=spec,
                                        rows=np.arange(spec.num_samples))[0]
  assert abs(rec["loss"][0] - base) <= same + 2 * eps * base, (rec["loss"][0], base, same)
  np.testing.assert_allclose(rec["sigma_b_trace"], rec["sigma_b_trace"][0], rtol=1e-4)
  perp = rec["within_vb_perp"]
  assert np.all(np.diff(perp) > 0), perp
  # Tr(Sigma_W) grows like lambda^2 (n - 1) / n^2 (App. A.1).
  n = spec.class_sizes[0]
  np.testing.assert_allclose(perp[-1], scales[-1] ** 2 * (n - 1) / n ** 2, rtol=0.02)
  assert float(rec["within_vb"][-1]) < 1e-3


def test_project_null_space_rank_deficient_w():
  rng = np.random.default_rng(0)
  w = rng.normal(size=(4, 9)).astype(np.float32)
  w[3] = -w[:3].sum(0)  # rows summing to zero, as at collapse: rank K - 1
  x = rng.normal(size=(6, 9)).astype(np.float32)
  px = np.asarray(ufm.project_null_space(jnp.asarray(w), jnp.asarray(x)))
  assert np.isfinite(px).all()
  np.testing.assert_allclose(px @ w.T, 0, atol=1e-5)
  q = np.linalg.svd(w)[2][3:]  # orthonormal basis of null(W), 6 = 9 - 3 rows
  np.testing.assert_allclose(px, x @ q.T @ q, atol=1e-5)


def test_vmapped_sweep_equals_one_by_one():
  spec = _etf_spec("ce")
  hp = engine.broadcast_grid(ETF_HP._replace(lambda_w=np.array([1e-3, 1e-2], np.float32),
                                          lambda_h=np.array([1e-3, 1e-2], np.float32),
                                          learning_rate=np.array([0.2, 0.5], np.float32)))
  seeds = [0, 3]
  # chunk_size 3 over 4 configurations: one full chunk and one padded chunk.
  swept = engine.sweep(hp, seeds, spec=spec, chunk_size=3)
  assert swept.history["nc1"].shape == (2, 2, len(spec.steps))
  for s, seed in enumerate(seeds):
    for g in range(2):
      one = engine.simulate(jax.tree.map(lambda x: x[g], hp), seed, spec=spec)
      for key in ("loss", "nc1", "nc2_etf", "vci", "within_vb_perp", "h_norm"):
        np.testing.assert_allclose(swept.history[key][s, g], one.history[key], rtol=1e-4,
                                   atol=1e-6, err_msg=f"{key} seed={seed} g={g}")
      np.testing.assert_allclose(swept.params.h[s, g], one.params.h, rtol=1e-4, atol=1e-5)


def test_imbalanced_p_less_than_k_no_bias_adam_label_smoothing():
  spec = ufm.UFMSpec(class_sizes=(8, 8, 8, 2, 2, 2), dim=3, loss="ce", bias=False,
                     optimizer="adam", num_steps=300, log_every=300)
  hp = ufm.UFMHparams(learning_rate=0.05, lambda_w=1e-3, lambda_h=1e-3, label_smoothing=0.1)
  result = engine.simulate(hp, 1, spec=spec)
  for key, value in result.history.items():
    assert np.isfinite(np.asarray(value)).all(), key
  np.testing.assert_array_equal(result.params.b, 0.0)
  assert float(result.history["loss"][-1]) < float(result.history["loss"][0])
  assert float(result.history["nc1"][-1]) < float(result.history["nc1"][0])


def test_spec_validation():
  with pytest.raises(ValueError, match="multiple"):
    ufm.UFMSpec(class_sizes=(3, 3), dim=4, num_steps=10, log_every=3)
  with pytest.raises(ValueError, match="loss"):
    ufm.UFMSpec(class_sizes=(3, 3), dim=4, loss="hinge")
  with pytest.raises(ValueError, match="dim > K"):
    ufm.UFMSpec(class_sizes=(3, 3, 3), dim=3, null_space_noise=True)
  with pytest.raises(ValueError, match="shape"):
    engine.broadcast_grid(ufm.UFMHparams(lambda_w=np.ones(2), lambda_h=np.ones(3)))


def test_grid_is_cartesian_last_name_fastest():
  g = engine.grid(a=[1, 2], b=[10, 20, 30])
  np.testing.assert_array_equal(g["a"], [1, 1, 1, 2, 2, 2])
  np.testing.assert_array_equal(g["b"], [10, 20, 30, 10, 20, 30])


# ----------------------------------------------------------------------------
# Gaussian mixture.
# ----------------------------------------------------------------------------


def test_mixture_generator_statistics():
  spec = gm.MixtureSpec(num_clusters=8, samples_per_cluster=2000, num_superclasses=4,
                        input_dim=64, hidden_dim=4, num_similar=2)
  hp = gm.MixtureHparams(sigma2=4.0, tau2=0.25)
  sample = jax.jit(gm.sample_mixture, static_argnames="spec")
  data = jax.tree.map(np.asarray, sample(hp, engine.prng_key(0), spec=spec))
  x, fine, coarse, mu = data
  assert x.shape == (16000, 64)
  np.testing.assert_array_equal(coarse, fine % 4)
  np.testing.assert_array_equal(np.bincount(fine), [2000] * 8)
  # x | c ~ N(mu_c, I): sample means within 4 standard errors, unit covariance.
  centred = x - mu[fine]
  assert np.abs(centred.reshape(8, 2000, 64).mean(1)).max() < 4 / np.sqrt(2000)
  cov = centred.T @ centred / len(x)
  np.testing.assert_allclose(np.diag(cov), 1.0, atol=0.06)
  assert np.abs(cov - np.diag(np.diag(cov))).max() < 0.06
  # Dissimilar clusters (super-classes 2, 3): mu_c ~ N(0, sigma^2 I) independently.
  dis = mu[spec.dissimilar_clusters]
  np.testing.assert_allclose(dis.var(), 4.0, rtol=0.15)
  assert abs(dis.mean()) < 4 * np.sqrt(4.0 / dis.size)
  # Similar pairs (c, c + 4) in super-classes 0, 1: difference ~ N(0, 2 tau^2 I),
  # shared mean ~ N(0, sigma^2 I).
  sim = spec.similar_clusters
  np.testing.assert_array_equal(sim, [0, 1, 4, 5])
  diff = mu[[0, 1]] - mu[[4, 5]]
  np.testing.assert_allclose(diff.var(), 2 * 0.25, rtol=0.25)
  np.testing.assert_allclose(((mu[[0, 1]] + mu[[4, 5]]) / 2).var(), 4.0 + 0.25 / 2, rtol=0.25)


def test_mixture_sweep_equals_one_by_one_and_msdr_grows_with_sigma2():
  spec = gm.MixtureSpec(num_clusters=4, samples_per_cluster=20, num_superclasses=2,
                        input_dim=8, hidden_dim=16, num_similar=1, num_steps=100,
                        log_every=50)
  hp = engine.broadcast_grid(gm.MixtureHparams(
      sigma2=np.array([0.1, 16.0], np.float32), tau2=1.0, learning_rate=0.05,
      weight_decay=np.array([0.0, 1e-3], np.float32)))
  swept = engine.sweep(hp, [0, 1], spec=spec, chunk_size=4).history
  assert swept["class_distance"].shape == (2, 2, 3, 4, 4)
  for g in range(2):
    one = engine.simulate(jax.tree.map(lambda x: x[g], hp), 1, spec=spec).history
    for key in ("msdr", "msdr_similar", "msdr_dissimilar", "nc1", "train_accuracy", "loss"):
      np.testing.assert_allclose(swept[key][1, g], one[key], rtol=1e-4, atol=1e-6,
                                 err_msg=f"{key} g={g}")
  # Class distance D_ij = V_i + V_j + ||mu_i - mu_j||^2, MSDR from it.
  d = swept["class_distance"][0, 1, -1]
  np.testing.assert_allclose(d, d.T, rtol=1e-5)
  np.testing.assert_allclose(float(swept["msdr"][0, 1, -1]),
                             float(metrics.msdr(d, spec.superclass)), rtol=1e-5)
  assert (swept["msdr"][:, 1, -1] > swept["msdr"][:, 0, -1]).all()
  assert (swept["msdr"][:, 1, -1] > 1.5).all()
  assert (swept["train_accuracy"][:, 1, -1] == 1.0).all()


def test_mixture_initialisations_have_their_stated_laws():
  """torch_uniform: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), variance 1/(3 fan_in), biases
  too; he_normal: N(0, 2/fan_in) weights, zero biases (six times the variance)."""
  base = dict(num_clusters=4, samples_per_cluster=10, num_superclasses=2, input_dim=400,
              hidden_dim=300)
  u = gm.init_mlp(engine.prng_key(0), spec=gm.MixtureSpec(**base))
  h = gm.init_mlp(engine.prng_key(0), spec=gm.MixtureSpec(**base, init="he_normal"))
  w1u, w1h = np.asarray(u["w1"]), np.asarray(h["w1"])
  assert np.abs(w1u).max() <= 1 / np.sqrt(400) and np.abs(np.asarray(u["b1"])).max() > 0
  np.testing.assert_allclose(w1u.var(), 1 / (3 * 400), rtol=0.02)
  np.testing.assert_allclose(w1h.var(), 2 / 400, rtol=0.02)
  np.testing.assert_allclose(np.asarray(h["w2"]).var(), 2 / 300, rtol=0.3)
  assert not np.asarray(h["b1"]).any() and not np.asarray(h["b2"]).any()
  assert abs(w1h.mean()) < 4 * np.sqrt(2 / 400 / w1h.size)
  with pytest.raises(ValueError, match="init='xavier'"):
    gm.MixtureSpec(**base, init="xavier")


def test_mixture_records_the_inputs_own_msdr():
  """msdr_input: the MSDR of x itself (float64 NumPy from the same samples), about
  1 + sigma^2 (dissimilar) and 1 + tau^2 (similar sub-classes); unchanged by training."""
  spec = gm.MixtureSpec(num_clusters=8, samples_per_cluster=200, num_superclasses=4,
                        input_dim=64, hidden_dim=8, num_similar=2, num_steps=20,
                        log_every=10)
  hp = gm.MixtureHparams(sigma2=3.0, tau2=0.5, learning_rate=0.05)
  hist = engine.simulate(hp, 0, spec=spec).history
  data = jax.tree.map(np.asarray, gm.sample_mixture(
      hp, jax.random.split(engine.prng_key(0))[0], spec=spec))
  x, fine = np.asarray(data.x, np.float64), data.fine
  mu = np.stack([x[fine == c].mean(0) for c in range(8)])
  v = np.array([((x[fine == c] - mu[c]) ** 2).sum(1).mean() for c in range(8)])
  d = v[:, None] + v[None] + ((mu[:, None] - mu[None]) ** 2).sum(-1)

  def msdr(idx):
    same = [(i, j) for i in idx for j in idx if i != j and i % 4 == j % 4]
    return np.mean([d[i, j] for i, j in same]) / np.mean([d[i, i] for i in idx])

  np.testing.assert_allclose(hist["msdr_input"], msdr(range(8)), rtol=1e-4)
  np.testing.assert_allclose(hist["msdr_input_similar"], msdr(spec.similar_clusters), rtol=1e-4)
  np.testing.assert_allclose(hist["msdr_input_dissimilar"], msdr(spec.dissimilar_clusters),
                             rtol=1e-4)
  assert abs(float(hist["msdr_input_dissimilar"][0]) - 4.0) < 1.0  # 1 + sigma^2
  assert abs(float(hist["msdr_input_similar"][0]) - 1.5) < 0.3  # 1 + tau^2
  assert float(hist["msdr"][-1]) != float(hist["msdr_input"][-1])  # The hidden layer's own.
