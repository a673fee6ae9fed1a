"""Fine-grained structure of representations (paper 004; SPEC.md).

The class distance matrix over the ORIGINAL classes is computed from class
means and variances, never from the N x N distances:
D_ij = mean_{u in i, v in j} ||h_u - h_v||^2 = V_i + V_j + ||mu_i - mu_j||^2.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from nc_jax.metrics import checks
from nc_jax.metrics import core
from nc_jax.metrics.stats import ClassMoments, class_moments


def class_distance_matrix_from_moments(m: ClassMoments) -> jax.Array:
  """D_ij = V_i + V_j + ||mu_i - mu_j||^2; D_ii = 2 V_i (SPEC.md; 004). [C, C].

  Rows and columns of absent classes are NaN.
  """
  v = m.variances
  d = v[:, None] + v[None, :] + core.mean_sq_distances(m)
  both = m.present[:, None] & m.present[None, :]
  return jnp.where(both, d, jnp.nan)


@partial(jax.jit, static_argnames=("num_classes",))
def _class_distance_matrix(features, labels, *, num_classes):
  return class_distance_matrix_from_moments(
      class_moments(features, labels, num_classes=num_classes))


def class_distance_matrix(features, labels, *, num_classes: int) -> jax.Array:
  """Mean squared distance between samples of each pair of classes (SPEC.md; 004).

  Args:
    features: [N, p].
    labels: [N] original (fine) class labels in [0, num_classes).
    num_classes: C.

  Returns:
    [C, C] symmetric; D_ii = 2 V_i; NaN for absent classes. Traceable.
  """
  features, labels = checks.check_features_labels(features, labels, num_classes,
                                                   min_classes=1)
  return _class_distance_matrix(features, labels, num_classes=num_classes)


@jax.jit
def _msdr(d, superclass):
  c = d.shape[0]
  valid = ~jnp.isnan(jnp.diag(d))
  same = (superclass[:, None] == superclass[None, :]) & ~jnp.eye(c, dtype=bool)
  same &= valid[:, None] & valid[None, :]
  num = jnp.sum(jnp.where(same, d, 0)) / jnp.sum(same)
  den = jnp.sum(jnp.where(valid, jnp.diag(d), 0)) / jnp.sum(valid)
  return num / den


def msdr(d: jax.Array, superclass) -> jax.Array:
  """Mean squared distance ratio (SPEC.md `msdr`, line 56; 004 App B).

  msdr = mean of D_ij over i != j in the same super-class / mean_i D_ii.
  The numerator pools all such pairs (a super-class of s classes gives
  s (s - 1) of them), the denominator all classes present; pairs i = j are
  not in the numerator. About 1 when the sub-classes of each super-class
  are indistinguishable (exactly 1 if, in addition, every class has the
  same V_i or every super-class the same size), > 1 when fine-grained
  structure survives.

  Args:
    d: [C, C] class distance matrix over the original classes.
    superclass: [C] integer super-class of each original class (e.g.
      ``jnp.arange(C) % C_coarse``).
  """
  d = jnp.asarray(d)
  superclass = jnp.asarray(superclass)
  if d.ndim != 2 or d.shape[0] != d.shape[1]:
    raise ValueError(f"d must be a square [C, C] matrix; got {d.shape}")
  if superclass.shape != (d.shape[0],):
    raise ValueError(f"superclass must have shape ({d.shape[0]},); got {superclass.shape}")
  if not checks.is_traced(superclass):
    import numpy as np
    s = np.asarray(superclass)
    if not any(np.sum(s == v) >= 2 for v in np.unique(s)):
      raise ValueError("msdr needs a super-class with at least two original classes")
  return _msdr(d, superclass)
