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
  """What every claim's trained gates read: the runs' test accuracies, final train
  accuracies (on the evaluated training subset) and final train losses."""
  acc = [r.final.get('test_accuracy') for r in results]
  train_acc = [r.final.get('train_accuracy') for r in results]
  return dict(runs=len(results), test_accuracy=spread.quantity(acc),
              min_test_accuracy=extreme(min, acc), min_train_accuracy=extreme(min, train_acc),
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


def _first_last(series: Sequence[Sequence[Any]]) -> dict[str, Any]:
  """Per seed (one series each, epoch 0 first): the value at initialisation, at the first
  evaluated epoch after it, the last, and last / first."""
  initial = np.array([s[0] for s in series], float)
  first = np.array([s[1] if len(s) > 1 else None for s in series], float)
  last = np.array([s[-1] for s in series], float)
  with np.errstate(divide='ignore', invalid='ignore'):
    ratio = np.where(first != 0, last / first, math.nan)
  return {k: spread.quantity(v) for k, v in dict(initial=initial, first=first, last=last,
                                                  ratio=ratio).items()}


def squared_distance_parts(r: sweep.Result) -> dict[str, list[float]]:
  """The two parts of the squared distance Tr(Sigma_W) / Tr(Sigma_B) along training
  (paper 000 Fig 1's units): ``vb_part`` = Tr(P_B Sigma_W) / Tr(Sigma_B) and
  ``vb_perp_part`` = Tr((I - P_B) Sigma_W) / Tr(Sigma_B), per evaluated epoch.

  From the recorded metrics: squared_distance x within_vb / (within_vb +
  within_vb_perp), Tr(Sigma_W) being within_vb + within_vb_perp (SPEC.md).
  """
  sq = np.asarray([num(v) for v in r['squared_distance']])
  vb = np.asarray([num(v) for v in r['within_vb']])
  perp = np.asarray([num(v) for v in r['within_vb_perp']])
  with np.errstate(divide='ignore', invalid='ignore'):
    scale = sq / (vb + perp)
  return dict(vb_part=(vb * scale).tolist(), vb_perp_part=(perp * scale).tolist())


def evidence_000d(study) -> dict[str, Any]:
  rs = schedule_runs(study, study.config.vb_schedule)
  u = study.one(kind='ufm')
  parts = [squared_distance_parts(r) for r in rs]
  return dict(
      seeds={study.config.vb_schedule: [r.seed for r in rs]},
      trained=trained(rs), train_nc1=train_nc1(rs),
      first_epoch=[r['epoch'][1] if len(r['epoch']) > 1 else None for r in rs],
      last_epoch=[r['epoch'][-1] for r in rs],
      vb_part=_first_last([p['vb_part'] for p in parts]),
      vb_perp_part=_first_last([p['vb_perp_part'] for p in parts]),
      raw_within_vb=_first_last([r['within_vb'] for r in rs]),
      raw_within_vb_perp=_first_last([r['within_vb_perp'] for r in rs]),
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
                         **{k: num(r[k]) for k in METRICS_000E + ('class_separation',)},
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


def _pearson_of_means(groups: Sequence[np.ndarray]) -> float:
  """Pearson r over the points of the seed means: each group is one point's [seeds, 2]
  rows of (metric, MLOG)."""
  means = np.asarray([g.mean(axis=0) for g in groups])
  with np.errstate(divide='ignore', invalid='ignore'):
    return float(np.corrcoef(means[:, 0], means[:, 1])[0, 1])


def _relative_change(first: Mapping[str, Any], last: Mapping[str, Any]) -> float | None:
  """|mean(last) / mean(first) - 1| of two `spread.quantity` dicts (None if unmeasurable)."""
  a, b = first.get('mean'), last.get('mean')
  if a is None or b is None or a == 0:
    return None
  return abs(b / a - 1)


def sweep_statistics(table: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, Any]:
  """000e's statistics of a sweep table (see `_sweep_table`).

  Returns:
    ``seeds`` ({sweep: fewest seeds at a point}); ``by_point`` ({sweep:
    {metric or 'mlog': [{point, values, mean, se, n}]}}); ``moved`` ({sweep:
    {metric: {z, relative}}}: the end points' z score and relative change);
    ``pearson_of_means`` ({sweep: {metric: `spread.bootstrap` of Pearson(seed
    mean of the metric, seed mean of MLOG) over the points}}: the tested
    statistic); ``pearson_by_seed`` ({sweep: {metric: `spread.quantity` of the
    per-seed r}}) and ``pearson_pooled`` ({sweep: {metric: r over every run}}),
    reported; ``nonfinite_mlog`` (count).
  """
  out = dict(seeds={}, by_point={}, moved={}, pearson_of_means={}, pearson_by_seed={},
             pearson_pooled={})
  for s, rows in table.items():
    points = sorted({row['point'] for row in rows})
    at = {p: [row for row in rows if row['point'] == p] for p in points}
    out['seeds'][s] = min((len(v) for v in at.values()), default=0)
    out['by_point'][s] = {k: [dict(point=p, **spread.quantity([row[k] for row in at[p]]))
                              for p in points] for k in METRICS_000E + ('mlog',)}
    out['moved'][s] = {}
    for k in METRICS_000E:
      ends = out['by_point'][s][k]
      measurable = len(ends) > 1
      out['moved'][s][k] = dict(
          z=spread.z_score(ends[-1], ends[0]) if measurable else math.nan,
          relative=_relative_change(ends[0], ends[-1]) if measurable else None)
    out['pearson_of_means'][s] = {
        k: spread.bootstrap(_pearson_of_means,
                            [[[row[k], row['mlog']] for row in at[p]] for p in points])
        for k in METRICS_000E}
    by_seed = _by_seed(rows, points)
    out['pearson_by_seed'][s] = {
        k: dict(seeds=list(by_seed), **spread.quantity([_pearson_mlog(mine, k)
                                                         for mine in by_seed.values()]))
        for k in METRICS_000E}
    out['pearson_pooled'][s] = {k: _pearson_mlog(rows, k) for k in METRICS_000E}
  out['nonfinite_mlog'] = sum(not math.isfinite(row['mlog'])
                              for rows in table.values() for row in rows)
  return out


def _pilot(study) -> dict[str, Any]:
  """The lambda pilot: within-class cosine similarity (1 - cosine_within) and squared
  distance per lambda, and the similarity relative to lambda = 0."""
  rows = sorted(study.where(kind='pilot'), key=lambda r: r.tags['cosine_reg'])
  sim = {r.tags['cosine_reg']: 1 - num(r['cosine_within']) for r in rows}
  base = sim.get(0.0)
  return dict(seed=study.config.pilot_seed,
              within_similarity={f'{k:g}': v for k, v in sim.items()},
              relative_to_ce={f'{k:g}': (v / base if base else None) for k, v in sim.items()},
              squared_distance={f'{r.tags["cosine_reg"]:g}': num(r['squared_distance'])
                                for r in rows})


def evidence_000e(study) -> dict[str, Any]:
  table, results = _sweep_table(study)
  st = sweep_statistics(table)
  # The regulariser's direction (a gate): within-class similarity at the largest lambda
  # against the smallest, i.e. cosine_within (a distance) rises.
  ends = st['by_point'].get('cosine_reg', {}).get('cosine_within', [])
  return dict(trained=trained(results), **st, runs=table, pilot=_pilot(study),
              regulariser_z=spread.z_score(ends[-1], ends[0]) if len(ends) > 1 else math.nan)
