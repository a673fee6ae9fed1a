"""Input validation for the metric entry points.

Shape and dtype checks always run (shapes are static under ``jit``). Value
checks (labels in range, finite features, enough classes present) need
concrete arrays: they run when the inputs are not traced, and are skipped
inside ``jax.jit`` / ``vmap`` / ``lax.scan``. For traced code that must check
values, wrap it with `checked` (``jax.experimental.checkify``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def is_traced(*xs) -> bool:
  return any(isinstance(x, jax.core.Tracer) for x in xs)


# One fused reduction on the device (no copy of the features to the host).
_all_finite = jax.jit(lambda x: jnp.all(jnp.isfinite(x)))


def check_features(features, name: str = "features", dim: int | None = None):
  if not isinstance(features, jax.Array):
    features = jnp.asarray(features)  # float64 NumPy -> float32 unless x64 is on
  if features.ndim != 2:
    raise ValueError(f"{name} must be a 2-D array [N, p]; got shape {features.shape}")
  if not jnp.issubdtype(features.dtype, jnp.floating):
    features = jnp.asarray(features, jnp.result_type(float))
  elif jnp.finfo(features.dtype).bits < 32:
    # bfloat16 / float16 features (mixed-precision models): every statistic is
    # computed in float32 at least, never in the compute dtype, whose 8-bit
    # mantissa would swamp the sums of squares behind NC1 and the like.
    features = features.astype(jnp.float32)
  if dim is not None and features.shape[1] != dim:
    raise ValueError(f"{name} must have feature dimension {dim}; got shape {features.shape}")
  if features.shape[0] == 0:
    raise ValueError(f"{name} is empty (shape {features.shape})")
  if not is_traced(features) and not bool(_all_finite(features)):
    f = np.asarray(features)
    if not np.isfinite(f).all():
      bad = np.argwhere(~np.isfinite(f))[0].tolist()
      raise ValueError(
          f"{name} contains NaN or Inf ({int((~np.isfinite(f)).sum())} entries, "
          f"first at index {bad})")
  return features


def check_features_labels(features, labels, num_classes: int, *, min_classes: int = 2):
  """Validates (features [N, p], labels [N]) and returns them as JAX arrays.

  Raises:
    ValueError: naming the problem: ranks, lengths, float labels, labels
      outside [0, num_classes), NaN/Inf features, fewer than ``min_classes``
      classes present.
  """
  if not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
    raise ValueError(f"num_classes must be an int >= 2; got {num_classes!r}")
  features = check_features(features)
  if not hasattr(labels, "shape"):
    labels = np.asarray(labels)
  if labels.ndim != 1:
    raise ValueError(f"labels must be a 1-D array [N]; got shape {labels.shape}")
  if not jnp.issubdtype(labels.dtype, jnp.integer):
    raise ValueError(
        f"labels must be integers; got dtype {labels.dtype} (cast with .astype(int) "
        "if they are whole numbers)")
  if labels.shape[0] != features.shape[0]:
    raise ValueError(
        f"features and labels disagree on N: features {features.shape}, labels "
        f"{labels.shape}")
  if not is_traced(labels):
    y = np.asarray(labels)
    if y.min() < 0 or y.max() >= num_classes:
      raise ValueError(
          f"labels must lie in [0, {num_classes}); got values in [{y.min()}, {y.max()}]")
    present = np.unique(y).size
    if present < min_classes:
      raise ValueError(
          f"at least {min_classes} classes must have samples; only {present} present")
  return features, jnp.asarray(labels).astype(jnp.int32)


def check_classifier(classifier, num_classes: int, dim: int):
  """Validates a (W [C, p], b [C] or None) pair; returns (W, b) with b filled."""
  if classifier is None:
    return None
  if not isinstance(classifier, (tuple, list)) or len(classifier) != 2:
    raise ValueError("classifier must be a pair (W [C, p], b [C] or None)")
  w, b = classifier
  w = jnp.asarray(w)
  if w.shape != (num_classes, dim):
    raise ValueError(
        f"classifier W must have shape (num_classes, p) = ({num_classes}, {dim}); got "
        f"{w.shape} (pass W, not W^T)")
  if b is None:
    b = jnp.zeros((num_classes,), w.dtype)
  b = jnp.asarray(b)
  if b.shape != (num_classes,):
    raise ValueError(f"classifier b must have shape ({num_classes},); got {b.shape}")
  if not is_traced(w, b) and not (np.isfinite(np.asarray(w)).all()
                                  and np.isfinite(np.asarray(b)).all()):
    raise ValueError("classifier W or b contains NaN or Inf")
  return w, b


def checked(fn):
  """Wraps a traceable metric function so value errors surface under ``jit``.

  Uses ``jax.experimental.checkify``: the returned function is jitted, runs
  ``fn`` and raises ``ValueError`` if the features contain NaN/Inf, if labels
  are out of range or if fewer than two classes are present.

  Example:
    >>> report = checked(collapse_report)
    >>> report(features, labels, num_classes=10)   # raises on NaN features
  """
  from jax.experimental import checkify

  def with_checks(features, labels, *args, num_classes, **kwargs):
    checkify.check(jnp.all(jnp.isfinite(features)),
                   "features contain NaN or Inf")
    checkify.check(jnp.all((labels >= 0) & (labels < num_classes)),
                   "labels outside [0, num_classes)")
    present = jax.ops.segment_sum(jnp.ones_like(labels), labels,
                                  num_segments=num_classes) > 0
    checkify.check(jnp.sum(present) >= 2, "fewer than 2 classes have samples")
    return fn(features, labels, *args, num_classes=num_classes, **kwargs)

  checked_fn = jax.jit(checkify.checkify(with_checks),
                       static_argnames=("num_classes", "rank", "rtol"))

  def run(features, labels, *args, num_classes, **kwargs):
    err, out = checked_fn(features, labels, *args, num_classes=num_classes, **kwargs)
    msg = err.get()
    if msg is not None:
      raise ValueError(msg)
    return out

  run.__doc__ = f"Checked version of {getattr(fn, '__name__', fn)}: " + (checked.__doc__ or "")
  return run
