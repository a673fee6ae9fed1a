"""Paper 004's figures: each claim's ``figure(evidence, study)``.

The runs' own figures are copied into the study folder; the curves over
epochs are drawn from the evidence.
"""

from __future__ import annotations

import os
import shutil

from nc_jax import plots
from nc_jax.studies import reproduce
from nc_jax.studies.papers.p004_fine_grained.evidence import by_epoch


def _copy(study: reproduce.Study, src: str, name: str) -> list[str]:
  """Copies a run's figure into the study folder (nothing if the run drew none)."""
  if not os.path.exists(src):
    return []
  shutil.copyfile(src, study.file(name))
  return [name]


def figure_004a(ev, study: reproduce.Study) -> list[str]:
  """The first tested run's distances, t-SNE and CLP; MSDR over training; the reported runs."""
  tested = study.where(kind='coarse', tested=True)
  figs = []
  if tested:
    for f in ('class_distances.png', 'tsne_superclasses.png', 'clp.png'):
      figs += _copy(study, os.path.join(tested[0].path, f), f'004a_{f}')
  lines = {}
  for name, values in ev['msdr_by_epoch'].items():
    epochs, msdr = by_epoch(values)
    lines[name] = ([e / epochs[-1] for e in epochs], msdr)
  plots.xy_lines(study.file('004a_msdr_over_epochs.png'), lines,
                 xlabel='fraction of training (epoch / last epoch)', ylabel='MSDR',
                 title='MSDR over the original classes (train), coarse labels y mod 5')
  figs.append('004a_msdr_over_epochs.png')
  for r in study.where(kind='coarse', tested=False):
    figs += _copy(study, os.path.join(r.path, 'class_distances.png'),
                  f"004a_class_distances_{r.tags['model']}_seed{r.seed}.png")
  return figs


def figure_004b(ev, study: reproduce.Study) -> list[str]:
  """Each mixture run's MSDR curves (Figs 18-21)."""
  del ev
  figs = []
  for r in study.where(kind='mixture', role='test'):
    name = ('msdr_vs_tau2.png' if r.tags['part'] == 'similarity'
            else f"msdr_vs_sigma2_{r.tags['part']}.png")
    figs += _copy(study, os.path.join(r.path, name), f'004b_{name}')
  for r in study.where(kind='mixture', role='investigation'):
    figs += _copy(study, os.path.join(r.path, 'msdr_vs_sigma2_hidden_dim.png'),
                  f"004b_msdr_vs_sigma2_hidden_dim_lr{r.tags['learning_rate']:g}.png")
  return figs


def figure_004c(ev, study: reproduce.Study) -> list[str]:
  """The first run's distances; MSDR and separation over epochs."""
  runs = study.where(kind='fine')
  figs = _copy(study, os.path.join(runs[0].path, 'class_distances.png'),
               '004c_class_distances.png') if runs else []
  lines = {}
  for name, by in ev['by_epoch'].items():
    for key in ('msdr_original', 'separation'):
      lines[f'{name} {key}'] = by_epoch(by[key])
  plots.xy_lines(study.file('004c_over_epochs.png'), lines, xlabel='epoch', ylabel='ratio',
                 title='Fine labels (2C): halves of a class (MSDR) and original classes '
                       '(separation)')
  return figs + ['004c_over_epochs.png']
