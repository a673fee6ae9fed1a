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
from nc_jax.studies.papers.p004_fine_grained.criteria import C_004B
from nc_jax.workdir import METRICS, Workdir

MIXTURE_PARTS = ('input_dim', 'hidden_dim', 'weight_decay', 'similarity')

# What a trainer run records from its summary (`sweep.train(keep=...)`).
KEEP = ('epoch', 'train_accuracy', 'test_accuracy', 'train_loss', 'train_nc1',
        'terminal_phase_epoch')

# The numbers of a mixture line, per point and seed (`mixture_tables`):
# MSDR trained, at initialisation and of the inputs themselves, the coarse
# NC1 of the hidden layer, the fit.
MIXTURE_KEYS = ('msdr', 'msdr_init', 'msdr_input', 'nc1', 'train_accuracy', 'loss')
# Those that must be finite for a learning rate to count as stable.
_FINITE_KEYS = ('msdr', 'train_accuracy', 'loss')


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


def _coarse_analysis(config, clp: bool):
  """After a coarse-label run: `fine_grained.analyze_run` if ``clp``, else MSDR only."""

  def analysis(run, rdir):
    if clp:
      out = fine_grained.analyze_run(
          rdir, run.config, analysis_epochs=config.coarse_epochs,
          analysis_train_examples=config.analysis_train_examples,
          clp_cfg=config.clp, probe_cfg=config.probe, out=Workdir(rdir))
      out = {k: v for k, v in out.items() if k not in _REPEATED}
    else:
      sub_ds, _ = fine_grained.analysis_sets(run.config, config.analysis_train_examples)
      f2c = data.coarse_table(sub_ds)
      num_fine = len(f2c)
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
    dist, _, nc1 = fine_grained.distances_over_epochs(
        rdir, run.config, config.fine_epochs, sub_ds, sub_ds.labels,
        sub_ds.num_classes, groups, with_nc1=True)
    stats = {e: fine_label_stats(d, num_original) for e, d in dist.items()}
    plots.distance_heatmaps(
        os.path.join(rdir, 'class_distances.png'), dist, fine_to_coarse=groups,
        msdr={e: s['msdr_original'] for e, s in stats.items()},
        title=f'{run.name}: distances between the {sub_ds.num_classes} fine classes '
              '(pairs of one original class grouped; MSDR over original classes)')
    return dict(msdr_original_by_epoch={str(e): s['msdr_original'] for e, s in stats.items()},
                separation_by_epoch={str(e): s['separation'] for e, s in stats.items()},
                fine_nc1_by_epoch={str(e): v for e, v in nc1.items()},
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
  keys = MIXTURE_KEYS + (('msdr_similar', 'msdr_dissimilar', 'msdr_input_similar',
                          'msdr_input_dissimilar') if part == 'similarity' else ())
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


def _mixture_config(config, part: str, **changes) -> ml_collections.ConfigDict:
  """The mixture config of one part (`simulations.mixture_study` keys), changed."""
  mcfg = ml_collections.ConfigDict(config.mixture.to_dict())
  mcfg.parts = (part,)
  mcfg.update(changes)
  return mcfg


def _run_mixture(mcfg, rdir: str, **record) -> dict[str, Any]:
  """`simulations.mixture_study` of ``mcfg`` into ``rdir``; its tables, recorded."""
  part = mcfg.parts[0]
  metrics = os.path.join(rdir, METRICS)
  if os.path.exists(metrics):  # A killed run starts afresh.
    os.remove(metrics)
  simulations.mixture_study(mcfg, rdir)
  return dict(part=part, learning_rate=float(mcfg.learning_rate), init=mcfg.init,
              num_steps=mcfg.num_steps, num_seeds=mcfg.num_seeds,
              samples_per_cluster=mcfg.samples_per_cluster, **record,
              lines=mixture_tables(mcfg, part, RunDir(rdir).records))


def _lr_rule_run(config, learning_rate: float):
  """The pre-study: the default line at sigma^2 >= fit_sigma2_min, at one rate."""

  def execute(run, rdir):
    del run
    m = config.mixture
    sigma2 = tuple(s for s in m.sigma2 if s >= C_004B['fit_sigma2_min'])
    return _run_mixture(_mixture_config(config, 'hidden_dim', hidden_dims=(m.hidden_dim,),
                                        sigma2=sigma2, learning_rate=learning_rate), rdir)

  return execute


def lr_rule_rows(records: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
  """One row per pre-study rate: its worst train accuracy and whether all was finite."""
  rows = []
  for final in records.values():
    accs, finite = [], True
    for line in final['lines'].values():
      for key in _FINITE_KEYS:
        finite &= all(v is not None and np.isfinite(v) for row in line[key] for v in row)
      accs += [v for row in line['train_accuracy'] for v in row]
    rows.append(dict(learning_rate=final['learning_rate'],
                     min_train_accuracy=min((a for a in accs if a is not None),
                                            default=None), finite=bool(finite)))
  return sorted(rows, key=lambda r: r['learning_rate'])


def choose_learning_rate(rows: Sequence[Mapping[str, Any]]) -> float | None:
  """The smallest rate whose every point fitted (train accuracy 1) with finite
  numbers; None when none did. Reads no MSDR."""
  fit = [r['learning_rate'] for r in rows
         if r['finite'] and r['min_train_accuracy'] is not None
         and r['min_train_accuracy'] >= 1.0]
  return min(fit, default=None)


def chosen_learning_rate(config, workdir: str) -> float:
  """The rate the pre-study's records choose (`choose_learning_rate`); the
  largest of the grid when none fitted (the claims' gate then fails)."""
  records = {lr: sweep.read_run(workdir, lr_rule_name(lr))['final'] for lr in config.lr_grid}
  chosen = choose_learning_rate(lr_rule_rows(records))
  return float(max(config.lr_grid) if chosen is None else chosen)


def lr_rule_name(learning_rate: float) -> str:
  return f'mixture_lr_rule_lr{learning_rate:g}'


def _test_part(config, part: str):
  """A test part at the rate the pre-study chose; weight decays from their strengths."""

  def execute(run, rdir):
    del run
    lr = chosen_learning_rate(config, os.path.dirname(os.path.dirname(rdir)))
    steps = config.mixture.num_steps
    wds = tuple(s / (lr * steps) for s in config.weight_decay_strengths)
    return _run_mixture(_mixture_config(config, part, learning_rate=lr, weight_decays=wds),
                        rdir, weight_decay_strengths=list(config.weight_decay_strengths))

  return execute


def _width_table_run(config, learning_rate: float, init: str):
  """One cell of 004d's sign table: the hidden-width line at (rate, init)."""

  def execute(run, rdir):
    del run
    t = config.width_table
    return _run_mixture(_mixture_config(config, 'hidden_dim', hidden_dims=tuple(t.hidden_dims),
                                        sigma2=tuple(t.sigma2), learning_rate=learning_rate,
                                        init=init), rdir)

  return execute


def _init_check_run(config, init: str):
  """The first pass's disputed point under one initialisation."""

  def execute(run, rdir):
    del run
    c = config.init_check
    return _run_mixture(_mixture_config(
        config, 'hidden_dim', samples_per_cluster=c.samples_per_cluster,
        input_dim=c.input_dim, hidden_dims=(c.hidden_dim,), hidden_dim=c.hidden_dim,
        sigma2=(c.sigma2,), learning_rate=c.learning_rate, init=init), rdir)

  return execute


# ---------------------------------------------------------------------------
# The study.
# ---------------------------------------------------------------------------


def coarse_tags(config, model: str) -> dict[str, Any]:
  """What a coarse run is: tested or reported, read for MSDR, with CLP."""
  return dict(kind='coarse', model=model, tested=model in config.tested_models,
              msdr_tested=model in config.msdr_models, clp=model in config.clp_models)


def plan(config, workdir: str) -> list[sweep.Run]:
  """Every run of the study (see the package docstring)."""
  del workdir
  runs = []
  rule = []
  for lr in config.lr_grid:
    rule.append(lr_rule_name(lr))
    runs.append(sweep.Run(rule[-1], _lr_rule_run(config, lr),
                          overrides=dict(part='lr_rule', learning_rate=lr),
                          tags=dict(kind='mixture', role='lr_rule', learning_rate=lr)))
  for part in config.mixture_parts:
    runs.append(sweep.Run(f'mixture_{part}', _test_part(config, part), deps=tuple(rule),
                          overrides=dict(part=part),
                          tags=dict(kind='mixture', role='test', part=part)))
  t = config.width_table
  for init in t.inits:
    for lr in t.learning_rates:
      runs.append(sweep.Run(f'mixture_width_lr{lr:g}_{init}', _width_table_run(config, lr, init),
                            overrides=dict(part='hidden_dim', learning_rate=lr, init=init),
                            tags=dict(kind='mixture', role='width_table', learning_rate=lr,
                                      init=init)))
  for init in t.inits:
    runs.append(sweep.Run(f'mixture_init_check_{init}', _init_check_run(config, init),
                          overrides=dict(part='hidden_dim', init=init),
                          tags=dict(kind='mixture', role='init_check', init=init)))
  # The trainer runs last: the mixture's (cheaper) runs fail first if anything does.
  for model in config.coarse_models:
    tags = coarse_tags(config, model)
    for seed in (config.coarse_seeds if tags['tested'] else config.reported_seeds):
      runs.append(sweep.Run(
          f'coarse_{model}_seed{seed}',
          sweep.train(keep=KEEP, then=_coarse_analysis(config, tags['clp'])),
          coarse_config(config, model, seed), seed=seed,
          overrides=dict(arch=model, **sweep.dotted_overrides(config.coarse_models[model])),
          tags=tags))
  for seed in config.fine_seeds:
    tcfg = sweep.with_overrides(config.fine, dict(seed=seed))
    runs.append(sweep.Run(
        f'fine_{tcfg.model.name}_seed{seed}',
        sweep.train(keep=KEEP, then=_fine_analysis(config)), tcfg, seed=seed,
        overrides={'data.label_map': tcfg.data.label_map},
        tags=dict(kind='fine', model=tcfg.model.name)))
  return runs
