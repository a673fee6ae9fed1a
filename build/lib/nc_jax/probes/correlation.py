"""Transfer summaries and correlations for metric-vs-transfer studies (000, 001).

- ``mlog``: mean log-odds gain of downstream linear-probe accuracies over the
  pretraining accuracy (paper 000 eq 6).
- ``pearson`` / ``spearman``: correlation of a collapse metric with transfer
  across pretrained models (000 Fig 7, 001 Figs 2-4).

All take arrays, broadcast over leading axes and are traceable.

References:
  Xu & Liu (paper 000) eq 6 and sec 6.3; SPEC.md line 65.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.scipy.stats  # noqa: F401 (jax.scipy.stats.rankdata)
import jax.numpy as jnp


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


def pearson(x: Any, y: Any) -> jax.Array:
  """Pearson correlation over the last axis. [...] in [-1, 1].

  Args:
    x: [..., n].
    y: [..., n].

  Returns:
    sum (x - x_bar)(y - y_bar) / sqrt(sum (x - x_bar)^2 sum (y - y_bar)^2);
    NaN when either is constant.
  """
  x = jnp.asarray(x, jnp.result_type(float))
  y = jnp.asarray(y, x.dtype)
  if x.shape[-1] != y.shape[-1]:
    raise ValueError(f"x and y need the same length; got {x.shape} and {y.shape}")
  xc = x - jnp.mean(x, axis=-1, keepdims=True)
  yc = y - jnp.mean(y, axis=-1, keepdims=True)
  return jnp.sum(xc * yc, -1) / jnp.sqrt(jnp.sum(xc * xc, -1) * jnp.sum(yc * yc, -1))


def rankdata(x: Any) -> jax.Array:
  """1-based ranks over the last axis, ties given their average rank.

  ``jax.scipy.stats.rankdata`` (scipy's ``method='average'``).
  """
  return jax.scipy.stats.rankdata(jnp.asarray(x), axis=-1)


def spearman(x: Any, y: Any) -> jax.Array:
  """Spearman rank correlation over the last axis: `pearson` of the average ranks."""
  return pearson(rankdata(x), rankdata(y))
