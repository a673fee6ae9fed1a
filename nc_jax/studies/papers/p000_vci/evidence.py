"""Paper 000's evidence: what each claim reads from the study's runs (by their tags).

`evidence_000a` .. `evidence_000e` return the dicts the claims' gates and
checks (`claims`) judge and their figures (`figures`) draw; the helpers they
share (`trained`, `train_nc1`, `schedule_runs`, ...) and 000e's statistics
of a sweep table (`sweep_statistics`) are here too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nc_jax.probes import correlation
from nc_jax.studies import reproduce
from nc_jax.studies import spread
from nc_jax.studies import sweep
from nc_jax.studies.papers.p000_vci.plan import FALL_METRICS, METRICS_000E, SWEEPS


# ---------------------------------------------------------------------------
# Numbers read by several claims.
# ---------------------------------------------------------------------------


def num(x) -> float:
  """A recorded number as a float: NaN for None (non-finite numbers are recorded as text)."""
  return math.nan if x is None else float(x)


def extreme(pick, values: Sequence[Any]) -> float | None:
  """``pick`` (min or max) of ``values``; None (a gate reading it fails) unless every
  value is finite."""
  return pick(map(float, values)) if spread.finite(values) else None


def trained(results: Sequence[sweep.Result]) -> dict[str, Any]:
  """What every claim's trained gates read: the runs' test accuracies and final train
  losses."""
  acc = [r.final.get('test_accuracy') for r in results]
  return dict(runs=len(results), test_accuracy=spread.quantity(acc),
              min_test_accuracy=extreme(min, acc),
              nonfinite_losses=sum(not spread.finite([r.final.get('train_loss')])
                                   for r in results))


def _initial(r: sweep.Result, key: str) -> Any:
  """A schedule run's ``key`` at epoch 0 (the initialisation); None if not evaluated."""
  epochs = list(r.final.get('epoch', ()))
  return r[key][epochs.index(0)] if 0 in epochs else None


def train_nc1(results: Sequence[sweep.Result]) -> dict[str, Any]:
  """Train NC1 (penultimate) at initialisation (epoch 0) and at the end, per run."""
  return dict(initial=spread.quantity([_initial(r, 'nc1') for r in results]),
              final=spread.quantity([r['nc1'][-1] for r in results]))


def schedule_runs(study, name: str) -> list[sweep.Result]:
  """The finished pretrainings of schedule ``name`` (000c, 000d), one per seed."""
  return study.where(kind='schedule', schedule=name)


# ---------------------------------------------------------------------------
# 000a / 000b: the theorem run and its source.
# ---------------------------------------------------------------------------


def _theorem_and_source(study: reproduce.Study):
  c = study.config
  return (study.one(kind='theorem'),
          study.one(kind='temperature', temperature=c.theorem_temperature, seed=c.seeds[0]))


def evidence_000a(study) -> dict[str, Any]:
  t, src = _theorem_and_source(study)
  return dict(trained=trained([src]),
              layers={l: dict(closed_form=num(t[f'closed_form_{l}']),
                              fitted=num(t[f'fitted_{l}']))
                      for l in study.config.theorem_layers})


def evidence_000b(study) -> dict[str, Any]:
  t, src = _theorem_and_source(study)
  return dict(trained=trained([src]),
              max_relative_change={k: float(np.max(np.asarray(v, float)))  # NaN propagates.
                                   for k, v in t['relative_change'].items()},
              **{k: [num(x) for x in t[k]]
                 for k in ('map_condition_numbers', 'example_fuzziness', 'example_vci')})


# ---------------------------------------------------------------------------
# 000c / 000d: the schedule runs.
# ---------------------------------------------------------------------------


def _spearman_from_epoch1(r: sweep.Result, key: str) -> float:
  """Spearman(epoch, metric) over the evaluated epochs after the initialisation."""
  ep, v = np.asarray(r['epoch'], float), np.asarray(r[key], float)
  return float(correlation.spearman(ep[ep > 0], v[ep > 0]))


def evidence_000c(study) -> dict[str, Any]:
  names = list(study.config.schedules)
  runs = {n: schedule_runs(study, n) for n in names}
  every = [r for n in names for r in runs[n]]
  return dict(
      seeds={n: [r.seed for r in runs[n]] for n in names},
      trained=trained(every), train_nc1=train_nc1(every),
      spearman_with_epoch={n: {k: spread.quantity([_spearman_from_epoch1(r, k)
                                                    for r in runs[n]])
                               for k in FALL_METRICS} for n in names})


def _first_last(rs: Sequence[sweep.Result], key: str) -> dict[str, Any]:
  """Per seed: the value at the first evaluated epoch after init, the last, and last / first."""
  first = np.array([r[key][1] if len(r[key]) > 1 else None for r in rs], float)
  last = np.array([r[key][-1] for r in rs], float)
  with np.errstate(divide='ignore', invalid='ignore'):
    ratio = np.where(first != 0, last / first, math.nan)
  return {k: spread.quantity(v) for k, v in dict(first=first, last=last, ratio=ratio).items()}


def evidence_000d(study) -> dict[str, Any]:
  rs = schedule_runs(study, study.config.vb_schedule)
  u = study.one(kind='ufm')
  return dict(
      seeds={study.config.vb_schedule: [r.seed for r in rs]},
      trained=trained(rs), train_nc1=train_nc1(rs),
      first_epoch=[r['epoch'][1] if len(r['epoch']) > 1 else None for r in rs],
      last_epoch=[r['epoch'][-1] for r in rs],
      within_vb=_first_last(rs, 'within_vb'), within_vb_perp=_first_last(rs, 'within_vb_perp'),
      **{f'ufm_{k}_first_last': [num(u[k][1]), num(u[k][-1])]
         for k in ('within_vb', 'within_vb_perp')})


# ---------------------------------------------------------------------------
# 000e: the sweep table and its statistics.
# ---------------------------------------------------------------------------


def _mlog(accuracies: Mapping[str, Any], pretrain_accuracy) -> float:
  acc = np.asarray(list(accuracies.values()), np.float64)
  return float(correlation.mlog(acc, num(pretrain_accuracy)))


def _sweep_table(study) -> tuple[dict[str, list[dict]], list[sweep.Result]]:
  """{sweep: [one row per run: point, seed, metrics, accuracies, MLOG]} and the runs."""
  table, results = {}, []
  for kind, key in SWEEPS.items():
    rows = []
    for value in study.config[key]:
      for r in study.where(kind=kind, **{kind: value}):
        results.append(r)
        down = {t: num(a) for t, a in r['downstream_accuracy'].items()}
        rows.append(dict(point=float(value), seed=r.seed,
                         **{k: num(r[k]) for k in METRICS_000E},
                         test_accuracy=num(r['test_accuracy']), downstream=down,
                         mlog=_mlog(down, r['test_accuracy'])))
    table[kind] = rows
  return table, results


def _pearson_mlog(rows: Sequence[Mapping[str, Any]], k: str) -> float:
  """Pearson r of metric ``k`` and MLOG over ``rows``."""
  return float(correlation.pearson([row[k] for row in rows], [row['mlog'] for row in rows]))


def _by_seed(rows: Sequence[Mapping[str, Any]], points: list[float]) -> dict[int, list]:
  """{seed: its rows in point order}, for the seeds with a row at every point."""
  out = {}
  for seed in sorted({row['seed'] for row in rows}):
    mine = sorted((row for row in rows if row['seed'] == seed), key=lambda row: row['point'])
    if [row['point'] for row in mine] == points:
      out[seed] = mine
  return out


def sweep_statistics(table: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, Any]:
  """000e's statistics of a sweep table (see `_sweep_table`).

  Returns:
    ``seeds`` ({sweep: fewest seeds at a point}); ``by_point`` ({sweep:
    {metric or 'mlog': [{point, values, mean, se, n}]}}); ``pearson_by_seed``
    ({sweep: {metric: `spread.quantity` of Pearson(metric, MLOG) over the
    points, one per seed, and its ``seeds``}}); ``pearson_pooled`` ({sweep:
    {metric: r over every run}}, the first pass's statistic, reported);
    ``nonfinite_mlog`` (count).
  """
  out = dict(seeds={}, by_point={}, pearson_by_seed={}, pearson_pooled={})
  for s, rows in table.items():
    points = sorted({row['point'] for row in rows})
    at = {p: [row for row in rows if row['point'] == p] for p in points}
    out['seeds'][s] = min((len(v) for v in at.values()), default=0)
    out['by_point'][s] = {k: [dict(point=p, **spread.quantity([row[k] for row in at[p]]))
                              for p in points] for k in METRICS_000E + ('mlog',)}
    by_seed = _by_seed(rows, points)
    out['pearson_by_seed'][s] = {
        k: dict(seeds=list(by_seed), **spread.quantity([_pearson_mlog(mine, k)
                                                         for mine in by_seed.values()]))
        for k in METRICS_000E}
    out['pearson_pooled'][s] = {k: _pearson_mlog(rows, k) for k in METRICS_000E}
  out['nonfinite_mlog'] = sum(not math.isfinite(row['mlog'])
                              for rows in table.values() for row in rows)
  return out


def evidence_000e(study) -> dict[str, Any]:
  table, results = _sweep_table(study)
  return dict(trained=trained(results), **sweep_statistics(table), runs=table)
