"""Paper 004's figures: each claim's ``figure(evidence, study)``.

The runs' own figures are copied into the study folder; the curves over
epochs are drawn from the evidence.
"""

from __future__ import annotations

import os
import shutil

import numpy as np

from nc_jax import plots
from nc_jax.rundir import RunDir
from nc_jax.studies import reproduce
from nc_jax.studies.papers.p004_fine_grained.evidence import by_epoch


def _copy(study: reproduce.Study, src: str, name: str) -> list[str]:
  """Copies a run's figure into the study folder (nothing if the run drew none)."""
  if not os.path.exists(src):
    return []
  shutil.copyfile(src, study.file(name))
  return [name]


def figure_004a(ev, study: reproduce.Study) -> list[str]:
  """Each tested model's first run's distances, t-SNE and CLP; MSDR over training;
  the reported runs' distances (and t-SNE where drawn)."""
  figs = []
  for model in ev['tested_models']:
    first = study.where(kind='coarse', tested=True, model=model)[0]
    for f in ('class_distances.png', 'tsne_superclasses.png', 'clp.png'):
      figs += _copy(study, os.path.join(first.path, f), f"004a_{f[:-4]}_{model}.png")
  lines = {}
  for name, values in ev['msdr_by_epoch'].items():
    epochs, msdr = by_epoch(values)
    lines[name] = ([e / epochs[-1] for e in epochs], msdr)
  plots.xy_lines(study.file('004a_msdr_over_epochs.png'), lines,
                 xlabel='fraction of training (epoch / last epoch)', ylabel='MSDR',
                 title='MSDR over the original classes (train), coarse labels')
  figs.append('004a_msdr_over_epochs.png')
  for r in study.where(kind='coarse', tested=False):
    for f in ('class_distances.png', 'tsne_superclasses.png'):
      figs += _copy(study, os.path.join(r.path, f),
                    f"004a_{f[:-4]}_{r.tags['model']}_seed{r.seed}.png")
  return figs


def figure_004b(ev, study: reproduce.Study) -> list[str]:
  """The test parts' MSDR curves (Figs 18, 20, 21) and the kept fraction vs sigma^2."""
  figs = []
  for r in study.where(kind='mixture', role='test'):
    if r.tags['part'] == 'hidden_dim':
      continue
    name = ('msdr_vs_tau2.png' if r.tags['part'] == 'similarity'
            else f"msdr_vs_sigma2_{r.tags['part']}.png")
    figs += _copy(study, os.path.join(r.path, name), f'004b_{name}')
  lines = {k: (v['sigma2'], v['kept']) for k, v in ev['kept_by_sigma2'].items()}
  if lines:
    plots.xy_lines(study.file('004b_kept_vs_sigma2.png'), lines, xlabel='sigma^2',
                   ylabel='(MSDR - 1) / (input MSDR - 1)',
                   title='Share of the input\'s fine structure kept by training (mean of '
                         'seeds)')
    figs.append('004b_kept_vs_sigma2.png')
  return figs


def figure_004d(ev, study: reproduce.Study) -> list[str]:
  """The width line (Fig 19), the sign table and the MSDR trajectories over the steps."""
  figs = []
  test = study.where(kind='mixture', role='test', part='hidden_dim')
  if test:
    figs += _copy(study, os.path.join(test[0].path, 'msdr_vs_sigma2_hidden_dim.png'),
                  '004d_msdr_vs_sigma2_hidden_dim.png')
    trajectories = _trajectories(RunDir(test[0].path).records)
    if trajectories:
      steps, curves = trajectories
      plots.curves(study.file('004d_msdr_over_steps.png'), steps, curves, xlabel='step',
                   title='MSDR over training at the largest sigma^2, by hidden width '
                         '(mean of seeds)')
      figs.append('004d_msdr_over_steps.png')
  bars = {f"lr {c['learning_rate']:g}\n{c['init']}": c['trend']['mean'] for c in ev['table']
          if c['trend'].get('mean') is not None}  # (no mean: a seed's trend not measurable)
  if bars:
    plots.bars(study.file('004d_width_trend_table.png'), bars,
               ylabel='mean Spearman(width, MSDR)',
               title='Width trend by learning rate and initialisation')
    figs.append('004d_width_trend_table.png')
  return figs


def _trajectories(records) -> tuple[list[int], dict[str, list[float]]] | None:
  """(steps, {width: mean MSDR trajectory}) at the largest sigma^2 of a width line."""
  rows = [r for r in records if 'msdr_trajectory' in r]
  if not rows:
    return None
  top = max(r['sigma2'] for r in rows)
  by_width: dict[int, list[list[float]]] = {}
  for r in rows:
    if r['sigma2'] == top:
      by_width.setdefault(r['hidden_dim'], []).append(r['msdr_trajectory'])
  steps = rows[0]['msdr_steps']
  return steps, {f'd_hidden={w}': np.mean(t, 0).tolist() for w, t in sorted(by_width.items())}


def figure_004c(ev, study: reproduce.Study) -> list[str]:
  """The first run's distances; MSDR, separation and fine-label NC1 over epochs."""
  runs = study.where(kind='fine')
  figs = _copy(study, os.path.join(runs[0].path, 'class_distances.png'),
               '004c_class_distances.png') if runs else []
  lines = {}
  for name, by in ev['by_epoch'].items():
    for key in ('msdr_original', 'separation', 'fine_nc1'):
      lines[f'{name} {key}'] = by_epoch(by[key])
  plots.xy_lines(study.file('004c_over_epochs.png'), lines, xlabel='epoch', ylabel='value',
                 logy=True,
                 title='Fine labels (2C): halves of a class (MSDR), original classes '
                       '(separation), fine-label NC1')
  return figs + ['004c_over_epochs.png']
