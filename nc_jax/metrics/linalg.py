"""Eigen-decomposition helpers behind every pseudo-inverse in nc_jax.metrics.

SPEC.md, "A^+ (pinv)": a pseudo-inverse is taken through an eigen-decomposition;
eigenvalues <= rtol * lambda_max are dropped, and for Sigma_B only the top r_B
are kept (r_B = min(p, K - 1) unless the caller gives a rank).

Why not ``jnp.linalg.pinv``: Sigma_B has rank <= K - 1 but, computed in float32,
its p - K + 1 "zero" eigenvalues come out as noise of either sign around
eps * lambda_max. An unguarded pinv inverts that noise and NC1 can come out
negative or huge. The rank cut and the relative threshold remove it.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

# Eigenvalue noise of a p x p covariance accumulated in floating point grows
# roughly like p * eps * lambda_max; ten times that is a safe floor that still
# keeps directions with a condition number up to ~1/(10 p eps): ~1.6e3 for
# float32 with p = 512 (plenty for collapse metrics, whose pseudo-inverses are
# dominated by the large directions), ~1.9e11 for float64.
_RTOL_FACTOR = 10.0


def default_rtol(dtype, dim: int) -> float:
  """Documented dtype-aware default relative eigenvalue cut: 10 * dim * eps.

  Args:
    dtype: floating dtype of the matrix (float32 or float64).
    dim: its dimension p.

  Returns:
    ``10 * dim * finfo(dtype).eps``: 6.1e-4 for float32 with dim = 512,
    1.1e-12 for float64 with dim = 512.
  """
  return float(_RTOL_FACTOR * dim * np.finfo(np.dtype(dtype)).eps)


def symmetrize(a: jax.Array) -> jax.Array:
  return 0.5 * (a + jnp.swapaxes(a, -1, -2))


def eigh_desc(a: jax.Array) -> tuple[jax.Array, jax.Array]:
  """Eigen-decomposition of a symmetric matrix, eigenvalues descending.

  The matrix is scaled by its largest absolute entry first so that float32
  decompositions of features with large magnitudes neither overflow nor lose
  the small end of the spectrum to underflow; the scale is put back after.
  """
  a = symmetrize(a)
  scale = jnp.max(jnp.abs(a))
  scale = jnp.where(scale > 0, scale, 1.0)
  w, v = jnp.linalg.eigh(a / scale)
  return w[::-1] * scale, v[:, ::-1]


def keep_mask(eigvals_desc: jax.Array, *, rtol: float,
              rank: jax.Array | int | None = None) -> jax.Array:
  """Which eigenvalues a pseudo-inverse keeps (SPEC.md, A^+).

  Args:
    eigvals_desc: eigenvalues sorted in descending order, shape [d].
    rtol: relative threshold; eigenvalues <= rtol * lambda_max are dropped.
    rank: if given, only the first ``rank`` eigenvalues may be kept (may be a
      traced integer).

  Returns:
    Boolean mask of shape [d].
  """
  lam_max = eigvals_desc[0]
  keep = eigvals_desc > rtol * jnp.maximum(lam_max, 0.0)
  keep &= lam_max > 0
  if rank is not None:
    keep &= jnp.arange(eigvals_desc.shape[0]) < rank
  return keep


def safe_inverse(x: jax.Array, keep: jax.Array) -> jax.Array:
  """1/x where ``keep``, 0 elsewhere, with no NaN in the gradient."""
  return jnp.where(keep, 1.0 / jnp.where(keep, x, 1.0), 0.0)


def top_eigenvalue(matvec, v0: jax.Array, *, max_iters: int = 500,
                   tol: float | None = None) -> jax.Array:
  """Largest eigenvalue of a batch of PSD operators by power iteration.

  Args:
    matvec: maps a batch of vectors [B, p] to the operator applied to each.
    v0: starting vectors [B, p] (e.g. the class means, which for raw features
      are close to the top eigenvector).
    max_iters: iteration cap.
    tol: stop when every Rayleigh quotient changes by less than ``tol``
      relative; default 4 eps of the dtype.

  Returns:
    Rayleigh quotients [B] of the last step, the top eigenvalue of each
    operator. The error
    shrinks like (lambda_2 / lambda_1)^(2 t) after t steps. The iteration
    also stops at the rounding floor: once the largest relative change is
    below sqrt(eps) and no longer shrinks (a matvec over many samples
    carries rounding of a few eps * sqrt(n p), so a change of 4 eps may never
    come), since further steps only redraw the rounding.
  """
  dtype = v0.dtype
  eps = float(np.finfo(np.dtype(dtype)).eps)
  if tol is None:
    tol = 4 * eps
  floor = math.sqrt(eps)
  # A random-ish start where v0 is zero (a class whose mean is zero).
  fallback = jnp.ones_like(v0) / math.sqrt(v0.shape[-1])  # A weak-typed float.
  nrm = jnp.linalg.norm(v0, axis=-1, keepdims=True)
  v = jnp.where(nrm > 0, v0 / jnp.where(nrm > 0, nrm, 1.0), fallback)

  def step(carry):
    i, v, lam, delta, _ = carry
    av = matvec(v)
    new_lam = jnp.sum(v * av, axis=-1)
    n = jnp.linalg.norm(av, axis=-1, keepdims=True)
    v_new = jnp.where(n > 0, av / jnp.where(n > 0, n, 1.0), v)
    new_delta = jnp.max(jnp.abs(new_lam - lam) / jnp.maximum(jnp.abs(new_lam), 1e-30))
    return i + 1, v_new, new_lam, new_delta, delta

  def cond(carry):
    i, _, _, delta, prev = carry
    at_floor = (delta < floor) & (delta >= prev)
    return (i < max_iters) & (delta > tol) & ~at_floor

  lam0 = jnp.zeros(v0.shape[:-1], dtype)
  inf = jnp.asarray(jnp.inf, dtype)
  _, _, lam, _, _ = jax.lax.while_loop(cond, step, (0, v, lam0, inf, inf))
  return lam
