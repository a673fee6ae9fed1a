"""Transfer summaries and correlations for metric-vs-transfer studies (000, 001).

- ``mlog``: mean log-odds gain of downstream linear-probe accuracies over the
  pretraining accuracy (paper 000 eq 6).
- ``pearson`` / ``spearman``: correlation of a collapse metric with transfer
  across pretrained models (000 Fig 7, 001 Figs 2-4) or with training time,
  train size, layer depth (the studies' criteria). The one copy of both: the
  studies import them from here.

Correlation rules (the same on every path):

- NaN for fewer than 3 points (two points always correlate +-1: no evidence),
  for a constant sequence (the correlation is undefined) and for NaN input.
- Concrete inputs are computed in float64 on the host and rounded to 12
  decimals: rank correlations of a few points are exact fractions
  (1 - 6 sum d^2 / (n (n^2 - 1)) without ties), and 0.8 must not compare as
  0.7999999999999999 in a study's criterion. The result is a NumPy float64
  (a Python ``float`` subclass, JSON-serialisable) for 1-D inputs.
- Traced inputs (under ``jit``/``vmap``) use the same formula in JAX at the
  default float dtype, rounded only when that is float64.

All take arrays and broadcast over leading axes.

References:
  Xu & Liu (paper 000) eq 6 and sec 6.3; SPEC.md line 65 (mlog, logit).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import jax.scipy.stats  # noqa: F401 (jax.scipy.stats.rankdata)
import numpy as np
import scipy.stats

MIN_POINTS = 3
DECIMALS = 12


def logit(p: Any) -> jax.Array:
  """log(p / (1 - p)) (SPEC.md line 65); +-inf at p = 1 or 0."""
  p = jnp.asarray(p, jnp.result_type(float))
  return jnp.log(p) - jnp.log1p(-p)


def mlog(downstream_accuracies: Any, pretrain_accuracy: Any) -> jax.Array:
  """Mean log-odds gain: mean_i logit(acc_i) - logit(acc_pretrain) (000 eq 6; SPEC.md line 65).

  Args:
    downstream_accuracies: [..., T] accuracies in (0, 1) on T downstream
      tasks (fractions, not percentages).
    pretrain_accuracy: [...] the pretraining test accuracy in (0, 1).

  Returns:
    [...] MLOG; > 0 when the representation transfers better than its
    pretraining accuracy alone predicts.

  Raises:
    ValueError: concrete accuracies outside [0, 1] (percentages).
  """
  acc = jnp.asarray(downstream_accuracies, jnp.result_type(float))
  pre = jnp.asarray(pretrain_accuracy, acc.dtype)
  if acc.ndim == 0:
    raise ValueError("downstream_accuracies needs a task axis [..., T]")
  if not isinstance(acc, jax.core.Tracer) and not isinstance(pre, jax.core.Tracer):
    if bool(jnp.any((acc < 0) | (acc > 1))) or bool(jnp.any((pre < 0) | (pre > 1))):
      raise ValueError("accuracies must be fractions in [0, 1] (divide percentages by 100)")
  return jnp.mean(logit(acc), axis=-1) - logit(pre)


def _traced(*xs) -> bool:
  return any(isinstance(x, jax.core.Tracer) for x in xs)


def _check_pair(x, y):
  if np.ndim(x) == 0 or np.ndim(y) == 0:
    raise ValueError(
        f"x and y need a points axis [..., n]; got shapes {np.shape(x)} and {np.shape(y)}")
  if np.shape(x)[-1] != np.shape(y)[-1]:
    raise ValueError(
        f"x and y need the same number of points; got shapes {np.shape(x)} and {np.shape(y)}")


def _pearson(xp, x, y):
  """Pearson over the last axis with the NaN rules, in namespace xp (np or jnp)."""
  n = x.shape[-1]
  xc = x - xp.mean(x, axis=-1, keepdims=True)
  yc = y - xp.mean(y, axis=-1, keepdims=True)
  sxy = xp.sum(xc * yc, axis=-1)
  sxx, syy = xp.sum(xc * xc, axis=-1), xp.sum(yc * yc, axis=-1)
  # Constant, NaN or too short: masked below; the guard only keeps 0/0 quiet.
  degenerate = (xp.all(x == x[..., :1], axis=-1) | xp.all(y == y[..., :1], axis=-1)
                | xp.any(xp.isnan(x), axis=-1) | xp.any(xp.isnan(y), axis=-1)
                | (n < MIN_POINTS))
  denom = xp.sqrt(xp.where(degenerate, 1, sxx * syy))
  # |r| <= 1 exactly; rounding can overshoot by an ulp.
  r = xp.clip(sxy / denom, -1, 1)
  return xp.where(degenerate, xp.nan, r)


def _host(x, y):
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  _check_pair(x, y)
  return x, y


def _too_short(x, y):
  """All-NaN [...] when there are fewer than MIN_POINTS points (None otherwise)."""
  if x.shape[-1] >= MIN_POINTS:
    return None
  return _finish_host(np.full(np.broadcast_shapes(x.shape[:-1], y.shape[:-1]), np.nan))


def _finish_host(r):
  r = np.round(r, DECIMALS) + 0.0  # + 0.0: no -0.0
  return r[()] if r.ndim == 0 else r


def _finish_traced(r):
  return jnp.round(r, DECIMALS) + 0.0 if r.dtype == jnp.float64 else r


def pearson(x: Any, y: Any) -> np.float64 | np.ndarray | jax.Array:
  """Pearson correlation over the last axis. [...] in [-1, 1].

  sum (x - x_bar)(y - y_bar) / sqrt(sum (x - x_bar)^2 sum (y - y_bar)^2).

  Args:
    x: [..., n].
    y: [..., n] (leading axes broadcast with x's).

  Returns:
    [...]; NaN for n < 3, a constant x or y, or NaN in x or y. Concrete
    inputs: float64 rounded to 12 decimals (a NumPy float64 for 1-D inputs);
    traced inputs: a JAX array of the default float dtype.

  Raises:
    ValueError: x and y of different lengths, or scalars.
  """
  if _traced(x, y):
    _check_pair(x, y)
    dt = jnp.result_type(float)
    return _finish_traced(_pearson(jnp, jnp.asarray(x, dt), jnp.asarray(y, dt)))
  x, y = _host(x, y)
  if (short := _too_short(x, y)) is not None:
    return short
  with np.errstate(invalid="ignore", divide="ignore"):
    return _finish_host(_pearson(np, x, y))


def rankdata(x: Any) -> np.ndarray | jax.Array:
  """1-based ranks over the last axis, ties given their average rank.

  scipy's ``rankdata(method='average')`` in float64 for concrete inputs,
  ``jax.scipy.stats.rankdata`` for traced ones.
  """
  if _traced(x):
    return jax.scipy.stats.rankdata(jnp.asarray(x), axis=-1)
  return scipy.stats.rankdata(np.asarray(x, np.float64), axis=-1)


def spearman(x: Any, y: Any) -> np.float64 | np.ndarray | jax.Array:
  """Spearman rank correlation over the last axis: `pearson` of the average ranks.

  Without ties, 1 - 6 sum_i d_i^2 / (n (n^2 - 1)), d_i the rank differences.

  Args:
    x: [..., n].
    y: [..., n].

  Returns:
    [...] in [-1, 1]; 1 for any strictly increasing transform of x. NaN for
    n < 3, a constant x or y, or NaN in x or y (the NaN rules of `pearson`,
    applied to x and y themselves). Concrete inputs: float64 rounded to 12
    decimals; traced: the default float dtype.
  """
  if _traced(x, y):
    _check_pair(x, y)
    dt = jnp.result_type(float)
    x, y = jnp.asarray(x, dt), jnp.asarray(y, dt)
    bad = jnp.any(jnp.isnan(x), -1) | jnp.any(jnp.isnan(y), -1)
    r = _pearson(jnp, rankdata(x).astype(dt), rankdata(y).astype(dt))
    return _finish_traced(jnp.where(bad, jnp.nan, r))
  x, y = _host(x, y)
  if (short := _too_short(x, y)) is not None:
    return short
  bad = np.any(np.isnan(x), -1) | np.any(np.isnan(y), -1)
  with np.errstate(invalid="ignore", divide="ignore"):
    r = _pearson(np, rankdata(x), rankdata(y))
  return _finish_host(np.where(bad, np.nan, r))
