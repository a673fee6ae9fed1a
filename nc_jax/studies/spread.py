"""Seeds and their spread: the one place a study decides that a exceeds b.

``../shared/REPRODUCTIONS.md``: a claim about a difference, an order or a
trend uses at least `MIN_SEEDS` seeds, reports mean and standard error, and
counts a difference only when it exceeds its noise. Every paper module
decides "a exceeds b" with `exceeds`:

    mean(a) - mean(b) > Z * SE(mean(a) - mean(b)),   Z = 2,

the SE of the difference being ``sqrt(SE_a^2 + SE_b^2)`` for independent
samples, or the SE of the per-seed differences when ``paired`` (a and b
measured on the same seeds). A plain number for ``b`` is a constant (SE 0).
With fewer than two values on a side that has no noise estimate, the answer
is ``None`` (cannot tell), which a claim turns into "inconclusive".
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

MIN_SEEDS = 3  # Seeds a claim about a difference, order or trend needs.
Z = 2.0  # A difference counts when it exceeds Z standard errors.

Values = Sequence[float] | np.ndarray | float


@dataclasses.dataclass(frozen=True)
class Estimate:
  """Mean and standard error of the mean of ``n`` values (``se`` NaN if n < 2)."""

  mean: float
  se: float
  n: int

  def as_dict(self) -> dict[str, float | int]:
    return dict(mean=self.mean, se=self.se, n=self.n)


def _values(x: Values) -> np.ndarray:
  v = np.atleast_1d(np.asarray(x, np.float64))
  if v.ndim != 1 or v.size == 0:
    raise ValueError(f'expected a non-empty 1-D sequence of values, got shape {v.shape}')
  if not np.all(np.isfinite(v)):
    raise ValueError(f'values must be finite, got {v.tolist()}')
  return v


def estimate(values: Values) -> Estimate:
  """Mean and standard error (sample std with ddof=1 over sqrt(n))."""
  v = _values(values)
  se = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else float('nan')
  return Estimate(mean=float(v.mean()), se=se, n=int(v.size))


def difference(a: Values, b: Values, *, paired: bool = False) -> Estimate:
  """mean(a) - mean(b) with the SE of that difference (see the module doc).

  ``b`` may be a plain number (a constant with no noise). ``paired``: a and b
  are measured on the same seeds, in the same order.
  """
  va = _values(a)
  if np.ndim(b) == 0:
    e = estimate(va)
    return Estimate(mean=e.mean - float(b), se=e.se, n=e.n)
  vb = _values(b)
  if paired:
    if va.shape != vb.shape:
      raise ValueError(f'paired values need equal lengths, got {va.size} and {vb.size}')
    return estimate(va - vb)
  ea, eb = estimate(va), estimate(vb)
  return Estimate(mean=ea.mean - eb.mean, se=math.hypot(ea.se, eb.se), n=min(ea.n, eb.n))


def z_score(a: Values, b: Values, *, paired: bool = False) -> float:
  """(mean(a) - mean(b)) / SE of the difference; NaN without a noise estimate.

  A difference of exactly zero noise (identical seeds) gives +-inf, or NaN
  when the means are equal too.
  """
  d = difference(a, b, paired=paired)
  if math.isnan(d.se):
    return float('nan')
  if d.se == 0:
    return math.copysign(math.inf, d.mean) if d.mean != 0 else float('nan')
  return d.mean / d.se


def exceeds(a: Values, b: Values, *, paired: bool = False) -> bool | None:
  """True iff mean(a) - mean(b) > Z x SE of the difference; None if it cannot tell.

  Example: ``exceeds([0.91, 0.90, 0.92], [0.85, 0.86, 0.84])`` is True;
  ``exceeds([0.91, 0.85, 0.88], [0.87, 0.90, 0.86])`` is False (inside the
  noise); ``exceeds([0.9], [0.8])`` is None (one seed has no spread).
  """
  z = z_score(a, b, paired=paired)
  if math.isnan(z):
    d = difference(a, b, paired=paired)
    return None if math.isnan(d.se) else False
  return bool(z > Z)


def increasing(xs: Sequence[Values]) -> bool | None:
  """Each group exceeds the one before it (a trend, step by step); None if undecidable."""
  steps = [exceeds(b, a) for a, b in zip(xs, xs[1:])]
  if any(s is False for s in steps):
    return False
  return None if any(s is None for s in steps) else True


def summary(values: Values) -> dict[str, float | int]:
  """``{"mean", "se", "n"}`` for evidence."""
  return estimate(values).as_dict()
