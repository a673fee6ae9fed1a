"""Paper 002's thresholds and the gates and correlations its claims share.

The gates' thresholds (`TRAIN_ACCURACY_MIN`, `TEST_ACCURACY_MIN`,
`COLLAPSE_MAX`) say what every claim's runs must show before its checks are
read; `CRITERIA` holds the checks' thresholds. Both were fixed before the
first run and never tuned afterwards. `GATES` is the gates' part of every
claim's ``constants`` (its criterion sentence is formatted from them).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from nc_jax.probes.correlation import spearman
from nc_jax.studies import reproduce
from nc_jax.studies import spread

# Gates: what every claim's runs must show before its checks are read.
TRAIN_ACCURACY_MIN = 0.99  # Every run fitted its training set (the terminal phase).
TEST_ACCURACY_MIN = 0.5  # Every 10-class run learned (chance 0.1): not a broken run.
COLLAPSE_MAX = 0.1  # Train collapse happened: the last hidden layer's train
# variance (within-class over between-class spread) at most this.

# The study's thresholds (fixed before the first run; never tuned afterwards).
CRITERIA = dict(
    gap_min=5.0,          # 002a: final test variances exceed this x final train variance.
    train_fall_max=0.5,   # 002a: this x TV(T/2) exceeds TV(T): train collapse continues.
    test_level_min=0.7,   # 002a: strong test variance(T) exceeds this x its value at T/2.
    size_rho_min=0.8,     # 002b: |Spearman(size, variance)| of the seed means.
    transfer_rho_min=0.5,  # 002c: Spearman(checkpoint TV, fine-tuned accuracy).
    half=0.5,             # 002d: a layer's variance falls below this x its initial value.
)

GATES = dict(train_accuracy_min=TRAIN_ACCURACY_MIN, test_accuracy_min=TEST_ACCURACY_MIN,
             collapse_max=COLLAPSE_MAX, min_seeds=spread.MIN_SEEDS, z=spread.Z)


def extreme(fn, values: Sequence[Any]) -> float | None:
  """min / max of the values; None (not measured) unless every one is finite."""
  return float(fn(float(v) for v in values)) if spread.finite(values) else None


def gate_fitted(values, c, what='run') -> reproduce.Gate:
  return reproduce.at_least(extreme(min, values), c['train_accuracy_min'],
                            f'smallest final train accuracy of the {what}s read')


def gate_learned(values, c, what='run') -> reproduce.Gate:
  return reproduce.at_least(extreme(min, values), c['test_accuracy_min'],
                            f'smallest final test accuracy of the {what}s read (chance 0.1)')


def gate_finite(quantities: Sequence[dict[str, Any]]) -> reproduce.Gate:
  return reproduce.finite_gate([v for q in quantities for v in q['values']],
                               'compared numbers that are missing, NaN or inf')


def gate_collapse(values, c, about: str) -> reproduce.Gate:
  return reproduce.at_most(extreme(max, values), c['collapse_max'], about)


def run_gates(quantities, train_accuracy, test_accuracy, c) -> dict[str, reproduce.Gate]:
  """Enough seeds in every compared quantity, each of them finite; every run
  read fitted its training set and learned."""
  return dict(seeds=reproduce.seeds_gate(min((q['n'] for q in quantities), default=0)),
              runs_fitted=gate_fitted(train_accuracy, c),
              runs_trained=gate_learned(test_accuracy, c),
              finite=gate_finite(quantities))


def cascade_gates(ev, c, quantities, init, end, final_means_end) -> dict[str, reproduce.Gate]:
  """002a's and 002d's gates: `run_gates`, then the last hidden layer's train
  variance collapsed (final means) and fell from initialisation."""
  return dict(
      **run_gates(quantities, ev['train_accuracy']['values'],
                  ev['test_accuracy']['values'], c),
      train_collapse=gate_collapse(
          final_means_end['values'], c,
          'largest final train variance (final means) of the last hidden layer over the seeds'),
      train_variance_fell=reproduce.changed_gate(
          init, end, 'z-score of (at initialisation - at T), last hidden layer'))


def spearman_rho(x: Sequence[Any], y: Sequence[Any]) -> float | None:
  """Spearman(x, y); None unless both are finite, of one length, and it is finite."""
  if not (spread.finite(x) and spread.finite(y)) or len(x) != len(y):
    return None
  rho = float(spearman([float(v) for v in x], [float(v) for v in y]))
  return rho if math.isfinite(rho) else None
