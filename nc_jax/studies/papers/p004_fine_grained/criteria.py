"""Paper 004's criteria: the constants each claim's gates, checks and criterion
text read, and the gate helpers the claims share.

The constants were fixed before the run (the check thresholds are those of the
first pass) and are never tuned afterwards; every comparison with noise goes
through `spread`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from nc_jax.studies import reproduce
from nc_jax.studies import spread

_NOISE = dict(z=spread.Z, min_seeds=spread.MIN_SEEDS)

C_004A = dict(
    _NOISE,
    train_acc_min=0.99,     # gate: every tested run fits its coarse train labels.
    epochs_past_tpt=2.0,    # gate: trained >= this x the first 100%-train-accuracy epoch.
    nc1_max=0.5,            # gate: final coarse train NC1 (penultimate) <= this: collapsed.
    msdr_min=1.1,           # check: final MSDR above this = structure visible.
    msdr_kept_min=0.5,      # check: (final MSDR - 1) / (initial MSDR - 1) above this:
                            #   training kept at least half of the untrained
                            #   network's fine structure (collapse predicts -> 0).
    clp_ratio_min=0.9,      # check: CLP above this x the true-label probe.
    reconstruction_min=0.8,  # check: k-means on t-SNE recovers the train sub-classes.
)

C_004B = dict(
    _NOISE,
    train_acc_min=0.99,     # gate: every point at sigma^2 >= fit_sigma2_min fits.
    fit_sigma2_min=1.0,     # (the clusters are well apart there: separable data).
    wd_strength_min=1.0,    # gate: max lr x wd x steps (the decay could shrink the
                            # weights by e on its own) so "no effect" is a test.
    rho_sigma2_min=0.7,     # check: Spearman(sigma^2, kept fraction) of every line,
                            #   kept = (MSDR - 1) / (input MSDR - 1): the input's own
                            #   MSDR is 1 + sigma^2, so MSDR alone rises for free.
    rho_dim_min=0.5,        # check: mean over sigma^2 >= dim_sigma2_min of
    dim_sigma2_min=2.0,     #   Spearman(dimension, MSDR).
    wd_spread_max=0.2,      # check: mean (max-min)/mean MSDR over weight decays.
    rho_tau2_min=0.7,       # check: Spearman(tau^2, kept fraction of similar sub-classes).
    tau2_measurable=0.1,    # the tau^2 checks read tau^2 in [this, sigma^2): below it
                            #   the input's own excess (tau^2) is within sampling noise.
)

C_004D = dict(
    _NOISE,
    train_acc_min=0.99,     # gate: every table cell read fitted (sigma^2 >= 2 there).
    rho_dim_min=0.5,        # check: mean over sigma^2 >= dim_sigma2_min of
    dim_sigma2_min=2.0,     #   Spearman(hidden width, MSDR), at the chosen rate.
)

C_004C = dict(
    _NOISE,
    train_acc_min=0.99,     # gate: every run fits its fine (2C) train labels.
    nc1_max=0.5,            # gate: final fine-label train NC1 <= this: the 2C collapse.
    fine_early_msdr_max=1.2,   # check: early, the halves of a class indistinct.
    fine_early_sep_min=1.5,    # check: early, the original classes apart.
    fine_growth_min=1.1,       # check: MSDR over original classes grows x this.
    fine_final_sep_min=1.1,    # check: at the end, original classes still apart.
    nc1_fall_max=0.1,       # gate: final fine-label NC1 <= this x its value at the
                            #   early epoch (the halves were pulled apart: 2C collapse).
)


def extreme(fn: Callable[[list[float]], float], values: Iterable[float | None]
            ) -> float | None:
  """``fn`` (min or max) of ``values``; None if there are none or one is None or NaN."""
  values = list(values)
  if not values or any(v is None or math.isnan(v) for v in values):
    return None
  return float(fn(values))


def moved_gate(pairs: Iterable[tuple[Any, Any]], about: str) -> reproduce.Gate:
  """Gate: training moved every number of ``pairs``, up or down.

  ``pairs``: (trained, untrained) per-seed values (`spread.Values`). The
  value is the smallest |z| of (trained - untrained), paired by seed
  (`spread.z_score`), the threshold `spread.Z`. Where a z is not measurable
  (a value missing or not finite, one seed, or no change at all, as an
  untrained network gives) the value is None and the gate fails. A rise
  only: `reproduce.changed_gate`.
  """
  zs = [abs(spread.z_score(after, before, paired=True)) for after, before in pairs]
  return reproduce.Gate(extreme(min, zs), spread.Z, '>', about)
