"""nc_jax.metrics against the float64 NumPy reference of SPEC.md, theorems and limits."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nc_jax import metrics
import reference


def make_case(name, seed=0):
  """(features float64 [N, p], labels [N], C) for the named situation."""
  rng = np.random.default_rng(seed)
  if name == "random":
    c, p, counts = 6, 10, [50] * 6
  elif name == "imbalanced":  # 100:1
    c, p, counts = 4, 8, [500, 5, 60, 20]
  elif name == "p_lt_k":
    c, p, counts = 12, 5, [30] * 12
  elif name == "k2":
    c, p, counts = 2, 7, [40, 25]
  elif name == "absent_class":
    c, p, counts = 6, 9, [30, 30, 0, 30, 40, 30]
  elif name in ("rank_deficient", "duplicates", "large_offset"):
    c, p, counts = 5, 10, [40] * 5
  else:
    raise KeyError(name)
  y = np.repeat(np.arange(c), counts)
  rng.shuffle(y)
  mu = rng.normal(size=(c, p)) * 2.0
  h = mu[y] + rng.normal(size=(len(y), p)) * rng.uniform(0.5, 1.5, size=p)
  if name == "rank_deficient":
    h = h[:, :3] @ rng.normal(size=(3, p))
  if name == "duplicates":
    h = np.concatenate([h, h[:50]])
    y = np.concatenate([y, y[:50]])
  if name == "large_offset":
    h = h + 1e3
  return h, y, c


CASES = ["random", "imbalanced", "p_lt_k", "k2", "absent_class", "rank_deficient",
         "duplicates", "large_offset"]


def _classifier(c, p, seed=1):
  rng = np.random.default_rng(seed)
  return rng.normal(size=(c, p)), rng.normal(size=c)


def _assert_report_close(got, ref, rtol, atol, key_atol=None):
  assert set(ref) <= set(got), set(ref) - set(got)
  for key in ref:
    np.testing.assert_allclose(float(got[key]), ref[key], rtol=rtol,
                               atol=max(atol, (key_atol or {}).get(key, 0.0)), err_msg=key)


def _float32_key_atol(ref, p):
  """Absolute float32 rounding of the keys that cancel, for `_assert_report_close`.

  within_vb_perp = Tr(Sigma_W) - within_vb is 0 when V_B covers Sigma_W's
  support (p_lt_k, rank_deficient): float32 leaves a difference of two
  traces of size Tr(Sigma_W), i.e. rounding at the library's float32 cut
  `default_rtol` = 10 p eps times Tr(Sigma_W) (3.5e-5 on p_lt_k, 4.6e-4 on
  rank_deficient). Measured: 1.9e-6 on p_lt_k with AVX or SSE4.2 kernels
  (--xla_cpu_max_isa), 0 with AVX-512 (clamped at 0); the former atol=1e-5
  was 5x that there, and only ~2 eps Tr(Sigma_W) on rank_deficient.
  """
  return {"within_vb_perp": metrics.default_rtol(np.float32, p)
                            * (ref["within_vb"] + ref["within_vb_perp"])}


@pytest.mark.parametrize("case", CASES)
def test_report_matches_reference_float64(case):
  h, y, c = make_case(case)
  w, b = _classifier(c, h.shape[1])
  ood = h[:20] + 3.0
  ref = reference.report(h, y, c, w, b, ood, rtol=1e-9)
  with jax.enable_x64(True):
    got = metrics.collapse_report(jnp.asarray(h), jnp.asarray(y), num_classes=c,
                                  classifier=(jnp.asarray(w), jnp.asarray(b)),
                                  ood_features=jnp.asarray(ood), rtol=1e-9)
    assert got["nc1"].dtype == jnp.float64
    _assert_report_close(got, ref, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("case", CASES)
def test_report_float32_close_to_float64(case):
  """float32 within 1e-4 relative of the float64 reference on well-conditioned data."""
  h, y, c = make_case(case)
  w, b = _classifier(c, h.shape[1])
  rtol = metrics.default_rtol(np.float32, h.shape[1])
  ref = reference.report(h, y, c, w, b, rtol=rtol)
  got = metrics.collapse_report(h.astype(np.float32), y, num_classes=c,
                                classifier=(w.astype(np.float32), b.astype(np.float32)))
  assert got["nc1"].dtype == jnp.float32
  tol = 1e-3 if case == "large_offset" else 1e-4
  # nc4 is a fraction of samples: a float32 tie could move one sample.
  ref.pop("nc4_ncc_mismatch")
  _assert_report_close(got, ref, rtol=tol, atol=1e-5, key_atol=_float32_key_atol(ref, h.shape[1]))


def test_report_keys_exact():
  h, y, c = make_case("random")
  assert set(metrics.collapse_report(h, y, num_classes=c)) == set(metrics.BASE_KEYS)
  got = metrics.collapse_report(h, y, num_classes=c, classifier=_classifier(c, 10),
                                ood_features=h[:5])
  assert set(got) == set(metrics.BASE_KEYS + metrics.CLASSIFIER_KEYS + metrics.OOD_KEYS)


def test_nc1_not_negative_with_rank_deficient_sigma_b_in_float32():
  """An unguarded float32 pinv of Sigma_B (rank K-1 << p) gives garbage NC1."""
  rng = np.random.default_rng(3)
  c, p = 3, 64
  y = np.repeat(np.arange(c), 100)
  h = (rng.normal(size=(c, p))[y] * 1e2 + rng.normal(size=(len(y), p)) * 1e-2).astype(np.float32)
  got = float(metrics.collapse_report(h, y, num_classes=c)["nc1"])
  ref = reference.report(h, y, c, rtol=metrics.default_rtol(np.float32, p))["nc1"]
  assert got >= 0
  np.testing.assert_allclose(got, ref, rtol=1e-3)


# ----------------------------------------------------------------------------
# Theorems and limits.
# ----------------------------------------------------------------------------


def test_linear_probe_mse_equals_least_squares_minimum():
  """000 Thm 5.1: the closed form equals the minimum of the class-balanced MSE probe."""
  h, y, c = make_case("imbalanced")
  n_k = np.bincount(y, minlength=c)
  wts = 1.0 / (c * n_k[y])  # class-balanced mean
  x = np.concatenate([h, np.ones((len(y), 1))], 1)
  t = np.eye(c)[y]
  sw = np.sqrt(wts)[:, None]
  beta = np.linalg.lstsq(x * sw, t * sw, rcond=None)[0]
  direct = 0.5 * np.sum(wts * np.sum((x @ beta - t) ** 2, 1))
  with jax.enable_x64(True):
    got = metrics.collapse_report(h, y, num_classes=c)["linear_probe_mse"]
  np.testing.assert_allclose(float(got), direct, rtol=1e-9)


def test_trace_bound_and_equality_under_collapse():
  """000 Thm 5.2: Tr(Sigma_T^+ Sigma_B) <= rank(Sigma_B), equality when collapsed."""
  h, y, c = make_case("random")
  m = metrics.class_moments(h.astype(np.float32), y, num_classes=c)
  t = float(metrics.trace_st_pinv_sb(m))
  assert 0 < t <= c - 1
  collapsed = np.asarray(m.means)[y]
  mc = metrics.class_moments(collapsed, y, num_classes=c)
  np.testing.assert_allclose(float(metrics.trace_st_pinv_sb(mc)), c - 1, rtol=1e-5)


def test_vci_invariant_to_invertible_linear_map_others_not():
  h, y, c = make_case("random")
  rng = np.random.default_rng(7)
  a = rng.normal(size=(h.shape[1], h.shape[1])) + 3 * np.eye(h.shape[1])
  with jax.enable_x64(True):
    r0 = metrics.collapse_report(h, y, num_classes=c)
    r1 = metrics.collapse_report(h @ a.T, y, num_classes=c)
  np.testing.assert_allclose(float(r1["vci"]), float(r0["vci"]), rtol=1e-9)
  np.testing.assert_allclose(float(r1["linear_probe_mse"]), float(r0["linear_probe_mse"]),
                             rtol=1e-9)
  for key in ("fuzziness", "squared_distance", "cosine_within"):
    assert abs(float(r1[key]) - float(r0[key])) > 1e-3 * abs(float(r0[key])), key


def test_fuzziness_counterexample_000_obs_4_2():
  """Sigma_B = diag(1, 0), Sigma_W = I: fuzziness 1; after U = [[1, 1], [0, 1]]: 2."""
  s = np.sqrt(2.0)
  within = np.array([[s, 0], [-s, 0], [0, s], [0, -s]])  # covariance I
  h = np.concatenate([within + [1, 0], within + [-1, 0]])
  y = np.repeat([0, 1], 4)
  u = np.array([[1.0, 1.0], [0.0, 1.0]])
  with jax.enable_x64(True):
    m0 = metrics.class_moments(h, y, num_classes=2)
    np.testing.assert_allclose(np.asarray(m0.sigma_w), np.eye(2), atol=1e-12)
    np.testing.assert_allclose(np.asarray(metrics.sigma_b(m0)), np.diag([1.0, 0.0]), atol=1e-12)
    f0 = float(metrics.fuzziness(m0))
    f1 = float(metrics.fuzziness(metrics.class_moments(h @ u.T, y, num_classes=2)))
  np.testing.assert_allclose([f0, f1], [1.0, 2.0], rtol=1e-12)


def simplex_etf(c, p, seed=0, scale=3.0):
  rng = np.random.default_rng(seed)
  q, _ = np.linalg.qr(rng.normal(size=(p, c)))
  return scale * np.sqrt(c / (c - 1)) * (q @ (np.eye(c) - 1.0 / c))  # p x C, columns


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_simplex_etf_limits(dtype):
  c, p = 5, 12
  m_cols = simplex_etf(c, p)
  y = np.repeat(np.arange(c), 7)
  h = m_cols.T[y] + 4.0  # a common offset must not matter
  w = m_cols.T  # W = M^T
  b = -w @ np.full(p, 4.0)  # the bias absorbs the offset
  with jax.enable_x64(dtype == np.float64):
    r = metrics.collapse_report(h.astype(dtype), y, num_classes=c,
                                classifier=(w.astype(dtype), b.astype(dtype)))
  atol = 1e-5 if dtype == np.float32 else 1e-10
  for key in ("nc1", "vci", "nc2_etf", "nc2_equinorm", "nc2_equiangular", "nc3_self_duality",
              "cdnv", "squared_distance", "within_vb", "within_vb_perp", "nc4_ncc_mismatch",
              "linear_probe_mse", "unc3_cos_var", "gnc2_log_var"):
    assert abs(float(r[key])) < atol, (key, float(r[key]))
  np.testing.assert_allclose(float(r["nc3_cos_mean"]), 1.0, atol=atol)
  # Unit vectors of a simplex ETF are sqrt(2 K/(K-1)) apart.
  np.testing.assert_allclose(float(r["gnc2_log_mean"]), -0.5 * np.log(2 * c / (c - 1)), atol=atol)


def test_cdnv_matrix_and_spectra():
  h, y, c = make_case("imbalanced")
  with jax.enable_x64(True):
    m = metrics.class_moments(h, y, num_classes=c)
    mat = np.asarray(metrics.cdnv_matrix(m))
    sb = np.asarray(metrics.sigma_b_spectrum(m))
    st = np.asarray(metrics.sigma_t_spectrum(m))
    sigma_t = np.asarray(metrics.sigma_t(m))
  mus = [h[y == k].mean(0) for k in range(c)]
  vs = [np.mean(np.sum((h[y == k] - mus[k]) ** 2, 1)) for k in range(c)]
  for k in range(c):
    for l in range(c):
      want = 0 if k == l else (vs[k] + vs[l]) / (2 * np.sum((mus[k] - mus[l]) ** 2))
      np.testing.assert_allclose(mat[k, l], want, rtol=1e-10, atol=1e-14)
  ref_st = np.sort(np.linalg.eigvalsh(sigma_t))[::-1]
  np.testing.assert_allclose(st, ref_st, rtol=1e-10, atol=1e-12)
  assert np.all(np.diff(sb) <= 1e-12) and sb.shape == (c,)
  assert np.all(sb[c - 1:] < 1e-10)  # rank K-1


def test_numerical_rank_is_one_for_rank_one_classes():
  rng = np.random.default_rng(0)
  c, p = 4, 6
  dirs = rng.normal(size=(c, p))
  y = np.repeat(np.arange(c), 20)
  h = dirs[y] * rng.uniform(0.5, 2.0, size=(len(y), 1))
  r = metrics.collapse_report(h.astype(np.float32), y, num_classes=c)
  np.testing.assert_allclose(float(r["numerical_rank"]), 1.0, rtol=1e-5)


def _program_rtol(h, y, c):
  """Relative float32 rounding scale of Sigma_B^+-based metrics: p eps kappa(Sigma_B).

  Two float32 programs computing the same metric (jit vs eager, checkify vs
  plain) can differ by rounding: XLA fuses and orders the sums per program
  and per CPU (SIMD width). Tr(Sigma_W Sigma_B^+) moves by kappa(Sigma_B)
  times the relative error of Sigma_B, ~p eps for p-term products of the
  float32 centred means; kappa over the min(p, K - 1) nonzero eigenvalues.
  """
  h = np.asarray(h, np.float64)
  means = np.stack([h[y == k].mean(0) for k in np.unique(y)])
  sv = np.linalg.svd(means - means.mean(0), compute_uv=False)[:min(h.shape[1], len(means) - 1)]
  return h.shape[1] * np.finfo(np.float32).eps * (sv[0] / sv[-1]) ** 2


def test_report_is_traceable_under_jit_and_vmap():
  h, y, c = make_case("random")
  h = h.astype(np.float32)
  want = metrics.collapse_report(h, y, num_classes=c)["nc1"]
  f = jax.jit(lambda x: metrics.collapse_report(x, y, num_classes=c)["nc1"])
  # Another program (y a constant inside the outer jit): 1.5e-5 here
  # (kappa(Sigma_B) = 12), 17x what this machine gives.
  np.testing.assert_allclose(float(f(h)), float(want), rtol=_program_rtol(h, y, c))
  stacked = jnp.stack([h, 2 * h])
  got = jax.vmap(lambda x: metrics.collapse_report(x, y, num_classes=c)["nc1"])(stacked)
  np.testing.assert_allclose(np.asarray(got), [want, want], rtol=1e-4)  # nc1 is scale-free


# ----------------------------------------------------------------------------
# Bad input.
# ----------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, match", [
    (dict(features=np.zeros((10,))), "2-D"),
    (dict(labels=np.zeros((10, 1), int)), "1-D"),
    (dict(labels=np.zeros(10, np.float32)), "integers"),
    (dict(labels=np.arange(9) % 3), "disagree on N"),
    (dict(labels=np.array([0, 1, 2, 3, 0, 1, 2, 3, 0, 7])), r"\[0, 4\)"),
    (dict(labels=np.array([0, 1, 2, 3, 0, 1, 2, 3, 0, -1])), r"\[0, 4\)"),
    (dict(features=np.where(np.eye(10, 3) > 0, np.nan, 1.0)), "NaN"),
    (dict(features=np.full((10, 3), np.inf)), "NaN or Inf"),
    (dict(labels=np.zeros(10, int)), "at least 2 classes"),
    (dict(classifier=(np.zeros((3, 4)), None)), "shape"),
    (dict(classifier=(np.zeros((4, 3)), np.zeros(3))), "b must have shape"),
    (dict(num_classes=1), "num_classes"),
    (dict(ood_features=np.zeros((5, 2))), "dimension 3"),
])
def test_bad_input_raises_named_error(kwargs, match):
  args = dict(features=np.random.default_rng(0).normal(size=(10, 3)),
              labels=np.arange(10) % 4, num_classes=4)
  args.update(kwargs)
  with pytest.raises(ValueError, match=match):
    metrics.collapse_report(args.pop("features"), args.pop("labels"), **args)


def test_checked_wrapper_raises_inside_jit():
  report = metrics.checked(metrics.collapse_report)
  h = np.random.default_rng(0).normal(size=(10, 3)).astype(np.float32)
  y = np.arange(10) % 4
  # checkify's program is not the plain one: equal up to rounding, 3.2e-5
  # here (kappa(Sigma_B) = 91; nc1 moves by ~60 eps = 7e-6 for eps-relative
  # input noise alone, so the former rtol=1e-6 held only while XLA happened
  # to compile both alike). A wrong argument (rank, num_classes) moves these by O(1).
  rtol = _program_rtol(h, y, 4)
  np.testing.assert_allclose(float(report(h, y, num_classes=4)["nc1"]),
                             float(metrics.collapse_report(h, y, num_classes=4)["nc1"]),
                             rtol=rtol)
  np.testing.assert_allclose(float(report(h, y, num_classes=4, rank=2)["vci"]),
                             float(metrics.collapse_report(h, y, num_classes=4, rank=2)["vci"]),
                             rtol=rtol)
  h[3, 1] = np.nan
  with pytest.raises(ValueError, match="NaN"):
    report(h, y, num_classes=4)
  with pytest.raises(ValueError, match="fewer than 2 classes"):
    report(np.ones((4, 3), np.float32), np.zeros(4, np.int32), num_classes=4)


# Each public building block against the reference: the report calls them, so
# a wrong block (e.g. r_B = K instead of min(p, K - 1) in vci) fails here and in
# the report tests. p_lt_k has min(p, K - 1) = 5 != K - 1 = 11.
_RANKED = ("nc1", "fuzziness", "vci", "within_vb", "within_vb_perp")
_PLAIN = ("linear_probe_mse", "squared_distance", "cosine_within", "cosine_total",
          "class_separation", "cdnv", "nc2_etf", "nc2_equinorm", "nc2_equiangular")


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("rank", [None, 2])
def test_every_building_block_matches_reference(case, rank):
  h, y, c = make_case(case)
  w, _ = _classifier(c, h.shape[1])
  ood = h[:20] + 3.0
  ref = reference.report(h, y, c, w, None, ood, rank=rank, rtol=1e-9)
  with jax.enable_x64(True):
    m = metrics.class_moments(jnp.asarray(h), jnp.asarray(y), num_classes=c)
    got = {k: getattr(metrics, k)(m, rank=rank, rtol=1e-9) for k in _RANKED}
    got["linear_probe_mse"] = metrics.linear_probe_mse(m, rtol=1e-9)
    got.update({k: getattr(metrics, k)(m) for k in _PLAIN[1:]})
    got["gnc2_log_mean"], got["gnc2_log_var"] = metrics.gnc2(m)
    got["nc3_self_duality"] = metrics.nc3_self_duality(m, jnp.asarray(w))
    got["nc3_cos_mean"], got["unc3_cos_var"] = metrics.nc3_uniform_duality(m, jnp.asarray(w))
    got["nc5_ood_orthogonality"] = metrics.nc5_ood_orthogonality(
        m, jnp.asarray(ood).mean(0))
    for key, value in got.items():
      np.testing.assert_allclose(float(value), ref[key], rtol=1e-8, atol=1e-10,
                                 err_msg=f"{case} rank={rank} {key}")
    if rank is not None:  # The report passes rank= through to the blocks.
      rep = metrics.collapse_report(jnp.asarray(h), jnp.asarray(y), num_classes=c,
                                    rank=rank, rtol=1e-9)
      for key in _RANKED:
        np.testing.assert_allclose(float(rep[key]), ref[key], rtol=1e-8, atol=1e-10,
                                   err_msg=f"report {case} rank={rank} {key}")


@pytest.mark.parametrize("case", ["imbalanced", "large_offset", "absent_class"])
def test_report_in_small_chunks_matches_reference(monkeypatch, case):
  # The class sums and the NC4 pass run in chunks of tiles / rows on large inputs;
  # shrink the chunks so that the loops, and their remainders, run here.
  from nc_jax.metrics import core, report, stats
  monkeypatch.setattr(stats, "_SUM_BLOCK_ELEMS", 3 * 4 * 10)  # 3 tiles of sums (p = 8..10)
  monkeypatch.setattr(core, "_NCC_CHUNK_ELEMS", 2 * 7 * 6)  # 7 rows of scores (C = 4..6)
  h, y, c = make_case(case)
  w, b = _classifier(c, h.shape[1])
  rtol = metrics.default_rtol(np.float32, h.shape[1])
  ref = reference.report(h, y, c, W=w, b=b, rtol=rtol)
  # A fresh jit (not the cached report) so the patched sizes are traced.
  fn = jax.jit(lambda f, l, w, b: report._report(f, l, (w, b), None, num_classes=c,
                                                 rank=None, rtol=None))
  got = fn(jnp.asarray(h, jnp.float32), jnp.asarray(y, jnp.int32), jnp.asarray(w, jnp.float32),
           jnp.asarray(b, jnp.float32))
  tol = 1e-3 if case == "large_offset" else 1e-4
  ref_nc4 = ref.pop("nc4_ncc_mismatch")
  _assert_report_close(got, ref, rtol=tol, atol=1e-5, key_atol=_float32_key_atol(ref, h.shape[1]))
  np.testing.assert_allclose(float(got["nc4_ncc_mismatch"]), ref_nc4, atol=1.5 / len(y))
