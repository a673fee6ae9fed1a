"""Paper 001's figures: ``figure(evidence, study)`` of each claim.

Each writes a PNG into the study folder and returns its file name(s).
"""

from __future__ import annotations

import numpy as np

from nc_jax import plots
from nc_jax.studies import transfer


def _scatter(study, fig: str, points, *, xlabel: str, title: str) -> list[str]:
  """Groups of (x, transfer) points, x on a log axis."""
  plots.scatter(study.file(fig), points, xlabel=xlabel, ylabel='transfer (probe top-1)',
                logx=True, title=title)
  return [fig]


def figure_001a(ev, study):
  return _scatter(study, '001a_nc1_vs_transfer.png',
                  {l: (ev['source_nc1'][l]['values'], ev['transfer'][l]['values'])
                   for l in ev['losses']},
                  xlabel='source NC1 (train, transfer layer)',
                  title='Losses: source collapse vs transfer (one point per seed)')


def figure_001b(ev, study):
  figs = []
  for key, logy in (('source_nc1', True), ('transfer', False)):
    fig = f'001b_{key}_vs_head_layers.png'
    plots.curves(study.file(fig), ev['head_depths'],
                 {l: [np.nan if q['mean'] is None else q['mean'] for q in ev[l][key]]
                  for l in ('ce', 'mse')},
                 xlabel='head layers', logy=logy,
                 title=f'{key} (pre-head features, seed mean) vs head layers')
    figs.append(fig)
  return figs


def figure_001c(ev, study):
  flat = lambda rows: [v for row in rows for v in row]
  g = ev['groups']
  pgd = lambda key: [[v for v, x in zip(row, g['adversarial']['x']) if x]
                     for row in g['adversarial'][key]]
  groups = {'augmentation ladder': (flat(g['augmentation']['downstream_nc1']),
                                    flat(g['augmentation']['transfer'])),
            'PGD training': (flat(pgd('downstream_nc1')), flat(pgd('transfer'))),
            'deep MLP layers': (flat(g['layers']['downstream_nc1']),
                                flat(g['layers']['transfer']))}
  r = {k: g[k]['pearson']['mean'] for k in ev['tested']}
  title = 'pooled r: ' + ', '.join(f'{k} {"n/a" if v is None else f"{v:.2f}"}'
                                   for k, v in r.items())
  fig = '001c_downstream_nc1_vs_transfer.png'
  plots.scatter(study.file(fig), groups, xlabel='downstream NC1 (downstream features)',
                ylabel='transfer (probe top-1)', title=title)
  return [fig]


def figure_001d(ev, study):
  fig = '001d_finetuning.png'
  n = ev['lbfgs_probe']['n']
  label = lambda v: v + (f" ({ev['best_block'][v]})" if ev['best_block'][v] else '')
  transfer.finetune_figure(
      study.file(fig), ev['lbfgs_probe']['mean'],
      {f'{label(v)}\n(mean of {n})': q['mean'] for v, q in ev['test_accuracy'].items()},
      source=study.config.pretrain.data.name, target=study.config.finetune.data.name)
  return [fig]
