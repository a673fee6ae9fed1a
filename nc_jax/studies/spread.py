"""Seeds and their spread: the one place a study decides that a exceeds b.

``../shared/REPRODUCTIONS.md``: a claim about a difference, an order or a
trend uses at least `MIN_SEEDS` seeds, reports mean and standard error, and
counts a difference only when it exceeds its noise. Every paper module
decides "a exceeds b" with `exceeds`:

    mean(a) - mean(b) > Z * SE(mean(a) - mean(b)),   Z = 2,

the SE of the difference being ``sqrt(SE_a^2 + SE_b^2)`` for independent
samples, or the SE of the per-seed differences when ``paired`` (a and b
measured on the same seeds). A plain number on either side is a constant
(SE 0); a `quantity` dict stands for its per-seed values, and a `bootstrap`
dict (``{"mean", "se", "draws"}``, no ``values``) for a statistic whose SE
was estimated by resampling seeds. Where the noise
cannot be estimated (one seed against a constant) or a value is missing or
not finite, the answer is ``None`` (cannot tell), which a claim turns into
"inconclusive"; `below`, `increasing`, `all_of` and `any_of` follow the
same three-valued logic.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

MIN_SEEDS = 3  # Seeds a claim about a difference, order or trend needs.
Z = 2.0  # A difference counts when it exceeds Z standard errors.

# Per-seed values: a sequence of numbers (None or NaN where a run gave none),
# a plain number (a constant), a `quantity` dict (its ``values``), or a
# `bootstrap` dict (a statistic with its resampled SE).
Values = Sequence[Any] | np.ndarray | float | Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Estimate:
  """Mean and standard error of the mean of ``n`` values (``se`` NaN if n < 2)."""

  mean: float
  se: float
  n: int

  def as_dict(self) -> dict[str, float | int]:
    return dict(mean=self.mean, se=self.se, n=self.n)


def _is_constant(x: Values) -> bool:
  return not isinstance(x, Mapping) and np.ndim(x) == 0


def _resampled(x: Values) -> bool:
  """A `bootstrap` dict: a statistic with its SE, no per-seed values."""
  return isinstance(x, Mapping) and 'values' not in x and 'draws' in x


def _raw(x: Values) -> list[Any]:
  if _resampled(x):
    return [x.get('mean'), x.get('se')]
  if isinstance(x, Mapping):
    x = x['values']
  return [x] if _is_constant(x) else list(np.asarray(x, object).ravel())


def _float(v: Any) -> float | None:
  """A recorded number as a float; None for None, NaN, inf (recorded as text too)."""
  if v is None:
    return None
  f = float(v)
  return f if math.isfinite(f) else None


def finite(values: Values) -> bool:
  """Every value is a finite number (and there is at least one)."""
  raw = _raw(values)
  return bool(raw) and all(_float(v) is not None for v in raw)


def _as_estimate(x: Values) -> Estimate:
  """A side of a difference as an Estimate (a constant has SE 0)."""
  if _resampled(x):
    return Estimate(mean=float(x['mean']), se=float(x['se']), n=int(x.get('n', 0)))
  if _is_constant(x):
    return Estimate(mean=float(x), se=0.0, n=1)
  return estimate(x)


def _values(x: Values) -> np.ndarray:
  v = np.asarray(_raw(x), object)
  if v.size == 0:
    raise ValueError('expected a non-empty sequence of values, got none')
  if not finite(x):
    raise ValueError(f'values must be finite numbers, got {v.tolist()}')
  return v.astype(np.float64)


def estimate(values: Values) -> Estimate:
  """Mean and standard error (sample std with ddof=1 over sqrt(n)).

  Raises:
    ValueError: no values, or a value that is missing or not finite.
  """
  v = _values(values)
  se = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else float('nan')
  return Estimate(mean=float(v.mean()), se=se, n=int(v.size))


def quantity(values: Values) -> dict[str, Any]:
  """Evidence for one compared quantity: ``{"values", "mean", "se", "n"}``.

  ``values`` are the per-seed numbers (None where not finite); mean and se
  are None unless every value is finite (then the claim cannot tell).
  """
  vals = [_float(v) for v in _raw(values)]
  if finite(vals):
    e = estimate(vals)
    return dict(values=vals, mean=e.mean, se=e.se, n=e.n)
  return dict(values=vals, mean=None, se=None, n=len(vals))


def summary(values: Values) -> dict[str, float | int]:
  """``{"mean", "se", "n"}`` of finite values (`estimate`)."""
  return estimate(values).as_dict()


def difference(a: Values, b: Values, *, paired: bool = False) -> Estimate:
  """mean(a) - mean(b) with the SE of that difference (see the module doc).

  A plain number on either side is a constant (no noise); a `bootstrap`
  dict brings its own SE. ``paired``: a and b are measured on the same seeds,
  in the same order.
  """
  if _resampled(a) or _resampled(b):
    if paired:
      raise ValueError('a bootstrap estimate has no per-seed values to pair')
    ea, eb = _as_estimate(a), _as_estimate(b)
    return Estimate(mean=ea.mean - eb.mean, se=math.hypot(ea.se, eb.se), n=min(ea.n, eb.n))
  if _is_constant(b):
    e = estimate(a)
    return Estimate(mean=e.mean - float(b), se=e.se, n=e.n)
  if _is_constant(a):
    e = estimate(b)
    return Estimate(mean=float(a) - e.mean, se=e.se, n=e.n)
  va, vb = _values(a), _values(b)
  if paired:
    if va.shape != vb.shape:
      raise ValueError(f'paired values need equal lengths, got {va.size} and {vb.size}')
    return estimate(va - vb)
  ea, eb = estimate(va), estimate(vb)
  return Estimate(mean=ea.mean - eb.mean, se=math.hypot(ea.se, eb.se), n=min(ea.n, eb.n))


def _measurable(a: Values, b: Values, paired: bool) -> bool:
  if not (finite(a) and finite(b)):
    return False
  if _resampled(a) or _resampled(b):
    return not paired
  return (not paired or _is_constant(a) or _is_constant(b)
          or len(_raw(a)) == len(_raw(b)))


def z_score(a: Values, b: Values, *, paired: bool = False) -> float:
  """(mean(a) - mean(b)) / SE of the difference.

  NaN where it cannot be measured: a value missing or not finite, paired
  sides of different lengths, no noise estimate (one value), or equal means
  with zero noise; +-inf for a nonzero difference with zero noise.
  """
  if not _measurable(a, b, paired):
    return float('nan')
  d = difference(a, b, paired=paired)
  if math.isnan(d.se):
    return float('nan')
  if d.se == 0:
    return math.copysign(math.inf, d.mean) if d.mean != 0 else float('nan')
  return d.mean / d.se


def exceeds(a: Values, b: Values, *, paired: bool = False) -> bool | None:
  """True iff mean(a) - mean(b) > Z x SE of the difference; None if it cannot tell.

  It cannot tell (None) when a value is missing or not finite, or when
  there is no noise estimate (one seed and no second side with spread).

  Example: ``exceeds([0.91, 0.90, 0.92], [0.85, 0.86, 0.84])`` is True;
  ``exceeds([0.91, 0.85, 0.88], [0.87, 0.90, 0.86])`` is False (inside the
  noise); ``exceeds([0.9], [0.8])`` is None (one seed has no spread).
  """
  if not _measurable(a, b, paired):
    return None
  d = difference(a, b, paired=paired)
  if math.isnan(d.se):
    return None
  return bool(d.mean > Z * d.se) if d.se > 0 else bool(d.mean > 0)


def below(a: Values, b: Values, *, paired: bool = False) -> bool | None:
  """mean(a) is below mean(b) by more than its noise: ``exceeds(b, a)``."""
  return exceeds(b, a, paired=paired)


def increasing(xs: Sequence[Values]) -> bool | None:
  """Each group exceeds the one before it (a trend, step by step); None if undecidable."""
  if len(xs) < 2:
    return None
  return all_of([exceeds(b, a) for a, b in zip(xs, xs[1:])])


def all_of(checks: Sequence[bool | None]) -> bool | None:
  """Three-valued AND: False if one is False, else None if one is None (or none given)."""
  checks = list(checks)
  if any(c is False for c in checks):
    return False
  return None if not checks or any(c is None for c in checks) else True


def any_of(checks: Sequence[bool | None]) -> bool | None:
  """Three-valued OR: True if one is True, else None if one is None (or none given)."""
  checks = list(checks)
  if any(c is True for c in checks):
    return True
  return None if not checks or any(c is None for c in checks) else False


def bootstrap(statistic, groups: Sequence[Values], *, draws: int = 2000,
              seed: int = 0) -> dict[str, Any]:
  """A statistic of several groups of per-seed values, with its SE from resampling seeds.

  Each replicate redraws every group's values with replacement (independently
  per group: one group per sweep point, its seeds independent trainings) and
  recomputes ``statistic``; the SE is the replicates' standard deviation.

  Args:
    statistic: ``f(list of 1-d float arrays, one per group) -> float``, e.g.
      Pearson r of the group means of two quantities.
    groups: per group, its per-seed values (any `Values`; paired quantities
      are passed as one group of rows, ``[[x, y], ...]``, resampled by row).
    draws: replicates.
    seed: the resampling's NumPy seed (fixed: the SE is reproducible).

  Returns:
    ``{"mean": statistic(groups), "se", "n": fewest seeds in a group, "draws"}``
    (mean and se None when a value is not finite or a group has < 2 seeds);
    `exceeds` and `below` read it as a statistic with its SE.
  """
  arrays = [np.asarray(g, np.float64) for g in groups]
  n = min((len(a) for a in arrays), default=0)
  if n < 2 or not all(np.all(np.isfinite(a)) for a in arrays):
    return dict(mean=None, se=None, n=n, draws=draws)
  rng = np.random.default_rng(seed)
  value = float(statistic(arrays))
  reps = [statistic([a[rng.integers(0, len(a), len(a))] for a in arrays])
          for _ in range(draws)]
  reps = np.asarray(reps, np.float64)
  reps = reps[np.isfinite(reps)]  # A resample with no spread has no Pearson r.
  se = float(reps.std(ddof=1)) if reps.size > 1 else None
  return dict(mean=value if math.isfinite(value) else None, se=se, n=n, draws=draws)
