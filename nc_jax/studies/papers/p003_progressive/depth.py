"""Claim 003a, read from the depth runs (``kind='depth'``): CDNV and NC2 fall
progressively through the layers over a depth sweep, probe accuracy rises
along them. Its evidence, gates, checks and figure; `claims` assembles the spec.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nc_jax import plots
from nc_jax.probes.correlation import spearman
from nc_jax.studies import reproduce
from nc_jax.studies import spread
from nc_jax.studies.papers.p003_progressive import evidence
from nc_jax.studies.papers.p003_progressive import gates
from nc_jax.studies.papers.p003_progressive.runs import depth_groups


def _log_fall(curve) -> float:
  """log(first layer / last layer) of a CDNV curve (NaN unless both positive)."""
  c = np.asarray(curve, float)
  if len(c) < 2 or not (np.isfinite(c).all() and c[0] > 0 and c[-1] > 0):
    return float('nan')
  return math.log(c[0] / c[-1])


def _rank(curve) -> float:
  """Spearman(layer index, values) of one curve (NaN under 3 layers)."""
  c = np.asarray(curve, float)
  return float(spearman(np.arange(len(c)), c)) if len(c) >= 3 else float('nan')


def evidence_003a(study: reproduce.Study) -> dict[str, Any]:
  runs = {}
  for label in depth_groups(study.config):
    rs = study.where(kind='depth', group=label)
    g = evidence.group(rs, ('layers', 'cdnv', 'nc2_etf', 'probe_accuracy', 'cdnv_init',
                            'nc2_etf_init'))
    g['layers'] = list(g['layers'][0]) if rs else []  # The same for every seed.
    for key, curves in (('spearman_cdnv', 'cdnv'), ('spearman_nc2', 'nc2_etf'),
                        ('spearman_probe', 'probe_accuracy')):
      g[key] = [_rank(c) for c in g[curves]]
    g['log_cdnv_fall'] = [_log_fall(c) for c in g['cdnv']]
    g['log_cdnv_fall_init'] = [_log_fall(c) for c in g['cdnv_init']]
    g['summary'] = dict(
        {k: evidence.summary(g[k])
         for k in ('test_accuracy', 'spearman_cdnv', 'spearman_nc2', 'spearman_probe',
                   'log_cdnv_fall', 'log_cdnv_fall_init')},
        **{k: evidence.layer_summaries(g[k])
           for k in ('cdnv', 'nc2_etf', 'probe_accuracy', 'cdnv_init')})
    runs[label] = g
  return dict(depths=list(runs), runs=runs)


def gates_003a(ev, c) -> dict[str, reproduce.Gate]:
  groups = [ev['runs'][l] for l in ev['depths']]
  return dict(
      **gates.gate_runs(groups, c), train_collapse=gates.gate_collapse(groups, c),
      cdnv_fall_vs_init=gates.gate_changed(
          [(g['log_cdnv_fall'], g['log_cdnv_fall_init']) for g in groups],
          'z of log(CDNV first / last layer), trained vs at initialisation (weakest depth)'))


def checks_003a(ev, c) -> dict[str, bool | None]:
  checks = {}
  for label in ev['depths']:
    g = ev['runs'][label]
    checks[f'{label}_progressive_cdnv'] = spread.below(g['spearman_cdnv'],
                                                       c['progressive_rho_max'])
    checks[f'{label}_probe_rises'] = spread.exceeds(g['spearman_probe'], c['probe_rho_min'])
  checks['little_gain_past_plateau'] = None
  if len(ev['depths']) >= 2:
    deep, second = (ev['runs'][l]['test_accuracy'] for l in ev['depths'][-1:-3:-1])
    # The deepest gains less than depth_gain_max over the second deepest, beyond noise.
    checks['little_gain_past_plateau'] = spread.exceeds(
        np.asarray(second, float) + c['depth_gain_max'], deep)
  return checks


def figure_003a(ev, study) -> list[str]:
  figs = []
  for key, logy in (('cdnv', True), ('nc2_etf', False), ('probe_accuracy', False)):
    curves = {l: evidence.seed_means(ev['runs'][l][key]) for l in ev['depths']}
    deepest = max((len(v) for v in curves.values()), default=0)
    if not deepest:
      continue
    curves = {l: v + [np.nan] * (deepest - len(v)) for l, v in curves.items()}
    fig = f'003a_{key}_by_layer.png'
    plots.curves(study.file(fig), np.arange(1, deepest + 1), curves,
                 xlabel='layer (1 = first hidden)', logy=logy,
                 title=f'{key} by layer (train; seed means)')
    figs.append(fig)
  return figs

