"""Paper 000's figures: ``figure(evidence, study)`` of the claims that draw one.

Each writes PNGs into the study folder and returns their file names.
"""

from __future__ import annotations

import numpy as np

from nc_jax import plots
from nc_jax.studies.papers.p000_vci.evidence import schedule_runs, squared_distance_parts
from nc_jax.studies.papers.p000_vci.plan import FALL_METRICS, METRICS_000E


def figure_000c(ev, study) -> list[str]:
  """Each of `FALL_METRICS` over training, one seed-mean curve per schedule."""
  del ev
  figs = []
  for k in FALL_METRICS:
    curves, x = {}, None
    for name in study.config.schedules:
      rs = schedule_runs(study, name)
      if rs:
        x = rs[0]['epoch']
        curves[f'{name} (mean of {len(rs)})'] = np.mean([np.asarray(r[k], float) for r in rs],
                                                        axis=0)
    fig = f'000c_{k}.png'
    plots.curves(study.file(fig), x, curves, xlabel='epoch',
                 logy=k in ('fuzziness', 'squared_distance'),
                 title=f'{k} of the train features over training (seed mean)')
    figs.append(fig)
  return figs


def figure_000d(ev, study) -> list[str]:
  """The two parts of the squared distance (Fig 1's units) over training per seed, and
  within_vb(_perp) in the UFM per step."""
  del ev
  config = study.config
  curves, x = {}, None
  for r in schedule_runs(study, config.vb_schedule):
    x = r['epoch']
    for k, v in squared_distance_parts(r).items():
      curves[f'{k} seed {r.seed}'] = np.asarray(v, float)
  fig = '000d_within_vb.png'
  plots.curves(study.file(fig), x, curves, xlabel='epoch', logy=True,
               title=f'Squared-distance parts in / out of span(M), {config.vb_schedule}')
  u = study.one(kind='ufm')
  fig2 = '000d_ufm_lambda_h_0.png'
  plots.curves(study.file(fig2), u['steps'],
               {'within_vb': u['within_vb'], 'within_vb_perp': u['within_vb_perp']},
               xlabel='step', logy=True, title='UFM, lambda_H = 0, no injected noise')
  return [fig, fig2]


def figure_000e(ev, study) -> list[str]:
  """Each of `METRICS_000E` against MLOG, every run, one colour per sweep."""
  figs = []
  for k in METRICS_000E:
    fig = f'000e_{k}_vs_mlog.png'
    plots.scatter(study.file(fig),
                  {s: ([row[k] for row in rows], [row['mlog'] for row in rows])
                   for s, rows in ev['runs'].items()},
                  xlabel=f'{k} of the pretrained train features', ylabel='MLOG',
                  title=f'{k} vs transfer (every run; r pooled)')
    figs.append(fig)
  return figs
