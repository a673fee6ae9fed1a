"""Within-class variance around GIVEN class means (paper 002's TrainVariance(t)).

Paper 002 (Hui, Belkin, Nakkiran 2022, sec 3.1) measures train collapse at
time t against the class means of the FINAL model (time T):

  TrainVariance(t) = E ||h_t(x) - mu_y(T)||^2 / E_i ||mu_i(T) - mu(T)||^2.

`train_variance` (SPEC.md line 52) is the case t = T, where this equals
SPEC.md `squared_distance` = Tr(Sigma_W) / Tr(Sigma_B). `variance_to_means`
takes the means as an input so that t < T can be measured too.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from nc_jax.metrics import checks


@partial(jax.jit, static_argnames=("num_classes",))
def _variance_to_means(features, labels, class_means, *, num_classes):
  dt = jnp.result_type(features.dtype, class_means.dtype)
  h, c = features.astype(dt), class_means.astype(dt)
  counts = jax.ops.segment_sum(jnp.ones_like(labels), labels, num_segments=num_classes)
  present = counts > 0
  k = jnp.sum(present).astype(dt)
  # Direct differences, not ||h||^2 - 2 h.c + ||c||^2: no cancellation when
  # the features sit far from the origin (float32).
  d = h - c[labels]
  sq = jax.ops.segment_sum(jnp.sum(d * d, axis=-1), labels, num_segments=num_classes)
  per_class = jnp.where(present, sq / jnp.maximum(counts, 1).astype(dt), 0)
  within = jnp.sum(per_class) / k
  c_bar = jnp.sum(jnp.where(present[:, None], c, 0), axis=0) / k
  dc = jnp.where(present[:, None], c - c_bar, 0)
  between = jnp.sum(dc * dc) / k
  return within / between


def variance_to_means(features: jax.Array, labels: jax.Array, class_means: jax.Array, *,
                      num_classes: int) -> jax.Array:
  """Within-class variance around given class means over their spread (002 TrainVariance(t)).

  (1/K) sum_k (1/n_k) sum_{i in k} ||h_i - c_k||^2 / ((1/K) sum_k ||c_k - c_bar||^2),
  c_bar = (1/K) sum_k c_k.

  Both averages weight each class equally (SPEC.md line 10, Notation); on
  class-balanced data the numerator is paper 002's sample average
  E_(x,y) ||h(x) - mu_y||^2, so this is its TrainVariance(t) with
  c_k = mu_k(T), the final model's train class means. With c_k the class
  means of ``features`` themselves it is SPEC.md `squared_distance`
  Tr(Sigma_W) / Tr(Sigma_B) (line 32), i.e. `train_variance` (line 52).

  Args:
    features: [N, p] features h_i (e.g. of the model at time t).
    labels: [N] integer labels in [0, num_classes).
    class_means: [num_classes, p] the means c_k to measure against (e.g.
      ``class_moments(h_final, labels, num_classes=C).means``).
    num_classes: C (static).

  Returns:
    Scalar >= 0; 0 when every h_i equals c_{y_i}; inf (NaN if also 0 / 0)
    when all class means coincide, as `squared_distance`. Traced inputs: classes
    without samples are left out of both averages (K counts the classes
    present, SPEC.md line 9-10); concrete inputs must have every class.

  Raises:
    ValueError: shape mismatches (features / labels / class_means), labels
      out of range, NaN or Inf in features or class_means, a class with no
      samples (concrete inputs).

  References:
    Paper 002 sec 3.1 TrainVariance; SPEC.md lines 10, 32 and 52.
  """
  features, labels = checks.check_features_labels(features, labels, num_classes)
  p = features.shape[1]
  if not hasattr(class_means, "shape"):
    class_means = np.asarray(class_means)
  if tuple(class_means.shape) != (num_classes, p):
    raise ValueError(
        f"class_means must have shape (num_classes, p) = ({num_classes}, {p}); got "
        f"{class_means.shape}")
  class_means = checks.check_features(class_means, "class_means", dim=p)
  if not checks.is_traced(labels):
    missing = np.setdiff1d(np.arange(num_classes), np.asarray(labels))
    if missing.size:
      raise ValueError(
          f"every class given a mean needs samples; classes {missing.tolist()} have none "
          "(pass the labels the means were computed from, or drop those classes)")
  return _variance_to_means(features, labels, class_means, num_classes=num_classes)
