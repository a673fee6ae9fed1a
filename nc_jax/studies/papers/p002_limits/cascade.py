"""Claims 002a and 002d, read from the cascade runs (``kind='cascade'``).

002a: train collapse without test collapse (the train variance keeps falling,
the test variances level off far above it). 002d: cascading collapse (the
last hidden layer falls first and furthest). Each claim's evidence, gates,
checks and figure; `claims` assembles them into `ClaimSpec`s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nc_jax import plots
from nc_jax.studies import reproduce
from nc_jax.studies import spread
from nc_jax.studies.papers.p002_limits import criteria


def _fit_index(r) -> int | None:
  """The first checkpoint at or after the epoch the training set was fitted."""
  if r['fit_epoch'] is None:
    return None
  after = [i for i, e in enumerate(r['epochs']) if e >= r['fit_epoch']]
  return after[0] if after else None


def _cascade_health(study, rs) -> dict[str, Any]:
  return dict(seeds=[r.seed for r in rs],
              prestudy=criteria.prestudy_evidence(study),
              train_accuracy=spread.quantity([r['train_accuracy'] for r in rs]),
              test_accuracy=spread.quantity([r['test_accuracy'] for r in rs]),
              fit_epoch=[r['fit_epoch'] for r in rs],
              fit_train_variance=spread.quantity([r['fit_train_variance'] for r in rs]))


def _at_init(r, key: str) -> float | None:
  """A curve's value at epoch 0 (the untrained network); None without that checkpoint."""
  return r[key][0] if r['epochs'] and r['epochs'][0] == 0 else None


def _decades(a, b) -> float | None:
  """log10(a / b): the decades a curve fell from a to b; None unless both are positive."""
  if not spread.finite([a, b]) or a <= 0 or b <= 0:
    return None
  return float(np.log10(a / b))


# ---------------------------------------------------------------------------
# 002a: train collapse without test collapse.
# ---------------------------------------------------------------------------

# The three variances of paper 002 sec 3.1, each around the final model's means.
_VARIANCES = {'train': 'train_variance_final_means_{layer}',
              'strong_test': 'strong_test_variance_final_means',
              'weak_test': 'weak_test_variance_final_means'}


def evidence_002a(study: reproduce.Study) -> dict[str, Any]:
  rs = study.where(kind='cascade')
  layer = study.config.cascade_layers[-1]
  keys = {k: v.format(layer=layer) for k, v in _VARIANCES.items()}
  fit = [_fit_index(r) for r in rs]
  at = lambda key, i, r: None if i is None else r[key][i]
  ev = dict(layer=layer, **_cascade_health(study, rs),
            fit_checkpoint_epoch=[None if i is None else r['epochs'][i]
                                  for r, i in zip(rs, fit)],
            end_epoch=[r['epochs'][-1] for r in rs],
            train_variance_init=spread.quantity(
                [_at_init(r, keys['train']) for r in rs]))
  for name, key in keys.items():
    ev[f'{name}_variance_at_fit'] = spread.quantity([at(key, i, r) for r, i in zip(rs, fit)])
    ev[f'{name}_variance_end'] = spread.quantity([r[key][-1] for r in rs])
    ev[f'{name}_decades_fallen'] = spread.quantity(
        [_decades(at(key, i, r), r[key][-1]) for r, i in zip(rs, fit)])
  return ev


_QUANTITIES_002A = tuple(f'{n}_{q}' for n in _VARIANCES
                         for q in ('variance_at_fit', 'variance_end', 'decades_fallen'))


def gates_002a(ev, c) -> dict[str, reproduce.Gate]:
  return criteria.cascade_gates(
      ev, c, [ev[k] for k in _QUANTITIES_002A + ('train_variance_init',)],
      ev['train_variance_init'], ev['train_variance_end'])


def _times(factor: float, q) -> list[float | None]:
  """``factor`` x each per-seed value of a `spread.quantity` (None stays None)."""
  return [None if v is None else factor * v for v in q['values']]


def checks_002a(ev, c) -> dict[str, bool | None]:
  gap = _times(c['gap_min'], ev['train_variance_end'])
  train_fall = _times(c['level_ratio'], ev['train_decades_fallen'])
  out = {}
  for name in ('strong_test', 'weak_test'):
    out[f'{name}_far_above_train'] = spread.exceeds(ev[f'{name}_variance_end'], gap,
                                                    paired=True)
    out[f'{name}_levels_off'] = spread.exceeds(train_fall, ev[f'{name}_decades_fallen'],
                                               paired=True)
  return out


def figure_002a(ev, study) -> list[str]:
  rs = study.where(kind='cascade')
  if not rs:
    return []
  r, layer = rs[0], ev['layer']
  fig = '002a_train_vs_test_variance.png'
  epochs = [max(e, 0.5) for e in r['epochs']]  # Epoch 0 at 0.5 on the log axis.
  plots.curves(study.file(fig), epochs, {
      'train variance (final means, paper)': r[f'train_variance_final_means_{layer}'],
      'train variance (current means)': r[f'train_variance_{layer}'],
      'strong test variance (final means)': r['strong_test_variance_final_means'],
      'weak test variance (final k-means centres)': r['weak_test_variance_final_means']},
      xlabel='epoch (0 drawn at 0.5)', logx=True, logy=True,
      title=f"Last hidden layer, seed {r.seed} (training set fitted at epoch {r['fit_epoch']})")
  return [fig]


# ---------------------------------------------------------------------------
# 002d: cascading collapse.
# ---------------------------------------------------------------------------


def _collapse_epoch(r, layer: str, fall: float) -> int | None:
  """The first evaluated epoch at which the layer's train variance (current
  means) is at most ``fall`` x its value when the training set was first
  fitted; None if it never is (or the run never fitted)."""
  if r['fit_epoch'] is None:
    return None
  epochs = np.asarray(r['eval_epochs'])
  v = np.asarray(r[f'eval_train_variance_{layer}'], float)
  at_fit = v[np.flatnonzero(epochs == r['fit_epoch'])[0]]
  below = np.flatnonzero((epochs >= r['fit_epoch']) & (v <= fall * at_fit))
  return int(epochs[below[0]]) if len(below) else None


def evidence_002d(study: reproduce.Study) -> dict[str, Any]:
  rs = study.where(kind='cascade')
  layers = list(study.config.cascade_layers)
  per_layer = lambda fn: {l: spread.quantity([fn(r, l) for r in rs]) for l in layers}
  fall = criteria.CRITERIA['collapse_fall']
  return dict(
      layers=layers, **_cascade_health(study, rs),
      train_variance_init=per_layer(lambda r, l: _at_init(r, f'train_variance_{l}')),
      train_variance_end=per_layer(lambda r, l: r[f'train_variance_{l}'][-1]),
      collapse_epoch={l: [_collapse_epoch(r, l, fall) for r in rs] for l in layers})


def gates_002d(ev, c) -> dict[str, reproduce.Gate]:
  last = ev['layers'][-1]
  init, end = ev['train_variance_init'], ev['train_variance_end']
  return criteria.cascade_gates(ev, c, list(end.values()) + list(init.values()), init[last],
                                end[last])


def _in_order(collapse: dict[str, list[int | None]], layers: Sequence[str]) -> bool | None:
  """In every seed the last layer collapses, and each earlier layer no sooner
  than the one after it (a layer that never collapses is the latest)."""
  last = collapse[layers[-1]]
  if not last:
    return None
  late = lambda e: np.inf if e is None else e
  return all(e is not None and all(late(collapse[a][i]) >= late(collapse[b][i])
                                   for a, b in zip(layers, layers[1:]))
             for i, e in enumerate(last))


def checks_002d(ev, c) -> dict[str, bool | None]:
  layers, end = ev['layers'], ev['train_variance_end']
  return dict(
      last_layer_furthest=spread.all_of([spread.exceeds(end[a], end[b], paired=True)
                                         for a, b in zip(layers, layers[1:])]),
      collapse_in_cascade_order=_in_order(ev['collapse_epoch'], layers))


def figure_002d(ev, study) -> list[str]:
  rs = study.where(kind='cascade')
  if not rs:
    return []
  r = rs[0]
  fig = '002d_cascade_per_layer.png'
  epochs = [max(e, 0.5) for e in r['eval_epochs']]
  plots.curves(study.file(fig), epochs,
               {l: r[f'eval_train_variance_{l}'] for l in ev['layers']},
               xlabel='epoch (0 drawn at 0.5)', logx=True, logy=True,
               title=f"Train variance per layer (current means), seed {r.seed}")
  return [fig]
