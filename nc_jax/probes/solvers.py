"""Jitted linear-probe solvers: L-BFGS logistic regression and ridge (MSE).

Each solver fits every L2 strength of a grid in one computation (a ``vmap``
over the grid; ridge shares one eigendecomposition). The probes that choose
the strength on a validation split and score the test set are in `linear`.

Objectives (N train samples, W [C, p], b [C]; b is never penalised):

- logistic: mean_i CE(W h_i + b, y_i) + (l2 / 2) ||W||_F^2. This is
  scikit-learn's ``LogisticRegression(C=1 / (l2 N))`` (lbfgs, multinomial).
- ridge: (1/2) sum_i w_i ||W h_i + b - e_{y_i}||^2 + (l2 / 2) ||W||_F^2 with
  w_i = 1/N, or w_i = 1/(K n_{y_i}) (``class_balanced``); at l2 = 0 with
  class balancing its minimum is SPEC.md `linear_probe_mse` (000 Thm 5.1).

References:
  Xu & Liu (paper 000) sec 6.3 and Thm 5.1; SPEC.md line 31
  (linear_probe_mse).
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nc_jax.metrics import checks
from nc_jax.metrics import linalg


# ----------------------------------------------------------------------------
# Logistic regression by L-BFGS.
# ----------------------------------------------------------------------------


def _logistic_objective(params, x, onehot, l2):
  w, b = params
  logits = x @ w + b
  ce = jnp.mean(jax.nn.logsumexp(logits, axis=-1) - jnp.sum(onehot * logits, axis=-1))
  return ce + 0.5 * l2 * jnp.sum(w * w)


def _lbfgs_one(x, onehot, l2, *, max_iters, gtol, ftol, memory_size):
  """Minimises the logistic objective from zero; returns ((w [p, C], b [C]), iters)."""
  f = partial(_logistic_objective, x=x, onehot=onehot, l2=l2)
  solver = optax.lbfgs(memory_size=memory_size)
  value_and_grad = optax.value_and_grad_from_state(f)
  p, c = x.shape[1], onehot.shape[1]
  params = (jnp.zeros((p, c), x.dtype), jnp.zeros((c,), x.dtype))
  inf = jnp.asarray(jnp.inf, x.dtype)

  def body(carry):
    params, state, i, _, _ = carry
    value, grad = value_and_grad(params, state=state)
    updates, state = solver.update(grad, state, params, value=value, grad=grad,
                                   value_fn=f)
    params = optax.apply_updates(params, updates)
    return params, state, i + 1, value, optax.tree.get(state, "value")

  def cond(carry):
    _, state, i, prev, value = carry
    gnorm = optax.tree.norm(optax.tree.get(state, "grad"), ord=jnp.inf)
    # scipy's L-BFGS-B stopping rules: small projected gradient, or a
    # relative decrease below ftol (the line search stalls at round-off).
    scale = jnp.maximum(jnp.maximum(jnp.abs(prev), jnp.abs(value)), 1.0)
    stalled = (prev - value) <= ftol * scale
    return (i == 0) | ((i < max_iters) & (gnorm > gtol) & ~stalled)

  params, _, iters, _, _ = jax.lax.while_loop(
      cond, body, (params, solver.init(params), jnp.int32(0), inf, inf))
  return params, iters


@partial(jax.jit, static_argnames=("num_classes", "max_iters", "gtol", "ftol",
                                   "memory_size", "batch_size"))
def _fit_logistic(x, labels, l2s, *, num_classes, max_iters, gtol, ftol, memory_size,
                  batch_size):
  # Centring is exact (the unpenalised bias absorbs the shift) and conditions
  # the problem: ReLU features share a large positive mean.
  offset = jnp.mean(x, axis=0)
  onehot = jax.nn.one_hot(labels, num_classes, dtype=x.dtype)
  solve = partial(_lbfgs_one, x - offset, onehot, max_iters=max_iters, gtol=gtol,
                  ftol=ftol, memory_size=memory_size)
  if batch_size is None:
    (w, b), iters = jax.vmap(solve)(l2s)
  else:
    (w, b), iters = jax.lax.map(solve, l2s, batch_size=batch_size)
  b = b - jnp.einsum("p,gpc->gc", offset, w)
  b = b - jnp.mean(b, axis=-1, keepdims=True)
  return jnp.swapaxes(w, 1, 2), b, iters


def fit_logistic(features: Any, labels: Any, *, num_classes: int, l2: Any,
                 max_iters: int = 1000, gtol: float = 1e-6, ftol: float | None = None,
                 memory_size: int = 10, batch_size: int | None = None
                 ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Multinomial logistic regression by L-BFGS (``optax.lbfgs``, zoom line search).

  Minimises mean_i CE(W h_i + b, y_i) + (l2 / 2) ||W||_F^2 from W = 0, b = 0,
  for every L2 strength at once (one ``vmap`` over the grid).

  Args:
    features: [N, p].
    labels: [N] in [0, num_classes).
    num_classes: C (static).
    l2: scalar or [G] L2 strengths; scikit-learn's ``C`` is 1 / (l2 N).
    max_iters: L-BFGS iterations cap.
    gtol: stop when max |gradient| <= gtol.
    ftol: stop when the relative decrease of one iteration is <= ftol
      (default: the machine epsilon of the features' dtype, i.e. no progress).
    memory_size: L-BFGS history length.
    batch_size: ``None``: all grid points in one ``vmap``; else grid points
      solved ``batch_size`` at a time (``lax.map``), to bound memory at
      G x N x C logits.

  Returns:
    ``(W [G, C, p], b [G, C], iterations [G])`` (no G axis for a scalar l2).
  """
  x, y = checks.check_features_labels(features, labels, num_classes, min_classes=1)
  l2s = jnp.asarray(l2, x.dtype)
  scalar = l2s.ndim == 0
  if ftol is None:
    ftol = float(jnp.finfo(x.dtype).eps)
  w, b, iters = _fit_logistic(x, y, jnp.atleast_1d(l2s), num_classes=num_classes,
                              max_iters=max_iters, gtol=float(gtol), ftol=float(ftol),
                              memory_size=memory_size, batch_size=batch_size)
  return (w[0], b[0], iters[0]) if scalar else (w, b, iters)


# ----------------------------------------------------------------------------
# Ridge (MSE) by one eigendecomposition for the whole grid.
# ----------------------------------------------------------------------------


@partial(jax.jit, static_argnames=("num_classes", "class_balanced"))
def _fit_ridge(x, labels, l2s, rtol, *, num_classes, class_balanced):
  onehot = jax.nn.one_hot(labels, num_classes, dtype=x.dtype)
  counts = jnp.sum(onehot, axis=0)
  if class_balanced:
    k = jnp.sum(counts > 0)
    wts = (1.0 / (k * jnp.where(counts > 0, counts, 1)))[labels]
  else:
    wts = jnp.full(labels.shape, 1.0 / labels.shape[0], x.dtype)
  h_bar = wts @ x
  y_bar = wts @ onehot
  hc, yc = x - h_bar, onehot - y_bar
  s = (hc * wts[:, None]).T @ hc                       # [p, p]
  r = (hc * wts[:, None]).T @ yc                       # [p, C]
  evals, evecs = jnp.linalg.eigh(s)
  proj = evecs.T @ r                                   # [p, C]
  # l2 = 0 is the least-norm least-squares solution: directions with
  # eigenvalue <= rtol * max are dropped, as SPEC.md's pinv does.
  keep = evals > rtol * jnp.max(evals)

  def solve(l2):
    inv = jnp.where(keep | (l2 > 0), 1.0 / (jnp.maximum(evals, 0) + l2), 0.0)
    inv = jnp.where(jnp.isfinite(inv), inv, 0.0)
    wt = evecs @ (inv[:, None] * proj)                 # [p, C]
    return wt.T, y_bar - h_bar @ wt

  return jax.vmap(solve)(l2s)


def fit_ridge(features: Any, labels: Any, *, num_classes: int, l2: Any,
              class_balanced: bool = False, rtol: float | None = None
              ) -> tuple[jax.Array, jax.Array]:
  """Closed-form ridge regression onto one-hot targets (MSE probe).

  Minimises (1/2) sum_i w_i ||W h_i + b - e_{y_i}||^2 + (l2 / 2) ||W||_F^2,
  w_i = 1/N or 1/(K n_{y_i}): W^T = (S + l2 I)^{-1} R with S, R the weighted
  covariances of the centred features and targets, b = y_bar - W h_bar. One
  eigendecomposition of S serves every grid point.

  Args:
    features: [N, p].
    labels: [N] in [0, num_classes).
    num_classes: C (static).
    l2: scalar or [G] L2 strengths (0 allowed: least-norm solution).
    class_balanced: weight classes equally (SPEC.md convention).
    rtol: eigenvalue cut for l2 = 0 (default: `metrics.default_rtol`).

  Returns:
    ``(W [G, C, p], b [G, C])`` (no G axis for a scalar l2).

  References:
    Paper 000 Thm 5.1; SPEC.md line 31 (`linear_probe_mse` is the minimum at
    l2 = 0 with ``class_balanced=True``).
  """
  x, y = checks.check_features_labels(features, labels, num_classes, min_classes=1)
  l2s = jnp.asarray(l2, x.dtype)
  scalar = l2s.ndim == 0
  if rtol is None:
    rtol = linalg.default_rtol(x.dtype, x.shape[1])
  w, b = _fit_ridge(x, y, jnp.atleast_1d(l2s), jnp.asarray(rtol, x.dtype),
                    num_classes=num_classes, class_balanced=class_balanced)
  return (w[0], b[0]) if scalar else (w, b)


def ridge_loss(features: Any, labels: Any, weights: Any, bias: Any, *, num_classes: int,
               class_balanced: bool = False) -> float:
  """(1/2) sum_i w_i ||W h_i + b - e_{y_i}||^2 (no penalty), w_i as in `fit_ridge`."""
  x, y = np.asarray(features, np.float64), np.asarray(labels)
  res = x @ np.asarray(weights, np.float64).T + np.asarray(bias) - np.eye(num_classes)[y]
  if class_balanced:
    counts = np.bincount(y, minlength=num_classes)
    wts = 1.0 / (np.count_nonzero(counts) * counts[y])
  else:
    wts = np.full(len(y), 1.0 / len(y))
  return float(0.5 * np.sum(wts * np.sum(res * res, axis=1)))
