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
from nc_jax.studies import settings
from nc_jax.studies import spread
from nc_jax.studies.papers.p002_limits import criteria


def _mid(epochs: Sequence[int]) -> int:
  """The index of the checkpoint nearest half the last epoch."""
  e = np.asarray(epochs)
  return int(np.argmin(np.abs(e - e[-1] / 2)))


def _cascade_health(rs) -> dict[str, Any]:
  return dict(seeds=[r.seed for r in rs],
              train_accuracy=spread.quantity([r['train_accuracy'] for r in rs]),
              test_accuracy=spread.quantity([r['test_accuracy'] for r in rs]))


def _at_init(r, key: str) -> float | None:
  """A curve's value at epoch 0 (the untrained network); None without that checkpoint."""
  return r[key][0] if r['epochs'] and r['epochs'][0] == 0 else None


# ---------------------------------------------------------------------------
# 002a: train collapse without test collapse.
# ---------------------------------------------------------------------------


def evidence_002a(study: reproduce.Study) -> dict[str, Any]:
  rs = study.where(kind='cascade')
  layer = study.config.cascade_layers[-1]
  tv, tvf = f'train_variance_{layer}', f'train_variance_final_means_{layer}'
  st = 'strong_test_variance'
  mids = [_mid(r['epochs']) for r in rs]
  at_mid = lambda key: spread.quantity([r[key][i] for r, i in zip(rs, mids)])
  at_end = lambda key: spread.quantity([r[key][-1] for r in rs])
  return dict(
      layer=layer, **_cascade_health(rs),
      end_epoch=[r['epochs'][-1] for r in rs],
      mid_epoch=[r['epochs'][i] for r, i in zip(rs, mids)],
      train_variance_init=spread.quantity([_at_init(r, tv) for r in rs]),
      train_variance_mid=at_mid(tv), train_variance_end=at_end(tv),
      train_variance_final_means_end=at_end(tvf),
      strong_test_variance_mid=at_mid(st), strong_test_variance_end=at_end(st),
      weak_test_variance_end=at_end('weak_test_variance'))


_QUANTITIES_002A = ('train_variance_init', 'train_variance_mid', 'train_variance_end',
                    'train_variance_final_means_end', 'strong_test_variance_mid',
                    'strong_test_variance_end', 'weak_test_variance_end')


def gates_002a(ev, c) -> dict[str, reproduce.Gate]:
  return criteria.cascade_gates(
      ev, c, [ev[k] for k in _QUANTITIES_002A], ev['train_variance_init'],
      ev['train_variance_end'], ev['train_variance_final_means_end'])


def _times(factor: float, q) -> list[float | None]:
  """``factor`` x each per-seed value of a `spread.quantity` (None stays None)."""
  return [None if v is None else factor * v for v in q['values']]


def checks_002a(ev, c) -> dict[str, bool | None]:
  tv_end, st_end = ev['train_variance_end'], ev['strong_test_variance_end']
  gap = _times(c['gap_min'], tv_end)
  return dict(
      strong_test_far_above_train=spread.exceeds(st_end, gap, paired=True),
      weak_test_far_above_train=spread.exceeds(ev['weak_test_variance_end'], gap, paired=True),
      train_keeps_falling=spread.exceeds(
          _times(c['train_fall_max'], ev['train_variance_mid']), tv_end, paired=True),
      test_levels_off=spread.exceeds(
          st_end, _times(c['test_level_min'], ev['strong_test_variance_mid']), paired=True))


def figure_002a(ev, study) -> list[str]:
  rs = study.where(kind='cascade')
  if not rs:
    return []
  r, layer = rs[0], ev['layer']
  fig = '002a_train_vs_test_variance.png'
  plots.curves(study.file(fig), r['epochs'], {
      'train variance (current means)': r[f'train_variance_{layer}'],
      'train variance (final means, paper)': r[f'train_variance_final_means_{layer}'],
      'strong test variance': r['strong_test_variance'],
      'weak test variance (k-means)': r['weak_test_variance']},
      xlabel='epoch', logy=True,
      title=f'{settings.model(study.config.cascade)}, seed {r.seed}, last hidden layer')
  return [fig]


# ---------------------------------------------------------------------------
# 002d: cascading collapse.
# ---------------------------------------------------------------------------


def _half_epoch(r, key: str, half: float) -> int | None:
  """The first checkpoint epoch where the curve is below ``half`` x its value at
  initialisation; None without a checkpoint at epoch 0, or if it never is."""
  if _at_init(r, key) is None:
    return None
  v = np.asarray(r[key], float)
  below = np.flatnonzero(v <= half * v[0])
  return int(r['epochs'][below[0]]) if len(below) else None


def evidence_002d(study: reproduce.Study) -> dict[str, Any]:
  rs = study.where(kind='cascade')
  layers = list(study.config.cascade_layers)
  per_layer = lambda fn: {l: spread.quantity([fn(r, l) for r in rs]) for l in layers}
  half = criteria.CRITERIA['half']
  return dict(
      layers=layers, **_cascade_health(rs),
      train_variance_init=per_layer(lambda r, l: _at_init(r, f'train_variance_{l}')),
      train_variance_end=per_layer(lambda r, l: r[f'train_variance_{l}'][-1]),
      train_variance_final_means_end=per_layer(
          lambda r, l: r[f'train_variance_final_means_{l}'][-1]),
      half_epoch={l: [_half_epoch(r, f'train_variance_{l}', half) for r in rs]
                  for l in layers})


def gates_002d(ev, c) -> dict[str, reproduce.Gate]:
  last = ev['layers'][-1]
  init, end = ev['train_variance_init'], ev['train_variance_end']
  return criteria.cascade_gates(ev, c, list(end.values()) + list(init.values()), init[last],
                                end[last], ev['train_variance_final_means_end'][last])


def _last_layer_first(half: dict[str, list[int | None]], layers: Sequence[str]) -> bool | None:
  """In every seed the last layer halves, no later than each earlier layer that halves."""
  last = half[layers[-1]]
  if not last:
    return None
  return all(e is not None and all(half[l][i] is None or e <= half[l][i] for l in layers[:-1])
             for i, e in enumerate(last))


def checks_002d(ev, c) -> dict[str, bool | None]:
  layers, end = ev['layers'], ev['train_variance_end']
  return dict(
      last_layer_furthest=spread.all_of([spread.exceeds(end[a], end[b], paired=True)
                                         for a, b in zip(layers, layers[1:])]),
      last_layer_first=_last_layer_first(ev['half_epoch'], layers))


def figure_002d(ev, study) -> list[str]:
  rs = study.where(kind='cascade')
  if not rs:
    return []
  r, figs = rs[0], []
  for kind, label in (('', 'current means'), ('final_means_', 'final means (paper)')):
    fig = f'002d_cascade_{kind or "current_means_"}per_layer.png'
    plots.curves(study.file(fig), r['epochs'],
                 {l: r[f'train_variance_{kind}{l}'] for l in ev['layers']}, xlabel='epoch',
                 logy=True, title=f'Train variance per layer ({label}), seed {r.seed}')
    figs.append(fig)
  return figs
