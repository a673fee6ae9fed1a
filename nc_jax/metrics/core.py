"""The collapse metrics of SPEC.md as functions of `ClassMoments`.

Each function takes the class statistics (from `class_moments` in memory or
`moments_from_stats` after streaming) and is traceable: classes with no
samples are masked out, so K (the number of classes present) may be a traced
value and every function works under ``jit``/``vmap``/``lax.scan``.

Nothing here builds an N x N, K x K x p or N x K array: pairwise quantities
come from the Gram of the centred class means and the per-class variances.
Up to `PAIR_BLOCK_ELEMS` pairs that Gram is one C x C array; beyond (tens of
thousands of classes: a language model's vocabulary) the pairwise metrics
(`cdnv`, `nc2_etf`, `nc2_equiangular`, `gnc2`) reduce it tile by tile, row
blocks of classes against all classes, so that memory stays O(T C + C p)
for T rows per block (``pair_rows``; `pair_tile_rows` picks T). Both paths
compute the same entries and agree to rounding; `pairwise` gives all four
in two sweeps of the blocks (the report's path).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from nc_jax.metrics import linalg
from nc_jax.metrics.planning import PAIR_BLOCK_ELEMS, pair_tile_rows  # noqa: F401  (re-exported)
from nc_jax.metrics.stats import ClassMoments


def _k(m: ClassMoments) -> jax.Array:
  return jnp.sum(m.present).astype(m.means.dtype)


def global_mean(m: ClassMoments) -> jax.Array:
  """mu_G = (1/K) sum_k mu_k over classes present (SPEC.md Notation). [p]."""
  return jnp.sum(jnp.where(m.present[:, None], m.means, 0), 0) / _k(m)


def centred_means(m: ClassMoments) -> jax.Array:
  """Rows mu_k - mu_G (zero for absent classes); M^T of SPEC.md. [C, p]."""
  return jnp.where(m.present[:, None], m.means - global_mean(m), 0)


def sigma_b(m: ClassMoments) -> jax.Array:
  """Sigma_B = (1/K) M M^T (SPEC.md Notation). [p, p]."""
  mc = centred_means(m)
  return mc.T @ mc / _k(m)


def sigma_t(m: ClassMoments) -> jax.Array:
  """Sigma_T = Sigma_W + Sigma_B (SPEC.md Notation). [p, p]."""
  return m.sigma_w + sigma_b(m)


def default_rank(m: ClassMoments) -> jax.Array:
  """r_B = min(p, K - 1) (SPEC.md Notation)."""
  return jnp.minimum(m.means.shape[1], jnp.sum(m.present) - 1)


def _rtol(m: ClassMoments, rtol):
  return linalg.default_rtol(m.means.dtype, m.means.shape[1]) if rtol is None else rtol


def sigma_b_eig(m: ClassMoments, *, rank=None, rtol=None):
  """Eigenpairs of Sigma_B kept by its pseudo-inverse (SPEC.md, A^+).

  Computed from the C x C Gram of the centred means when C < p (cheaper and as
  accurate: the nonzero spectra coincide), else from Sigma_B itself.

  Returns:
    (eigvals [d] descending, eigvecs [p, d], keep [d] bool), d = min(C, p).
  """
  mc = centred_means(m)
  k = _k(m)
  c, p = mc.shape
  rank = default_rank(m) if rank is None else rank
  if c < p:
    lam, v = linalg.eigh_desc(mc @ mc.T / k)
    keep = linalg.keep_mask(lam, rtol=_rtol(m, rtol), rank=rank)
    # u_j = M v_j / ||M v_j||, ||M v_j||^2 = K lam_j.
    u = mc.T @ v
    u = u * linalg.safe_inverse(jnp.sqrt(jnp.maximum(lam * k, 0)), keep)
  else:
    lam, u = linalg.eigh_desc(mc.T @ mc / k)
    keep = linalg.keep_mask(lam, rtol=_rtol(m, rtol), rank=rank)
  return lam, u, keep


def sigma_b_spectrum(m: ClassMoments) -> jax.Array:
  """Eigenvalues of Sigma_B, descending, [min(C, p)] (000 Fig 2; SPEC.md)."""
  mc = centred_means(m)
  c, p = mc.shape
  gram = mc @ mc.T if c < p else mc.T @ mc
  return linalg.eigh_desc(gram / _k(m))[0]


def sigma_t_spectrum(m: ClassMoments) -> jax.Array:
  """Eigenvalues of Sigma_T, descending, [p] (000 Fig 2; SPEC.md)."""
  return linalg.eigh_desc(sigma_t(m))[0]


def _within_on_b(m: ClassMoments, rank, rtol):
  """(sum_j u_j^T Sigma_W u_j / lam_j, sum_j u_j^T Sigma_W u_j) over kept j."""
  lam, u, keep = sigma_b_eig(m, rank=rank, rtol=rtol)
  proj = jnp.sum(u * (m.sigma_w @ u), axis=0)  # u_j^T Sigma_W u_j
  proj = jnp.where(keep, proj, 0)
  return jnp.sum(proj * linalg.safe_inverse(lam, keep)), jnp.sum(proj)


def fuzziness(m: ClassMoments, *, rank=None, rtol=None) -> jax.Array:
  """Fuzziness Tr(Sigma_B^+ Sigma_W) = K * nc1 (SPEC.md `fuzziness`; 000 sec 3.2).

  Returns:
    Scalar >= 0; 0 under full collapse (Sigma_W = 0).
  """
  return _within_on_b(m, rank, rtol)[0]


def nc1(m: ClassMoments, *, rank=None, rtol=None) -> jax.Array:
  """NC1 = (1/K) Tr(Sigma_W Sigma_B^+) (SPEC.md `nc1`; Papyan 2020, 001 eq 4).

  Args:
    m: class statistics.
    rank: r_B, number of Sigma_B eigenvalues kept; default min(p, K - 1).
    rtol: relative eigenvalue cut; default `linalg.default_rtol`.

  Returns:
    Scalar >= 0; 0 under full collapse.
  """
  return fuzziness(m, rank=rank, rtol=rtol) / _k(m)


def within_vb(m: ClassMoments, *, rank=None, rtol=None) -> jax.Array:
  """Tr(P_B Sigma_W), within-class variation inside span(M) (SPEC.md; 000 sec 4.1)."""
  return _within_on_b(m, rank, rtol)[1]


def within_vb_perp(m: ClassMoments, *, rank=None, rtol=None) -> jax.Array:
  """Tr((I - P_B) Sigma_W), within-class variation orthogonal to span(M) (SPEC.md; 000 sec 4.1)."""
  # A PSD trace: a negative difference is rounding (P_B covering Sigma_W's support).
  return jnp.maximum(jnp.trace(m.sigma_w) - within_vb(m, rank=rank, rtol=rtol), 0)


def trace_st_pinv_sb(m: ClassMoments, *, rtol=None) -> jax.Array:
  """Tr(Sigma_T^+ Sigma_B) = (1/K) ||Lambda^{-1/2} Q^T M||_F^2 (000 Thm 5.1).

  At most rank(Sigma_B) (000 Thm 5.2), with equality under full collapse.
  """
  tau, q = linalg.eigh_desc(sigma_t(m))
  keep = linalg.keep_mask(tau, rtol=_rtol(m, rtol))
  proj = q.T @ centred_means(m).T  # [p, C]
  return jnp.sum(jnp.sum(proj * proj, axis=1) * linalg.safe_inverse(tau, keep)) / _k(m)


def vci(m: ClassMoments, *, rank=None, rtol=None) -> jax.Array:
  """Variability collapse index 1 - Tr(Sigma_T^+ Sigma_B) / r_B (SPEC.md `vci`; 000 Def 5.3).

  Invariant to invertible linear maps of the features.

  Returns:
    Scalar in [0, 1]; 0 under full collapse.
  """
  r = default_rank(m) if rank is None else rank
  return 1.0 - trace_st_pinv_sb(m, rtol=rtol) / r


def linear_probe_mse(m: ClassMoments, *, rtol=None) -> jax.Array:
  """Optimal class-balanced MSE linear-probe loss (SPEC.md `linear_probe_mse`; 000 Thm 5.1).

  min_{W, b} (1/2) mean ||W h + b - e_y||^2 = 1/2 - 1/(2K) - Tr(Sigma_T^+ Sigma_B)/(2K).

  Returns:
    Scalar; 1/2 - 1/(2K) - (K-1)/(2K) = 0 under full collapse.
  """
  k = _k(m)
  return 0.5 - 0.5 / k - trace_st_pinv_sb(m, rtol=rtol) / (2 * k)


def squared_distance(m: ClassMoments) -> jax.Array:
  """Tr(Sigma_W) / Tr(Sigma_B) (SPEC.md `squared_distance`; 000 eq 4, 002 TrainVariance)."""
  return jnp.trace(m.sigma_w) / jnp.trace(sigma_b(m))


def _cosine_parts(m: ClassMoments):
  """(within, between) with cosine_total = within + between.

  For unit vectors 1 - ||mean||^2 is the mean squared deviation from the
  mean, so both parts are sums of centred squares: no cancellation of
  1 - (almost 1) when the features are nearly parallel.
  """
  k = _k(m)
  within = jnp.sum(jnp.where(m.present, m.unit_variances, 0)) / k
  u_g = jnp.sum(jnp.where(m.present[:, None], m.unit_means, 0), 0) / k
  du = jnp.where(m.present[:, None], m.unit_means - u_g, 0)
  between = jnp.sum(du * du) / k
  return within, between


def cosine_within(m: ClassMoments) -> jax.Array:
  """1 - (1/K) sum_k ||(1/n_k) sum_i h_i/||h_i|| ||^2 (SPEC.md `cosine_within`; 000 sec 3.2).

  The mean within-class cosine distance (pairs i = j included); 0 under collapse.
  """
  return _cosine_parts(m)[0]


def cosine_total(m: ClassMoments) -> jax.Array:
  """1 - ||(1/K) sum_k (1/n_k) sum_i h_i/||h_i|| ||^2 (SPEC.md `cosine_total`; 000 sec 3.2)."""
  within, between = _cosine_parts(m)
  return within + between


def class_separation(m: ClassMoments) -> jax.Array:
  """1 - cosine_within / cosine_total (SPEC.md `class_separation`; 000 sec 3.2). 1 under collapse."""
  within, between = _cosine_parts(m)
  return between / (within + between)


def _rows_for(m: ClassMoments, pair_rows) -> int:
  return pair_tile_rows(m.means.shape[0]) if pair_rows is None else int(pair_rows)


def _reduce_row_blocks(m: ClassMoments, rows: int, fn, init):
  """Sum over row blocks of ``rows`` classes of ``fn(block)`` (a pytree like
  ``init``); the classes are padded to whole blocks with absent ones.

  ``block`` has ``gram`` [T, C] (centred means of the rows against all
  classes), ``rows_present`` [T], ``diag`` [T, C] (True where row class ==
  column class), ``pairs`` [T, C] (k != l, both present) and ``index`` [T].
  """
  mc = centred_means(m)
  c = mc.shape[0]
  blocks = -(-c // rows)
  pad = blocks * rows - c
  mc_pad = jnp.pad(mc, ((0, pad), (0, 0)))
  present_pad = jnp.pad(m.present, (0, pad))
  cols = jnp.arange(c)

  def body(b, acc):
    start = b * rows
    index = start + jnp.arange(rows)
    rows_present = jax.lax.dynamic_slice_in_dim(present_pad, start, rows)
    diag = index[:, None] == cols[None, :]
    block = dict(gram=jax.lax.dynamic_slice_in_dim(mc_pad, start, rows) @ mc.T,
                 rows_present=rows_present, diag=diag, index=index,
                 pairs=rows_present[:, None] & m.present[None, :] & ~diag)
    return jax.tree.map(jnp.add, acc, fn(block))

  return jax.lax.fori_loop(0, blocks, body, init)


def _row_values(x: jax.Array, index: jax.Array) -> jax.Array:
  """``x[index]`` for a padded block (0 past the end)."""
  return jnp.pad(x, (0, index.shape[0]))[index]


def _pair_count(m: ClassMoments) -> jax.Array:
  k = _k(m)
  return k * (k - 1)


def _pair_mask(m: ClassMoments) -> jax.Array:
  c = m.present.shape[0]
  return m.present[:, None] & m.present[None, :] & ~jnp.eye(c, dtype=bool)


def _mean_over(x, mask):
  return jnp.sum(jnp.where(mask, x, 0)) / jnp.sum(mask)


def mean_sq_distances(m: ClassMoments) -> jax.Array:
  """||mu_k - mu_l||^2 for all pairs, from the Gram of the centred means. [C, C].

  Centring first keeps float32 accurate when the means share a large offset.
  """
  mc = centred_means(m)
  g = mc @ mc.T
  d = jnp.diag(g)
  return jnp.maximum(d[:, None] + d[None, :] - 2 * g, 0)


def cdnv_matrix(m: ClassMoments) -> jax.Array:
  """(V_k + V_l) / (2 ||mu_k - mu_l||^2) (SPEC.md `cdnv`; Galanti 2022, 003 eq 7).

  Returns:
    [C, C]; 0 on the diagonal, NaN in rows/columns of absent classes.
  """
  v = m.variances
  mat = (v[:, None] + v[None, :]) / (2 * mean_sq_distances(m))
  mat = jnp.where(jnp.eye(v.shape[0], dtype=bool), 0, mat)
  both = m.present[:, None] & m.present[None, :]
  return jnp.where(both, mat, jnp.nan)


def cdnv(m: ClassMoments, *, pair_rows: int | None = None) -> jax.Array:
  """Mean CDNV over pairs k != l of classes present (SPEC.md `cdnv`). 0 under collapse.

  ``pair_rows``: None picks the path (`pair_tile_rows`); 0 builds the C x C
  `cdnv_matrix`; T > 0 reduces row blocks of T classes (module docstring).
  """
  rows = _rows_for(m, pair_rows)
  if not rows:
    return _mean_over(cdnv_matrix(m), _pair_mask(m))
  mc = centred_means(m)
  sq, v = jnp.sum(mc * mc, 1), m.variances

  def fn(b):
    d_rows, v_rows = _row_values(sq, b['index']), _row_values(v, b['index'])
    dist = jnp.maximum(d_rows[:, None] + sq[None, :] - 2 * b['gram'], 0)
    ratio = (v_rows[:, None] + v[None, :]) / (2 * jnp.where(b['pairs'], dist, 1))
    return jnp.sum(jnp.where(b['pairs'], ratio, 0))

  return _reduce_row_blocks(m, rows, fn, jnp.zeros((), mc.dtype)) / _pair_count(m)


def nc2_etf(m: ClassMoments, *, pair_rows: int | None = None) -> jax.Array:
  """|| G/||G||_F - (I - 11^T/K)/sqrt(K-1) ||_F, G = M^T M (SPEC.md `nc2_etf`; 003 eq 8).

  ``pair_rows`` as in `cdnv`; tiled, ||G||_F comes from the p x p Gram
  M M^T when p < C (the same norm) or a first pass over the blocks.

  Returns:
    Scalar; 0 when the centred means form a simplex ETF.
  """
  mc = centred_means(m)
  k = _k(m)
  rows = _rows_for(m, pair_rows)
  if not rows:
    g = mc @ mc.T
    both = m.present[:, None] & m.present[None, :]
    eye = jnp.eye(g.shape[0], dtype=g.dtype)
    target = jnp.where(both, (eye - 1.0 / k) / jnp.sqrt(k - 1), 0)
    return jnp.linalg.norm(g / jnp.linalg.norm(g) - target)
  zero = jnp.zeros((), mc.dtype)
  c, p = mc.shape
  if p < c:
    norm = jnp.linalg.norm(mc.T @ mc)
  else:
    norm = jnp.sqrt(_reduce_row_blocks(m, rows, lambda b: jnp.sum(b['gram'] ** 2), zero))

  def fn(b):
    both = b['rows_present'][:, None] & m.present[None, :]
    target = jnp.where(both, (b['diag'] - 1.0 / k) / jnp.sqrt(k - 1), 0)
    return jnp.sum((b['gram'] / norm - target) ** 2)

  return jnp.sqrt(_reduce_row_blocks(m, rows, fn, zero))


def _inverse_norms(m: ClassMoments) -> jax.Array:
  r = jnp.linalg.norm(centred_means(m), axis=1)
  return linalg.safe_inverse(r, r > 0)


def _norms_and_cos(m: ClassMoments):
  mc = centred_means(m)
  r = jnp.linalg.norm(mc, axis=1)
  g = mc @ mc.T
  inv = linalg.safe_inverse(r, r > 0)
  return r, g * inv[:, None] * inv[None, :]


def nc2_equinorm(m: ClassMoments) -> jax.Array:
  """std_k ||mu_k - mu_G|| / mean_k ||mu_k - mu_G|| (SPEC.md `nc2_equinorm`; Papyan 2020)."""
  r = jnp.linalg.norm(centred_means(m), axis=1)
  k = _k(m)
  mean = jnp.sum(jnp.where(m.present, r, 0)) / k
  var = jnp.sum(jnp.where(m.present, (r - mean) ** 2, 0)) / k
  return jnp.sqrt(var) / mean


def nc2_equiangular(m: ClassMoments, *, pair_rows: int | None = None) -> jax.Array:
  """mean_{k != l} |cos(mu_k - mu_G, mu_l - mu_G) + 1/(K-1)| (SPEC.md `nc2_equiangular`).

  ``pair_rows`` as in `cdnv`.
  """
  rows = _rows_for(m, pair_rows)
  shift = 1.0 / (_k(m) - 1)
  if not rows:
    _, cos = _norms_and_cos(m)
    return _mean_over(jnp.abs(cos + shift), _pair_mask(m))
  inv = _inverse_norms(m)

  def fn(b):
    cos = b['gram'] * _row_values(inv, b['index'])[:, None] * inv[None, :]
    return jnp.sum(jnp.where(b['pairs'], jnp.abs(cos + shift), 0))

  return _reduce_row_blocks(m, rows, fn, jnp.zeros((), inv.dtype)) / _pair_count(m)


def gnc2(m: ClassMoments, *, pair_rows: int | None = None) -> tuple[jax.Array, jax.Array]:
  """Mean and variance over k != l of log(1/||m_k - m_l||) (SPEC.md `gnc2_*`; Liu et al. 2023).

  m_k are the unit centred means; ||m_k - m_l||^2 = 2 - 2 cos. ``pair_rows``
  as in `cdnv` (tiled: one pass for the mean, one for the variance about it).
  """
  rows = _rows_for(m, pair_rows)
  if not rows:
    _, cos = _norms_and_cos(m)
    mask = _pair_mask(m)
    logs = -0.5 * jnp.log(jnp.where(mask, jnp.maximum(2 - 2 * cos, 0), 1.0))
    mean = _mean_over(logs, mask)
    var = _mean_over((logs - mean) ** 2, mask)
    return mean, var
  inv = _inverse_norms(m)
  n = _pair_count(m)

  def logs(b):
    cos = b['gram'] * _row_values(inv, b['index'])[:, None] * inv[None, :]
    return -0.5 * jnp.log(jnp.where(b['pairs'], jnp.maximum(2 - 2 * cos, 0), 1.0))

  zero = jnp.zeros((), inv.dtype)
  mean = _reduce_row_blocks(m, rows, lambda b: jnp.sum(logs(b)), zero) / n
  var = _reduce_row_blocks(
      m, rows, lambda b: jnp.sum(jnp.where(b['pairs'], (logs(b) - mean) ** 2, 0)), zero) / n
  return mean, var


def pairwise(m: ClassMoments, *, pair_rows: int | None = None) -> dict[str, jax.Array]:
  """`cdnv`, `nc2_etf`, `nc2_equiangular` and `gnc2` in two sweeps of the Gram.

  With ``pair_rows`` T > 0 (None: `pair_tile_rows`), row blocks of T classes:
  the first sweep sums the CDNV ratios, the equiangularity terms, the gnc2
  logs and ||G||_F^2; the second, with the norm and the mean now known, the
  ETF residual and the gnc2 variance. Each block's Gram is computed once per
  sweep, where the four functions called one by one take five. With 0, the
  four functions on one C x C array.

  Returns:
    ``{'cdnv', 'nc2_etf', 'nc2_equiangular', 'gnc2_log_mean', 'gnc2_log_var'}``.
  """
  rows = _rows_for(m, pair_rows)
  if not rows:
    log_mean, log_var = gnc2(m, pair_rows=0)
    return dict(cdnv=cdnv(m, pair_rows=0), nc2_etf=nc2_etf(m, pair_rows=0),
                nc2_equiangular=nc2_equiangular(m, pair_rows=0),
                gnc2_log_mean=log_mean, gnc2_log_var=log_var)
  mc = centred_means(m)
  sq, v, inv = jnp.sum(mc * mc, 1), m.variances, _inverse_norms(m)
  k, n = _k(m), _pair_count(m)
  shift = 1.0 / (k - 1)

  def cos_and_logs(b):
    cos = b['gram'] * _row_values(inv, b['index'])[:, None] * inv[None, :]
    logs = -0.5 * jnp.log(jnp.where(b['pairs'], jnp.maximum(2 - 2 * cos, 0), 1.0))
    return cos, logs

  def first(b):
    cos, logs = cos_and_logs(b)
    d_rows, v_rows = _row_values(sq, b['index']), _row_values(v, b['index'])
    dist = jnp.maximum(d_rows[:, None] + sq[None, :] - 2 * b['gram'], 0)
    ratio = (v_rows[:, None] + v[None, :]) / (2 * jnp.where(b['pairs'], dist, 1))
    return dict(cdnv=jnp.sum(jnp.where(b['pairs'], ratio, 0)),
                angle=jnp.sum(jnp.where(b['pairs'], jnp.abs(cos + shift), 0)),
                logs=jnp.sum(logs), gram_sq=jnp.sum(b['gram'] ** 2))

  zero = jnp.zeros((), mc.dtype)
  s1 = _reduce_row_blocks(m, rows, first, dict(cdnv=zero, angle=zero, logs=zero,
                                               gram_sq=zero))
  norm, mean = jnp.sqrt(s1['gram_sq']), s1['logs'] / n

  def second(b):
    _, logs = cos_and_logs(b)
    both = b['rows_present'][:, None] & m.present[None, :]
    target = jnp.where(both, (b['diag'] - 1.0 / k) / jnp.sqrt(k - 1), 0)
    return dict(etf=jnp.sum((b['gram'] / norm - target) ** 2),
                var=jnp.sum(jnp.where(b['pairs'], (logs - mean) ** 2, 0)))

  s2 = _reduce_row_blocks(m, rows, second, dict(etf=zero, var=zero))
  return dict(cdnv=s1['cdnv'] / n, nc2_etf=jnp.sqrt(s2['etf']),
              nc2_equiangular=s1['angle'] / n, gnc2_log_mean=mean, gnc2_log_var=s2['var'] / n)


def nc3_self_duality(m: ClassMoments, w: jax.Array) -> jax.Array:
  """|| W^T/||W||_F - M/||M||_F ||_F^2 (SPEC.md `nc3_self_duality`; Papyan 2020).

  Rows of W for absent classes are left out. Returns 0 when W = c M^T.
  """
  mc = centred_means(m)
  wm = jnp.where(m.present[:, None], w, 0)
  diff = wm / jnp.linalg.norm(wm) - mc / jnp.linalg.norm(mc)
  return jnp.sum(diff * diff)


def nc3_uniform_duality(m: ClassMoments, w: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Mean and variance over classes of cos(w_k, mu_k - mu_G) (SPEC.md `nc3_cos_mean`, `unc3_cos_var`)."""
  mc = centred_means(m)
  num = jnp.sum(w * mc, axis=1)
  den = jnp.linalg.norm(w, axis=1) * jnp.linalg.norm(mc, axis=1)
  cos = num * linalg.safe_inverse(den, den > 0)
  k = _k(m)
  mean = jnp.sum(jnp.where(m.present, cos, 0)) / k
  var = jnp.sum(jnp.where(m.present, (cos - mean) ** 2, 0)) / k
  return mean, var


def _first_argmax(s: jax.Array) -> jax.Array:
  """``jnp.argmax(s, axis=1)`` (first index of the maximum) as two plain
  reductions, which XLA:CPU vectorises (its fused value-index reduction is
  several times slower)."""
  top = jnp.max(s, axis=1, keepdims=True)
  iota = jnp.arange(s.shape[1], dtype=jnp.int32)
  return jnp.min(jnp.where(s == top, iota, s.shape[1]), axis=1)


# Rows of features per step of the NC4 pass: their [rows, 2C] scores stay in cache.
_NCC_CHUNK_ELEMS = 1 << 20


def ncc_mismatch_count(m: ClassMoments, features: jax.Array, w: jax.Array,
                       b: jax.Array) -> jax.Array:
  """Number of rows of ``features`` where argmax(W h + b) != nearest class mean.

  The classifier decides among all C classes; the nearest-class-centre rule
  among the classes present. One product of the rows, centred on mu_G (keeps
  float32 exact under a large offset), with [W; M^T] ([2C, p]) gives both the
  scores W h + b = W (h - mu_G) + (W mu_G + b) and the distances
  ||h - mu_k||^2 = ||h - mu_G||^2 - 2 (h - mu_G).(mu_k - mu_G) + ||mu_k - mu_G||^2,
  in chunks of rows so that the [N, 2C] scores are never built. Sum over
  batches and divide by N for `nc4_ncc_mismatch` (SPEC.md; Papyan 2020).
  """
  mu_g = global_mean(m)
  mc = centred_means(m)
  c = mc.shape[0]
  both = jnp.concatenate([w.astype(mc.dtype), mc])  # [2C, p]
  bias = b + w @ mu_g
  sq = jnp.where(m.present, jnp.sum(mc * mc, 1), jnp.inf)

  def count(h):
    s = (h - mu_g) @ both.T
    pred = _first_argmax(s[:, :c] + bias)
    ncc = _first_argmax(2 * s[:, c:] - sq)
    return jnp.sum(pred != ncc, dtype=jnp.int32)

  n = features.shape[0]
  rows = max(1, min(n, _NCC_CHUNK_ELEMS // (2 * c)))
  full = n // rows
  total = jax.lax.fori_loop(
      0, full, lambda i, acc: acc + count(
          jax.lax.dynamic_slice_in_dim(features, i * rows, rows)), jnp.int32(0))
  if n % rows:
    total = total + count(features[full * rows:])
  return total


def nc5_ood_orthogonality(m: ClassMoments, ood_mean: jax.Array) -> jax.Array:
  """mean_k |cos(mu_k, mu_ood)|, uncentred means (SPEC.md `nc5_ood_orthogonality`; Ammar et al. 2024)."""
  num = m.means @ ood_mean
  den = jnp.linalg.norm(m.means, axis=1) * jnp.linalg.norm(ood_mean)
  cos = jnp.abs(num * linalg.safe_inverse(den, den > 0))
  return jnp.sum(jnp.where(m.present, cos, 0)) / _k(m)


def numerical_rank_from_top(m: ClassMoments, top_sq: jax.Array) -> jax.Array:
  """(1/K) sum_k ||H_k||_F^2 / ||H_k||_2^2 given ||H_k||_2^2 (SPEC.md `numerical_rank`; 001 A.1).

  ||H_k||_F^2 = n_k (V_k + ||mu_k||^2) (raw, uncentred features).
  """
  fro = m.counts * (m.variances + jnp.sum(m.means * m.means, 1))
  ratio = fro * linalg.safe_inverse(top_sq, top_sq > 0)
  return jnp.sum(jnp.where(m.present, ratio, 0)) / _k(m)
