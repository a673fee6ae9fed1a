"""Paper 003's gates: the preconditions every claim reads before its checks.

`TRAIN_ACC_MIN`, `TEST_ACC_MIN` and `CDNV_COLLAPSE_MAX` were fixed before the
run and never tuned; `GATES` is their part of every claim's ``constants``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from nc_jax.studies import reproduce
from nc_jax.studies import spread
from nc_jax.studies.papers.p003_progressive import evidence

# Preconditions every claim reads (fixed before the run, never tuned).
TRAIN_ACC_MIN = 0.9  # Every run read fits its training labels (noisy ones included).
TEST_ACC_MIN = 0.4  # and learned the task: test accuracy 4x chance (10 classes).
CDNV_COLLAPSE_MAX = 0.5  # Collapse happened: last layer's seed-mean train CDNV.

GATES = dict(train_acc_min=TRAIN_ACC_MIN, test_acc_min=TEST_ACC_MIN,
             cdnv_collapse_max=CDNV_COLLAPSE_MAX, min_seeds=spread.MIN_SEEDS,
             z=spread.Z)


def gate_runs(groups: Sequence[Mapping[str, Any]], c, seeds: int | None = None
              ) -> dict[str, reproduce.Gate]:
  """Enough seeds (default: the fewest of a group); every run read trained:
  fits its training labels, beats chance, ends with a finite loss."""
  every = lambda key: [x for g in groups for x in g[key]]
  low = lambda xs: min(xs) if spread.finite(xs) else None
  if seeds is None:
    seeds = min((len(g['seeds']) for g in groups), default=0)
  return dict(
      seeds=reproduce.seeds_gate(seeds),
      runs_trained=reproduce.at_least(
          low(every('train_accuracy')), c['train_acc_min'],
          'smallest final train accuracy of the runs read'),
      runs_generalize=reproduce.at_least(
          low(every('test_accuracy')), c['test_acc_min'],
          'smallest test accuracy of the runs read (chance 0.1)'),
      finite_loss=reproduce.finite_gate(
          every('train_loss'), 'runs with a non-finite final train loss (divergence)'))


def gate_collapse(groups: Sequence[Mapping[str, Any]], c,
                  about: str = 'largest seed-mean train CDNV of the last layer'
                  ) -> reproduce.Gate:
  """Collapse happened: the largest seed-mean last-layer train CDNV over ``groups``."""
  means = [spread.quantity(evidence.last(g['cdnv']))['mean'] for g in groups]
  return reproduce.at_most(max(means) if means and None not in means else None,
                           c['cdnv_collapse_max'], about)


def gate_changed(pairs: Sequence[tuple[Any, Any]], about: str) -> reproduce.Gate:
  """The weakest `reproduce.changed_gate(after, before)` over ``pairs``; not
  measured (value None: it fails) when a pair is not measurable or there is none."""
  gates = [reproduce.changed_gate(after, before, about) for after, before in pairs]
  if not gates or any(math.isnan(g.value) for g in gates):
    return reproduce.Gate(None, spread.Z, '>', about)
  return min(gates, key=lambda g: g.value)


def gate_above_one(counts: Sequence[int], most_over: str) -> reproduce.Gate:
  """Some layer's ratio exceeds 1 (``counts``: per group, its layers above 1),
  else the check of where such layers lie is vacuous."""
  return reproduce.at_least(max(counts, default=0), 1, 'layers whose seed-mean '
                            f'memorization ratio exceeds 1 by > 2 SE {most_over}')

