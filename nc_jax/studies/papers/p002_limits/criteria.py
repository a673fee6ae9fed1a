"""Paper 002's thresholds, the pre-study's rule, and the gates and
correlations its claims share.

The gates' thresholds (`TRAIN_ACCURACY_MIN`, `TEST_ACCURACY_MIN`,
`COLLAPSE_MAX`, `COLLAPSE_FALL`) say what every claim's runs must show
before its checks are read; `CRITERIA` holds the checks' thresholds.
`COLLAPSE_FALL`, `CRITERIA`'s ``level_ratio``, ``collapse_fall`` and
``span_min``, and the pre-study's rule (`choose`) were fixed for the second
pass (issue 24) before any of its runs; the others before the first run.
None was tuned afterwards. `GATES` is the gates' part of every claim's
``constants`` (its criterion sentence is formatted from them).
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
COLLAPSE_MAX = 0.1  # Train collapse happened: the last hidden layer's final train
# variance (within-class over between-class spread) at most this,
COLLAPSE_FALL = 0.1  # and at most this x its value when the training set was
# first fitted (train accuracy >= TRAIN_ACCURACY_MIN): collapse in the terminal phase.

# The study's thresholds (never tuned after a run).
CRITERIA = dict(
    gap_min=5.0,          # 002a: final test variances exceed this x final train variance.
    level_ratio=0.5,      # 002a: over the terminal phase a test variance falls by less
    # than this x as many decades as the train variance.
    size_rho_min=0.8,     # 002b: |Spearman(size, variance)| of the seed means.
    transfer_rho_min=0.5,  # 002c: Spearman(checkpoint TV, fine-tuned accuracy).
    span_min=100.0,       # 002c: the checkpoints' train variances span this factor.
    collapse_fall=0.1,    # 002d: a layer has collapsed once its train variance is at
    # most this x its value when the training set was first fitted.
)

GATES = dict(train_accuracy_min=TRAIN_ACCURACY_MIN, test_accuracy_min=TEST_ACCURACY_MIN,
             collapse_max=COLLAPSE_MAX, collapse_fall_max=COLLAPSE_FALL,
             min_seeds=spread.MIN_SEEDS, z=spread.Z)

PRESTUDY_TEXT = (
    'The setting was chosen by a pre-study before the study\'s runs: each candidate once at '
    'a seed the study does not use; among those that fitted their training set (train '
    'accuracy >= {train_accuracy_min}) without diverging, the one of smallest final train '
    'variance at the last hidden layer (ties: the one listed first); no test number was '
    'read. ')


def choose(rows: Sequence[dict[str, Any]], fitted: float = TRAIN_ACCURACY_MIN) -> str | None:
  """The pre-study's rule over its runs, in the candidates' order.

  Args:
    rows: ``{setting, train_accuracy, final_train_variance, diverged}`` per
      candidate, nearest the paper first.
    fitted: the train accuracy a candidate's run must reach.

  Returns:
    The chosen setting's name; None when no candidate fitted.
  """
  ok = [r for r in rows if not r.get('diverged') and spread.finite(
      [r.get('train_accuracy'), r.get('final_train_variance')])
        and r['train_accuracy'] >= fitted]
  if not ok:
    return None
  best = min(float(r['final_train_variance']) for r in ok)
  return next(r['setting'] for r in ok if float(r['final_train_variance']) == best)


def prestudy_evidence(study: reproduce.Study) -> dict[str, Any]:
  """The pre-study's runs, the rule's choice and the config's."""
  pre = study.config.get('prestudy')
  if pre is None:
    return dict(rows=[], chosen_by_rule=None, chosen_in_config=None)
  rows = []
  for name in pre.order:
    found = study.where(kind='prestudy', setting=name)
    r = found[0] if found else None
    get = lambda k, r=r: None if r is None else r.final.get(k)
    rows.append(dict(setting=name, **dict(pre.candidates[name]),
                     train_accuracy=get('train_accuracy'), diverged=get('diverged'),
                     fit_epoch=get('fit_epoch'), fit_train_variance=get('fit_train_variance'),
                     final_train_variance=get('final_train_variance'), ran=r is not None))
  return dict(rows=rows, chosen_by_rule=choose(rows) if all(r['ran'] for r in rows) else None,
              chosen_in_config=pre.chosen)


def gate_setting(pre: dict[str, Any]) -> reproduce.Gate:
  """The study ran the setting its pre-study's rule chooses (1) or not (0)."""
  same = pre['chosen_by_rule'] is not None and pre['chosen_by_rule'] == pre['chosen_in_config']
  return reproduce.at_least(float(same), 1.0,
                            "the config's setting is the pre-study rule's choice (1 = yes)")


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


def ratios(final: Sequence[Any], fit: Sequence[Any]) -> list[float | None]:
  """final / fit per run; None where either is missing or fit is not positive."""
  return [None if not spread.finite([a, b]) or float(b) <= 0 else float(a) / float(b)
          for a, b in zip(final, fit)]


def collapse_gates(final: Sequence[Any], fit: Sequence[Any], c,
                   what: str = 'run') -> dict[str, reproduce.Gate]:
  """Train collapse in every run read: the final train variance (last hidden
  layer) small, and a tenth or less of its value when the training set was
  first fitted (a run that never fitted has no ratio: the gate fails)."""
  r = ratios(final, fit)
  return dict(
      train_collapse=gate_collapse(
          final, c, f'largest final train variance (last hidden layer) of the {what}s read'),
      train_collapse_from_fit=reproduce.at_most(
          extreme(max, r) if r else None, c['collapse_fall_max'],
          f'largest (final train variance / its value when first fitted) of the {what}s read'))


def run_gates(quantities, train_accuracy, test_accuracy, c) -> dict[str, reproduce.Gate]:
  """Enough seeds in every compared quantity, each of them finite; every run
  read fitted its training set and learned."""
  return dict(seeds=reproduce.seeds_gate(min((q['n'] for q in quantities), default=0)),
              runs_fitted=gate_fitted(train_accuracy, c),
              runs_trained=gate_learned(test_accuracy, c),
              finite=gate_finite(quantities))


def cascade_gates(ev, c, quantities, init, end) -> dict[str, reproduce.Gate]:
  """002a's and 002d's gates: the pre-study's choice, `run_gates`, then the
  last hidden layer collapsed (`collapse_gates`) and fell from
  initialisation."""
  return dict(
      setting_chosen_by_rule=gate_setting(ev['prestudy']),
      **run_gates(quantities, ev['train_accuracy']['values'],
                  ev['test_accuracy']['values'], c),
      **collapse_gates(end['values'], ev['fit_train_variance']['values'], c, 'seed'),
      train_variance_fell=reproduce.changed_gate(
          init, end, 'z-score of (at initialisation - at T), last hidden layer'))


def spearman_rho(x: Sequence[Any], y: Sequence[Any]) -> float | None:
  """Spearman(x, y); None unless both are finite, of one length, and it is finite."""
  if not (spread.finite(x) and spread.finite(y)) or len(x) != len(y):
    return None
  rho = float(spearman([float(v) for v in x], [float(v) for v in y]))
  return rho if math.isfinite(rho) else None
