"""Paper 004's runs (`plan`) and what each run records.

A trainer run (coarse or fine labels) records its summary's `KEEP` numbers,
its numbers at initialisation (`initial_record`) and, after training, the
class distances at the analysis epochs (`fine_grained`; for fine labels
`fine_label_stats`). A Gaussian-mixture run records every seed's numbers per
plotted line (`mixture_tables`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections
import numpy as np

from nc_jax import data
from nc_jax import plots
from nc_jax.rundir import RunDir
from nc_jax.studies import fine_grained
from nc_jax.studies import simulations
from nc_jax.studies import spread
from nc_jax.studies import sweep
from nc_jax.workdir import METRICS, Workdir

MIXTURE_PARTS = ('input_dim', 'hidden_dim', 'weight_decay', 'similarity')

# What a trainer run records from its summary (`sweep.train(keep=...)`).
KEEP = ('epoch', 'train_accuracy', 'test_accuracy', 'train_loss', 'train_nc1',
        'terminal_phase_epoch')

# The numbers of a mixture line, per point and seed (`mixture_tables`).
MIXTURE_KEYS = ('msdr', 'msdr_init', 'train_accuracy', 'loss')


# ---------------------------------------------------------------------------
# Trainer configs.
# ---------------------------------------------------------------------------


def coarse_config(config, model: str, seed: int | None = None
                  ) -> ml_collections.ConfigDict:
  """The trainer config of coarse model ``model`` (with ``seed``, if given)."""
  over = sweep.dotted_overrides(config.coarse_models[model])
  return sweep.with_overrides(config.coarse, over if seed is None else
                              dict(seed=seed, **over))


# ---------------------------------------------------------------------------
# What each run records after training.
# ---------------------------------------------------------------------------


def _epochs(analysis_epochs, tcfg) -> list[int]:
  """The analysis epochs a run reaches, and its last epoch."""
  return sorted({e for e in analysis_epochs if e < tcfg.num_epochs} | {tcfg.num_epochs})


def initial_record(rdir: str) -> dict[str, float | None]:
  """Train accuracy, loss and NC1 (penultimate, training labels) at epoch 0 (None: not logged)."""
  first = next(iter(RunDir(rdir).eval(split='train', layer='penultimate')), {})
  init = first if first.get('epoch') == 0 else {}
  return dict(train_accuracy_init=init.get('accuracy'), train_loss_init=init.get('loss'),
              train_nc1_init=init.get('nc1'))


# Keys of `fine_grained.analyze_run` that repeat the summary's (`KEEP`).
_REPEATED = ('coarse_test_accuracy', 'coarse_train_accuracy', 'coarse_train_nc1',
             'terminal_phase_epoch')


def _coarse_analysis(config, tested: bool):
  """After a coarse-label run: `fine_grained.analyze_run` if ``tested``, else MSDR only."""

  def analysis(run, rdir):
    if tested:
      out = fine_grained.analyze_run(
          rdir, run.config, analysis_epochs=config.coarse_epochs,
          analysis_train_examples=config.analysis_train_examples,
          clp_cfg=config.clp, probe_cfg=config.probe, out=Workdir(rdir))
      out = {k: v for k, v in out.items() if k not in _REPEATED}
    else:
      sub_ds, _ = fine_grained.analysis_sets(run.config, config.analysis_train_examples)
      num_fine = int(sub_ds.fine_labels.max()) + 1
      f2c = data.mod_coarse_map(num_fine, sub_ds.num_classes)
      dist, msdr = fine_grained.distances_over_epochs(
          rdir, run.config, _epochs(config.coarse_epochs, run.config), sub_ds,
          sub_ds.fine_labels, num_fine, f2c)
      plots.distance_heatmaps(os.path.join(rdir, 'class_distances.png'), dist,
                              fine_to_coarse=f2c, msdr=msdr,
                              title=f'{run.name}: class distances (train, penultimate)')
      out = dict(msdr_by_epoch={str(e): v for e, v in msdr.items()})
    return dict(out, **initial_record(rdir))

  return analysis


def fine_label_stats(d: np.ndarray, num_original: int) -> dict[str, float]:
  """Distances between the 2C fine classes y + b C, grouped by original class y.

  Returns ``msdr_original`` (MSDR with the original classes as groups: mean
  D between the two halves of a class over mean D_ii; 1 = halves
  indistinguishable) and ``separation`` (mean D between halves of
  different original classes over mean D between the halves of one class;
  > 1 = original classes still apart).
  """
  k = d.shape[0]
  original = np.arange(k) % num_original
  same = (original[:, None] == original[None]) & ~np.eye(k, dtype=bool)
  diff = original[:, None] != original[None]
  return dict(msdr_original=float(d[same].mean() / np.diag(d).mean()),
              separation=float(d[diff].mean() / d[same].mean()))


def _fine_analysis(config):
  """After a fine-label run: distances between the 2C classes at the analysis epochs."""

  def analysis(run, rdir):
    sub_ds, _ = fine_grained.analysis_sets(run.config, config.analysis_train_examples)
    num_original = sub_ds.num_classes // 2
    groups = np.arange(sub_ds.num_classes) % num_original
    dist, _ = fine_grained.distances_over_epochs(
        rdir, run.config, config.fine_epochs, sub_ds, sub_ds.labels,
        sub_ds.num_classes, groups)
    stats = {e: fine_label_stats(d, num_original) for e, d in dist.items()}
    plots.distance_heatmaps(
        os.path.join(rdir, 'class_distances.png'), dist, fine_to_coarse=groups,
        msdr={e: s['msdr_original'] for e, s in stats.items()},
        title=f'{run.name}: distances between the {sub_ds.num_classes} fine classes '
              '(pairs of one original class grouped; MSDR over original classes)')
    return dict(msdr_original_by_epoch={str(e): s['msdr_original'] for e, s in stats.items()},
                separation_by_epoch={str(e): s['separation'] for e, s in stats.items()},
                **initial_record(rdir))

  return analysis


# ---------------------------------------------------------------------------
# The Gaussian mixture (App. B).
# ---------------------------------------------------------------------------


def mixture_lines(mcfg, part: str) -> list[dict[str, Any]]:
  """The plotted lines of one part: label, varied value, x key and values, match."""
  base = dict(input_dim=mcfg.input_dim, hidden_dim=mcfg.hidden_dim,
              weight_decay=float(mcfg.weight_decay), num_similar=0, tau2=0.0)
  sigma = dict(x_key='sigma2', x=[float(s) for s in mcfg.sigma2])
  if part == 'input_dim':
    return [dict(label=f'd_input={d}', value=d, match=dict(base, input_dim=d), **sigma)
            for d in mcfg.input_dims]
  if part == 'hidden_dim':
    return [dict(label=f'd_hidden={d}', value=d, match=dict(base, hidden_dim=d), **sigma)
            for d in mcfg.hidden_dims]
  if part == 'weight_decay':
    return [dict(label=f'wd={w:g}', value=float(w), match=dict(base, weight_decay=float(w)),
                 **sigma) for w in mcfg.weight_decays]
  if part == 'similarity':
    sim = mcfg.similarity
    match = dict(base, num_similar=sim.num_similar, sigma2=float(sim.sigma2))
    del match['tau2']
    return [dict(label='tau2', value=float(sim.sigma2), match=match, x_key='tau2',
                 x=[float(t) for t in sim.tau2])]
  raise ValueError(f'unknown mixture part {part!r}; choose from {MIXTURE_PARTS}')


def mixture_tables(mcfg, part: str, records: Sequence[Mapping[str, Any]]
                   ) -> dict[str, dict[str, Any]]:
  """Per-line tables ``{key: [points][seeds]}`` from a mixture run's metrics.jsonl.

  A record belongs to a line when it has the line's fixed parameters, to a
  point by its x value and seed (numbers compared to 12 decimals); a value
  missing or not finite is None.
  """
  keys = MIXTURE_KEYS + (('msdr_similar', 'msdr_dissimilar') if part == 'similarity' else ())
  rnd = lambda v: round(float(v), 12)
  out = {}
  for line in mixture_lines(mcfg, part):
    found = {(rnd(r[line['x_key']]), r['seed']): r for r in records
             if all(rnd(r.get(k, np.nan)) == rnd(v) for k, v in line['match'].items())}
    points = [[found.get((rnd(x), s), {}) for s in range(mcfg.num_seeds)] for x in line['x']]
    out[line['label']] = dict(
        value=line['value'], x_key=line['x_key'], x=line['x'],
        **{k: [spread.quantity([r.get(k) for r in seeds])['values'] for seeds in points]
           for k in keys})
  return out


def _mixture(config, part: str, learning_rate: float):

  def execute(run, rdir):
    del run
    mcfg = ml_collections.ConfigDict(config.mixture.to_dict())
    mcfg.parts, mcfg.learning_rate = (part,), learning_rate
    metrics = os.path.join(rdir, METRICS)
    if os.path.exists(metrics):  # A killed run starts afresh.
      os.remove(metrics)
    simulations.mixture_study(mcfg, rdir)
    return dict(part=part, learning_rate=learning_rate, num_steps=mcfg.num_steps,
                num_seeds=mcfg.num_seeds,
                lines=mixture_tables(mcfg, part, RunDir(rdir).records))

  return execute


# ---------------------------------------------------------------------------
# The study.
# ---------------------------------------------------------------------------


def plan(config, workdir: str) -> list[sweep.Run]:
  """Every run of the study (see the package docstring)."""
  del workdir
  runs = []
  for model in config.coarse_models:
    tested = model in config.clp_models
    for seed in (config.coarse_seeds if tested else config.reported_seeds):
      runs.append(sweep.Run(
          f'coarse_{model}_seed{seed}',
          sweep.train(keep=KEEP, then=_coarse_analysis(config, tested)),
          coarse_config(config, model, seed), seed=seed,
          overrides=dict(arch=model, **sweep.dotted_overrides(config.coarse_models[model])),
          tags=dict(kind='coarse', model=model, tested=tested)))
  for seed in config.fine_seeds:
    tcfg = sweep.with_overrides(config.fine, dict(seed=seed))
    runs.append(sweep.Run(
        f'fine_{tcfg.model.name}_seed{seed}',
        sweep.train(keep=KEEP, then=_fine_analysis(config)), tcfg, seed=seed,
        overrides={'data.label_map': tcfg.data.label_map},
        tags=dict(kind='fine', model=tcfg.model.name)))
  lr0 = config.mixture.learning_rate
  for part in config.mixture_parts:
    runs.append(sweep.Run(f'mixture_{part}', _mixture(config, part, lr0),
                          overrides=dict(part=part),
                          tags=dict(kind='mixture', role='test', part=part,
                                    learning_rate=lr0)))
  for lr in config.mixture_width_lrs:
    runs.append(sweep.Run(f'mixture_hidden_dim_lr{lr:g}', _mixture(config, 'hidden_dim', lr),
                          overrides=dict(part='hidden_dim', learning_rate=lr),
                          tags=dict(kind='mixture', role='investigation', part='hidden_dim',
                                    learning_rate=lr)))
  return runs
