"""Paper 001's figures: ``figure(evidence, study)`` of each claim.

Each writes a PNG into the study folder and returns its file name(s).
"""

from __future__ import annotations

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
                 {l: [q['mean'] for q in ev[l][key]] for l in ('ce', 'mse')},
                 xlabel='head layers', logy=logy,
                 title=f'{key} (pre-head features, seed mean) vs head layers')
    figs.append(fig)
  return figs


def figure_001c(ev, study):
  flat = lambda rows: [v for row in rows for v in row]
  return _scatter(study, '001c_downstream_nc1_vs_transfer.png',
                  {g: (flat(v['downstream_nc1']), flat(v['transfer']))
                   for g, v in ev['groups'].items()},
                  xlabel='downstream NC1 (downstream features)',
                  title='Downstream collapse vs transfer (all seeds)')


def figure_001d(ev, study):
  fig = '001d_finetuning.png'
  n = max((q['n'] for q in ev['test_accuracy'].values()), default=0)
  transfer.finetune_figure(
      study.file(fig), ev['lbfgs_probe'],
      {f'{v}\n(mean of {n})': q['mean'] for v, q in ev['test_accuracy'].items()},
      source=study.config.pretrain.data.name, target=study.config.finetune.data.name)
  return [fig]
