"""Paper 004: "Are Neurons Actually Collapsed? On the Fine-Grained Structure in
Neural Representations" — claims 004a-004c as one study.

Runs (``configs/papers/p004_fine_grained.py``), each tagged for the claims:

- ``coarse_<model>_seed<s>`` (tags ``kind='coarse', model=..., tested=...``):
  a trainer run on coarse labels y mod C~ (``label_map='mod:5'``),
  checkpointed at the analysis epochs (epoch 0 = initialisation), then the
  class distance matrix over the ORIGINAL classes and its MSDR at every
  analysis epoch. The models in ``clp_models`` are the tested ones (seeds
  ``coarse_seeds``): also t-SNE views per super-class, CLP and a true-label
  linear probe (`fine_grained.analyze_run`). The others (seeds
  ``reported_seeds``) are reported, not tested.
- ``fine_<model>_seed<s>`` (``kind='fine'``): a trainer run on fine labels
  (each class split at random in two, ``label_map='split:2'``); distances
  between the 2C fine classes at the analysis epochs.
- ``mixture_<part>`` (``kind='mixture', role='test', part=...``): the
  Gaussian-mixture sweeps of App. B (Figs 18-21), every seed's final and
  initial numbers recorded; ``mixture_hidden_dim_lr<x>``
  (``role='investigation'``): the hidden-width sweep at another learning rate.

Each claim is a `reproduce.ClaimSpec` in `CLAIMS`: evidence read from the runs
by their tags (per-seed values as `spread.quantity`), gates (the
preconditions: the runs trained, the collapse happened, the MSDR read is the
trained network's, enough seeds), checks (the claim, every comparison with
its noise through `spread`), figures and text (the setting composed from
`settings`). The criteria are the ``constants`` of each spec, fixed before
the run.

References: paper 004 secs 4-6, Figs 1-8, 11-12, 15-21, App. B; SPEC.md
"Fine-grained structure (004)".
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import ml_collections
import numpy as np

from nc_jax import data
from nc_jax import plots
from nc_jax.probes.correlation import spearman
from nc_jax.rundir import RunDir
from nc_jax.studies import fine_grained
from nc_jax.studies import reproduce
from nc_jax.studies import settings
from nc_jax.studies import simulations
from nc_jax.studies import spread
from nc_jax.studies import sweep
from nc_jax.workdir import METRICS, Workdir

PAPER = '004'
TITLE = 'Are Neurons Actually Collapsed? On the Fine-Grained Structure in Neural Representations'

MIXTURE_PARTS = ('input_dim', 'hidden_dim', 'weight_decay', 'similarity')

# What a trainer run records from its summary (`sweep.train(keep=...)`).
KEEP = ('epoch', 'train_accuracy', 'test_accuracy', 'train_loss', 'train_nc1',
        'terminal_phase_epoch')

# ---------------------------------------------------------------------------
# Criteria: the constants each claim's gates, checks and criterion text read.
# Fixed before the run (the check thresholds are those of the first pass);
# never tuned afterwards.
# ---------------------------------------------------------------------------

_NOISE = dict(z=spread.Z, min_seeds=spread.MIN_SEEDS)

C_004A = dict(
    _NOISE,
    train_acc_min=0.99,     # gate: every tested run fits its coarse train labels.
    epochs_past_tpt=2.0,    # gate: trained >= this x the first 100%-train-accuracy epoch.
    nc1_max=0.5,            # gate: final coarse train NC1 (penultimate) <= this: collapsed.
    msdr_min=1.1,           # check: final MSDR above this = structure visible.
    clp_ratio_min=0.9,      # check: CLP above this x the true-label probe.
    reconstruction_min=0.8,  # check: k-means on t-SNE recovers the train sub-classes.
)

C_004B = dict(
    _NOISE,
    train_acc_min=0.99,     # gate: every point at sigma^2 >= fit_sigma2_min fits.
    fit_sigma2_min=1.0,     # (the clusters are well apart there: separable data).
    wd_strength_min=1.0,    # gate: max lr x wd x steps (the decay could shrink the
                            # weights by e on its own) so "no effect" is a test.
    rho_sigma2_min=0.7,     # check: Spearman(sigma^2, MSDR) of every line.
    rho_dim_min=0.5,        # check: mean over sigma^2 >= dim_sigma2_min of
    dim_sigma2_min=2.0,     #   Spearman(dimension, MSDR).
    wd_spread_max=0.2,      # check: mean (max-min)/mean MSDR over weight decays.
    rho_tau2_min=0.7,       # check: Spearman(tau^2, MSDR of similar sub-classes).
)

C_004C = dict(
    _NOISE,
    train_acc_min=0.99,     # gate: every run fits its fine (2C) train labels.
    nc1_max=0.5,            # gate: final fine-label train NC1 <= this: the 2C collapse.
    fine_early_msdr_max=1.2,   # check: early, the halves of a class indistinct.
    fine_early_sep_min=1.5,    # check: early, the original classes apart.
    fine_growth_min=1.1,       # check: MSDR over original classes grows x this.
    fine_final_sep_min=1.1,    # check: at the end, original classes still apart.
)


# ---------------------------------------------------------------------------
# What the gates read (every comparison: `spread`).
# ---------------------------------------------------------------------------


def _extreme(fn: Callable[[list[float]], float], values: Iterable[float | None]
             ) -> float | None:
  """``fn`` (min or max) of ``values``; None if there are none or one is None or NaN."""
  values = list(values)
  if not values or any(v is None or math.isnan(v) for v in values):
    return None
  return float(fn(values))


def moved_gate(pairs: Iterable[tuple[Any, Any]], about: str) -> reproduce.Gate:
  """Gate: training moved every number of ``pairs``, up or down.

  ``pairs``: (trained, untrained) per-seed values (`spread.Values`). The
  value is the smallest |z| of (trained - untrained), paired by seed
  (`spread.z_score`), the threshold `spread.Z`. Where a z is not measurable
  (a value missing or not finite, one seed, or no change at all, as an
  untrained network gives) the value is None and the gate fails. A rise
  only: `reproduce.changed_gate`.
  """
  zs = [abs(spread.z_score(after, before, paired=True)) for after, before in pairs]
  return reproduce.Gate(_extreme(min, zs), spread.Z, '>', about)


# ---------------------------------------------------------------------------
# Text computed from the config (`settings` plus what is measured).
# ---------------------------------------------------------------------------

# Images in the full training split (a config with train_examples_per_class = 0).
_TRAIN_SIZES = {'mnist': 60_000, 'fashion_mnist': 60_000, 'cifar10': 50_000,
                'cifar10_jpeg': 50_000, 'cifar100': 50_000}
_EMBEDDINGS = {'tsne': 't-SNE', 'opentsne': 't-SNE (openTSNE)', 'pca': 'PCA'}


def _num_labels(t) -> int:
  """Training labels of a trainer config: y mod k -> k; each class split in k -> k x C."""
  classes = 100 if t.dataset == 'cifar100' else 10
  kind, _, k = t.label_map.partition(':')
  return int(k) if kind == 'mod' else classes * int(k) if kind == 'split' else classes


def _run_text(t, seeds: Sequence[int]) -> str:
  """`settings.trainer`, then the training labels and images in all, test images, seeds."""
  labels = _num_labels(t)
  images = (t.train_examples_per_class * labels if t.train_examples_per_class
            else _TRAIN_SIZES.get(t.dataset))
  count = f'{images:,} training images over {labels} labels' if images else f'{labels} labels'
  return (f'{settings.trainer(t)}; {count}, tested on {settings.test_data(t)}; '
          f'{settings.seeds(seeds)}')


def _distances_text(config, epochs: Sequence[int], between: str = '') -> str:
  """'Distances{between} on N training images at epochs 0, 5 (0 = initialisation)'."""
  return (f'Distances{between} on {settings.number(config.analysis_train_examples)} '
          f'training images at epochs {", ".join(str(e) for e in epochs)} '
          '(0 = initialisation)')


def _coarse_config(config, model: str):
  return sweep.with_overrides(config.coarse, config.coarse_models[model].to_dict())


def setting_004a(config) -> str:
  tested = [m for m in config.coarse_models if m in config.clp_models]
  reported = [m for m in config.coarse_models if m not in config.clp_models]
  p, clp = config.probe, config.clp
  perplexity = f' (perplexity {clp.perplexity:g})' if 'tsne' in clp.embedding else ''
  text = ('. '.join(_run_text(_coarse_config(config, m), config.coarse_seeds) for m in tested)
          + f'. {_distances_text(config, config.coarse_epochs)}; CLP: '
          f'{_EMBEDDINGS.get(clp.embedding, clp.embedding)}{perplexity} and k-means per '
          f'super-class ({clp.kmeans_restarts} restarts), L-BFGS probe with '
          f'{p.l2_grid_size} L2 values in [{p.l2_min:g}, {p.l2_max:g}] ({p.max_iters} '
          'iterations).')
  if reported:
    text += ' Reported, not tested (MSDR only): ' + '. '.join(
        _run_text(_coarse_config(config, m), config.reported_seeds) for m in reported) + '.'
  return text


def setting_004b(config) -> str:
  m = config.mixture
  sim = m.similarity
  lrs = ', '.join(f'{lr:g}' for lr in config.mixture_width_lrs)
  sweeps = settings.grid({'input dims': m.input_dims, 'hidden widths': m.hidden_dims,
                          'weight decays': m.weight_decays, 'sigma^2': m.sigma2,
                          'tau^2': sim.tau2})
  return (f'App. B model (2-layer ReLU MLP, full-batch gradient descent on the coarse '
          f'labels, PyTorch-default initialisation, lr {m.learning_rate:g}, '
          f'{settings.number(m.num_steps)} steps): {m.num_clusters} clusters x '
          f'{m.samples_per_cluster} samples, {m.num_superclasses} super-classes, d_input = '
          f'{m.input_dim}, d_hidden = {m.hidden_dim}, weight decay {m.weight_decay:g} by '
          f'default; {sweeps} at sigma^2 = {sim.sigma2:g} ({sim.num_similar} similar '
          f'super-classes); {settings.seeds(range(m.num_seeds))}.'
          + (f' Width investigation: the hidden-width sweep again at lr {lrs}.' if lrs else ''))


def setting_004c(config) -> str:
  return (f'{_run_text(config.fine, config.fine_seeds)}. '
          f'{_distances_text(config, config.fine_epochs, " between the fine classes")}; '
          f'"early" = epoch {config.fine_early_epoch}.')


# ---------------------------------------------------------------------------
# The runs.
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


def _mixture_lines(mcfg, part: str) -> list[dict[str, Any]]:
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


_MIXTURE_KEYS = ('msdr', 'msdr_init', 'train_accuracy', 'loss')


def mixture_tables(mcfg, part: str, records: Sequence[Mapping[str, Any]]
                   ) -> dict[str, dict[str, Any]]:
  """Per-line tables ``{key: [points][seeds]}`` from a mixture run's metrics.jsonl.

  A record belongs to a line when it has the line's fixed parameters, to a
  point by its x value and seed (numbers compared to 12 decimals); a value
  missing or not finite is None.
  """
  keys = _MIXTURE_KEYS + (('msdr_similar', 'msdr_dissimilar') if part == 'similarity' else ())
  rnd = lambda v: round(float(v), 12)
  out = {}
  for line in _mixture_lines(mcfg, part):
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


def plan(config, workdir: str) -> list[sweep.Run]:
  """Every run of the study (see the module docstring)."""
  del workdir
  runs = []
  for model, over in config.coarse_models.items():
    tested = model in config.clp_models
    for seed in (config.coarse_seeds if tested else config.reported_seeds):
      tcfg = sweep.with_overrides(config.coarse, dict(seed=seed, **over.to_dict()))
      runs.append(sweep.Run(
          f'coarse_{model}_seed{seed}',
          sweep.train(keep=KEEP, then=_coarse_analysis(config, tested)), tcfg, seed=seed,
          overrides=dict(arch=model, **over.to_dict()),
          tags=dict(kind='coarse', model=model, tested=tested)))
  for seed in config.fine_seeds:
    tcfg = sweep.with_overrides(config.fine, dict(seed=seed))
    runs.append(sweep.Run(
        f'fine_{tcfg.model}_seed{seed}', sweep.train(keep=KEEP, then=_fine_analysis(config)),
        tcfg, seed=seed, overrides=dict(label_map=tcfg.label_map),
        tags=dict(kind='fine', model=tcfg.model)))
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


def _copy(study: reproduce.Study, src: str, name: str) -> list[str]:
  """Copies a run's figure into the study folder (nothing if the run drew none)."""
  if not os.path.exists(src):
    return []
  shutil.copyfile(src, study.file(name))
  return [name]


def _by_epoch(by_epoch: Mapping[str, float]) -> tuple[list[int], list[float]]:
  epochs = sorted(int(e) for e in by_epoch)
  return epochs, [by_epoch[str(e)] for e in epochs]


# ---------------------------------------------------------------------------
# 004a: coarse labels.
# ---------------------------------------------------------------------------


def evidence_004a(study: reproduce.Study) -> dict[str, Any]:
  tested = study.where(kind='coarse', tested=True)
  reported = study.where(kind='coarse', tested=False)
  finals = [r.final for r in tested]
  per_seed = lambda values: spread.quantity(list(values))
  last = lambda f: _by_epoch(f['msdr_by_epoch'])[1][-1]
  clp = [f['clp_accuracy'] for f in finals]
  lpo = [f['lpo_accuracy'] for f in finals]
  return dict(
      tested_model=sorted({r.tags['model'] for r in tested}),
      seeds=[r.seed for r in tested],
      last_epoch=[f['epoch'] for f in finals],
      terminal_phase_epoch=[f['terminal_phase_epoch'] for f in finals],
      **{k: per_seed(f[k] for f in finals)
         for k in ('train_accuracy', 'test_accuracy', 'train_nc1', 'train_nc1_init')},
      msdr_init=per_seed(f['msdr_by_epoch'].get('0') for f in finals),
      final_msdr=per_seed(last(f) for f in finals),
      clp_accuracy=per_seed(clp),
      true_label_probe_accuracy=per_seed(lpo),
      clp_over_probe=per_seed(a / b if b else None for a, b in zip(clp, lpo)),
      reconstruction_accuracy=per_seed(f['clp_reconstruction_accuracy'] for f in finals),
      msdr_by_epoch={f"{r.tags['model']}_seed{r.seed}": r.final['msdr_by_epoch']
                     for r in tested + reported},
      reported={f"{r.tags['model']}_seed{r.seed}": dict(
          final_msdr=last(r.final), msdr_init=r.final['msdr_by_epoch'].get('0'),
          train_accuracy=r.final['train_accuracy'], test_accuracy=r.final['test_accuracy'])
                for r in reported})


def gates_004a(ev, c) -> dict[str, reproduce.Gate]:
  ratios = [e / t if t else None for e, t in zip(ev['last_epoch'], ev['terminal_phase_epoch'])]
  return dict(
      seeds=reproduce.seeds_gate(len(ev['seeds'])),
      runs_trained=reproduce.at_least(
          _extreme(min, ev['train_accuracy']['values']), c['train_acc_min'],
          'smallest final coarse train accuracy of the tested runs'),
      terminal_phase=reproduce.at_least(
          _extreme(min, ratios), c['epochs_past_tpt'],
          'smallest last epoch / first epoch at 100% train accuracy (none: never reached)'),
      coarse_collapse=reproduce.at_most(
          _extreme(max, ev['train_nc1']['values']), c['nc1_max'],
          'largest final coarse train NC1 (penultimate): the super-classes collapsed'),
      msdr_moved_by_training=moved_gate(
          [(ev['final_msdr'], ev['msdr_init'])],
          'abs(z) of final - initial MSDR, paired by seed: the MSDR read is the trained '
          "network's, not the input's"))


def checks_004a(ev, c) -> dict[str, bool | None]:
  scaled = [None if x is None else c['clp_ratio_min'] * x
            for x in ev['true_label_probe_accuracy']['values']]
  return dict(
      msdr=spread.exceeds(ev['final_msdr'], c['msdr_min']),
      clp_close=spread.exceeds(ev['clp_accuracy'], scaled, paired=True),
      subclusters=spread.exceeds(ev['reconstruction_accuracy'], c['reconstruction_min']))


def figure_004a(ev, study: reproduce.Study) -> list[str]:
  tested = study.where(kind='coarse', tested=True)
  figs = []
  if tested:
    for f in ('class_distances.png', 'tsne_superclasses.png', 'clp.png'):
      figs += _copy(study, os.path.join(tested[0].path, f), f'004a_{f}')
  lines = {}
  for name, by_epoch in ev['msdr_by_epoch'].items():
    epochs, msdr = _by_epoch(by_epoch)
    lines[name] = ([e / epochs[-1] for e in epochs], msdr)
  plots.xy_lines(study.file('004a_msdr_over_epochs.png'), lines,
                 xlabel='fraction of training (epoch / last epoch)', ylabel='MSDR',
                 title='MSDR over the original classes (train), coarse labels y mod 5')
  figs.append('004a_msdr_over_epochs.png')
  for r in study.where(kind='coarse', tested=False):
    figs += _copy(study, os.path.join(r.path, 'class_distances.png'),
                  f"004a_class_distances_{r.tags['model']}_seed{r.seed}.png")
  return figs


def notes_004a(ev, config) -> str:
  del config
  text = ('The reported runs (other architectures, one seed) are not tested. The trainer '
          'stops a run whose loss turns non-finite, so a recorded run did not diverge.')
  if spread.z_score(ev['final_msdr'], ev['msdr_init'], paired=True) < 0:
    text += (' Training lowered MSDR below its value at initialisation: the structure '
             'seen is what is left of the input\'s.')
  return text


# ---------------------------------------------------------------------------
# 004b: the Gaussian mixture.
# ---------------------------------------------------------------------------


def _table(line: Mapping[str, Any], key: str) -> np.ndarray:
  """[points, seeds] float array (NaN where a value is missing)."""
  return np.array([[np.nan if v is None else v for v in row] for row in line[key]],
                  np.float64)


def _per_seed(fn: Callable[[int], Any], num_seeds: int) -> dict[str, Any]:
  """`spread.quantity` of ``fn(seed)`` over the seeds."""
  return spread.quantity([fn(s) for s in range(num_seeds)])


def _msdr_by_line(lines: Mapping[str, Mapping[str, Any]], seed: int, sigma2_min: float
                  ) -> tuple[list[Any], np.ndarray]:
  """(each line's value, MSDR [lines, points at sigma^2 >= sigma2_min]) of one seed."""
  labels = list(lines)
  keep = np.asarray(lines[labels[0]]['x']) >= sigma2_min
  table = np.stack([_table(lines[k], 'msdr')[:, seed] for k in labels])
  return [lines[k]['value'] for k in labels], table[:, keep]


def _dim_trend(lines: Mapping[str, Mapping[str, Any]], seed: int, sigma2_min: float) -> float:
  """Mean over sigma^2 >= sigma2_min of Spearman(dimension, MSDR) of one seed."""
  dims, table = _msdr_by_line(lines, seed, sigma2_min)
  rhos = [spearman(dims, column) for column in table.T]
  return float(np.mean(rhos)) if rhos else float('nan')


def _wd_spread(lines: Mapping[str, Mapping[str, Any]], seed: int, sigma2_min: float) -> float:
  """Mean over sigma^2 >= sigma2_min of (max - min) / mean MSDR over weight decays."""
  _, table = _msdr_by_line(lines, seed, sigma2_min)
  rel = (table.max(0) - table.min(0)) / table.mean(0)
  return float(rel.mean()) if rel.size else float('nan')


def _msdr_at_largest_x(lines) -> dict[str, dict[str, Any]]:
  out = {}
  for label, line in lines.items():
    i = int(np.argmax(line['x']))
    out[label] = dict(x=line['x'][i], trained=spread.quantity(_table(line, 'msdr')[i]),
                      initial=spread.quantity(_table(line, 'msdr_init')[i]))
  return out


def _fit(runs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
  """The preconditions: the worst train accuracy by sigma^2 (over every line and
  seed) and the number of non-finite values."""
  worst: dict[str, list[float | None]] = {}  # sigma^2 -> the worst seed of each point
  nonfinite = 0
  for part, f in runs.items():
    for line in f['lines'].values():
      nonfinite += sum(int(np.sum(~np.isfinite(_table(line, k)))) for k in _MIXTURE_KEYS)
      for x, acc in zip(line['x'], _table(line, 'train_accuracy')):
        sigma2 = line['value'] if part == 'similarity' else x
        worst.setdefault(f'{sigma2:g}', []).append(_extreme(min, acc))
  fit = {k: _extreme(min, v) for k, v in sorted(worst.items(), key=lambda kv: float(kv[0]))}
  return dict(min_train_accuracy_by_sigma2=fit, num_nonfinite=nonfinite)


def _similarity(line: Mapping[str, Any], num_seeds: int) -> dict[str, Any]:
  """MSDR of the similar and dissimilar sub-classes over tau^2 (Fig 21)."""
  ms, md = _table(line, 'msdr_similar'), _table(line, 'msdr_dissimilar')
  i = int(np.argmin(line['x']))
  return dict(tau2=line['x'], msdr_similar=ms.mean(1).tolist(),
              msdr_dissimilar=md.mean(1).tolist(),
              smallest_tau2=dict(tau2=line['x'][i], similar=spread.quantity(ms[i]),
                                 dissimilar=spread.quantity(md[i])),
              spearman_tau2=_per_seed(lambda s: spearman(line['x'], ms[:, s]), num_seeds))


def _width_trend(lines, num_seeds: int, sigma2_min: float) -> dict[str, Any]:
  """The hidden-width trend and, per width, trained and initial MSDR at the largest sigma^2."""
  return dict(
      hidden_dim_trend=_per_seed(lambda s: _dim_trend(lines, s, sigma2_min), num_seeds),
      msdr_at_sigma2_max={k: dict(trained=v['trained']['mean'], initial=v['initial']['mean'])
                          for k, v in _msdr_at_largest_x(lines).items()})


def evidence_004b(study: reproduce.Study) -> dict[str, Any]:
  sigma2_min = C_004B['dim_sigma2_min']
  runs = {r.tags['part']: r.final for r in study.where(kind='mixture', role='test')}
  num_seeds = min((f['num_seeds'] for f in runs.values()), default=0)
  ev: dict[str, Any] = dict(num_seeds=num_seeds, parts=sorted(runs), **_fit(runs))
  if 'weight_decay' in runs:
    f = runs['weight_decay']
    ev['weight_decay_strength'] = float(max(line['value'] for line in f['lines'].values())
                                        * f['learning_rate'] * f['num_steps'])
  ev['msdr_at_largest_x'] = {f'{part}:{label}': v for part, f in runs.items()
                             for label, v in _msdr_at_largest_x(f['lines']).items()}
  # The claim's numbers, per seed.
  ev['spearman_sigma2'] = {
      f'{part}:{label}': _per_seed(
          lambda s, line=line: spearman(line['x'], _table(line, 'msdr')[:, s]), num_seeds)
      for part, f in runs.items() if part != 'similarity' for label, line in f['lines'].items()}
  for part in ('input_dim', 'hidden_dim'):
    if part in runs:
      ev[f'{part}_trend'] = _per_seed(
          lambda s, p=part: _dim_trend(runs[p]['lines'], s, sigma2_min), num_seeds)
  if 'weight_decay' in runs:
    ev['weight_decay_spread'] = _per_seed(
        lambda s: _wd_spread(runs['weight_decay']['lines'], s, sigma2_min), num_seeds)
  if 'similarity' in runs:
    ev.update(_similarity(runs['similarity']['lines']['tau2'], num_seeds))
  # Reported: the hidden-width trend at every learning rate (the investigation).
  widths = [(r.tags['learning_rate'], r.final['lines'], r.final['num_seeds'])
            for r in study.where(kind='mixture', role='investigation')]
  if 'hidden_dim' in runs:
    widths.append((runs['hidden_dim']['learning_rate'], runs['hidden_dim']['lines'], num_seeds))
  ev['width_investigation'] = {f'lr{lr:g}': _width_trend(lines, n, sigma2_min)
                               for lr, lines, n in widths}
  return ev


def gates_004b(ev, c) -> dict[str, reproduce.Gate]:
  fit = [v for k, v in ev['min_train_accuracy_by_sigma2'].items()
         if float(k) >= c['fit_sigma2_min']]
  return dict(
      seeds=reproduce.seeds_gate(ev['num_seeds']),
      runs_trained=reproduce.at_least(
          _extreme(min, fit), c['train_acc_min'],
          f"smallest train accuracy at sigma^2 >= {c['fit_sigma2_min']:g}, every line and seed"),
      finite=reproduce.at_most(ev['num_nonfinite'], 0,
                               'non-finite MSDR, loss or accuracy values (divergence)'),
      msdr_moved_by_training=moved_gate(
          [(v['trained'], v['initial']) for v in ev['msdr_at_largest_x'].values()],
          'smallest abs(z) over lines of trained - initial MSDR at the largest sigma^2 '
          "(tau^2), paired by seed: the MSDR read is the trained network's"),
      weight_decay_effective=reproduce.at_least(
          ev.get('weight_decay_strength'), c['wd_strength_min'],
          'largest lr x weight decay x steps of the weight-decay sweep'))


def checks_004b(ev, c) -> dict[str, bool | None]:
  sim = ev.get('smallest_tau2') or {}
  return dict(
      sigma2=spread.all_of([spread.exceeds(q, c['rho_sigma2_min'])
                            for q in ev['spearman_sigma2'].values()]),
      input_dim=spread.exceeds(ev.get('input_dim_trend'), c['rho_dim_min']),
      hidden_dim=spread.exceeds(ev.get('hidden_dim_trend'), c['rho_dim_min']),
      weight_decay=spread.below(ev.get('weight_decay_spread'), c['wd_spread_max']),
      similar_lower=spread.exceeds(sim.get('dissimilar'), sim.get('similar'), paired=True),
      similar_grows_with_tau2=spread.exceeds(ev.get('spearman_tau2'), c['rho_tau2_min']))


def figure_004b(ev, study: reproduce.Study) -> list[str]:
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


def notes_004b(ev, config) -> str:
  del ev
  lrs = ', '.join(f'{lr:g}' for lr in config.mixture_width_lrs)
  return ((f'Width investigation: the hidden-width sweep rerun at learning rate {lrs}; '
           'width_investigation lists the trend there and, per width, the trained MSDR '
           'next to the MSDR at initialisation. ' if lrs else '')
          + 'The input itself has MSDR about 1 + sigma^2 (1 + tau^2 for similar '
          'sub-classes), so the sigma^2, tau^2 and similar-vs-dissimilar checks are read '
          'only where training moved MSDR beyond its noise (gate msdr_moved_by_training); '
          'judging them relative to the input is left to the second pass.')


# ---------------------------------------------------------------------------
# 004c: fine labels.
# ---------------------------------------------------------------------------


def evidence_004c(study: reproduce.Study) -> dict[str, Any]:
  runs = study.where(kind='fine')
  finals = [r.final for r in runs]
  per_seed = lambda values: spread.quantity(list(values))
  last = lambda f, key: _by_epoch(f[f'{key}_by_epoch'])[1][-1]
  early = str(study.config.fine_early_epoch)
  early_msdr = [f['msdr_original_by_epoch'][early] for f in finals]
  final_msdr = [last(f, 'msdr_original') for f in finals]
  return dict(
      seeds=[r.seed for r in runs],
      early_epoch=int(early),
      last_epoch=[max(int(e) for e in f['msdr_original_by_epoch']) for f in finals],
      **{k: per_seed(f[k] for f in finals)
         for k in ('train_accuracy', 'train_nc1', 'train_nc1_init')},
      terminal_phase_epoch=[f['terminal_phase_epoch'] for f in finals],
      msdr_init=per_seed(f['msdr_original_by_epoch'].get('0') for f in finals),
      separation_init=per_seed(f['separation_by_epoch'].get('0') for f in finals),
      early_msdr=per_seed(early_msdr),
      early_separation=per_seed(f['separation_by_epoch'][early] for f in finals),
      final_msdr=per_seed(final_msdr),
      final_separation=per_seed(last(f, 'separation') for f in finals),
      growth=per_seed(b / a if a else None for a, b in zip(early_msdr, final_msdr)),
      by_epoch={f'seed{r.seed}': dict(msdr_original=r.final['msdr_original_by_epoch'],
                                      separation=r.final['separation_by_epoch'])
                for r in runs})


def gates_004c(ev, c) -> dict[str, reproduce.Gate]:
  return dict(
      seeds=reproduce.seeds_gate(len(ev['seeds'])),
      runs_trained=reproduce.at_least(
          _extreme(min, ev['train_accuracy']['values']), c['train_acc_min'],
          'smallest final train accuracy on the fine labels'),
      fine_collapse=reproduce.at_most(
          _extreme(max, ev['train_nc1']['values']), c['nc1_max'],
          'largest final train NC1 on the fine labels (penultimate): the 2C collapse'),
      msdr_rose_from_initialisation=reproduce.changed_gate(
          ev['final_msdr'], ev['msdr_init'],
          'z of final - initial MSDR over the original classes, paired by seed', paired=True))


def checks_004c(ev, c) -> dict[str, bool | None]:
  return dict(
      early_halves_indistinct=spread.below(ev['early_msdr'], c['fine_early_msdr_max']),
      early_classes_apart=spread.exceeds(ev['early_separation'], c['fine_early_sep_min']),
      toward_2c=spread.exceeds(ev['growth'], c['fine_growth_min']),
      c_structure_at_end=spread.exceeds(ev['final_separation'], c['fine_final_sep_min']))


def figure_004c(ev, study: reproduce.Study) -> list[str]:
  runs = study.where(kind='fine')
  figs = _copy(study, os.path.join(runs[0].path, 'class_distances.png'),
               '004c_class_distances.png') if runs else []
  lines = {}
  for name, by in ev['by_epoch'].items():
    for key in ('msdr_original', 'separation'):
      lines[f'{name} {key}'] = _by_epoch(by[key])
  plots.xy_lines(study.file('004c_over_epochs.png'), lines, xlabel='epoch', ylabel='ratio',
                 title='Fine labels (2C): halves of a class (MSDR) and original classes '
                       '(separation)')
  return figs + ['004c_over_epochs.png']


# ---------------------------------------------------------------------------
# The claims.
# ---------------------------------------------------------------------------

_SEEDS_TEXT = ('>= {min_seeds} seeds; "a exceeds b" = mean difference > {z:g} standard errors '
               'of the difference (`spread.exceeds`)')

CLAIMS = [
    reproduce.ClaimSpec(
        id='004a',
        claim='Trained on coarse labels into the terminal phase, the original classes stay '
              'visible inside the collapsed super-classes: MSDR > 1, two sub-clusters per '
              'super-class under t-SNE, and Cluster-and-Linear-Probe close to a probe '
              'trained with the true labels.',
        paper='Secs 4-5, Figs 1-8 and 11-12: ResNet-18 on coarse CIFAR-10 (y mod 5), 350 '
              'epochs; CLP 93% on the 10 original classes; structure seen for ResNet and '
              'DenseNet, not VGG.',
        criterion=('Gates: ' + _SEEDS_TEXT + '; every tested run reaches train accuracy >= '
                   '{train_acc_min} and is trained to >= {epochs_past_tpt:g}x its first '
                   '100%-train-accuracy epoch; final coarse train NC1 <= {nc1_max} (the '
                   'super-classes collapsed); the final MSDR differs from its value at '
                   'initialisation by > {z:g} SE (paired by seed). Checks: mean final MSDR '
                   'exceeds {msdr_min}; mean CLP exceeds {clp_ratio_min} x the true-label '
                   'probe (paired by seed); mean k-means-on-t-SNE reconstruction of the train '
                   'sub-classes exceeds {reconstruction_min}. The reported runs are not '
                   'tested.'),
        constants=C_004A,
        evidence=evidence_004a, gates=gates_004a, checks=checks_004a,
        setting=setting_004a, figure=figure_004a, notes=notes_004a),
    reproduce.ClaimSpec(
        id='004b',
        claim='In the Gaussian-mixture toy, MSDR rises with the cluster spread sigma^2, the '
              'input dimension and the hidden width, not with weight decay, and is lower for '
              'similar sub-classes (rising with their spread tau^2).',
        paper='App. B, Figs 18-21: 8 clusters x 500 samples, 4 super-classes, 2-layer ReLU '
              'MLP, d_input = d_hidden = 512, weight decay 0 by default; learning rate, '
              'initialisation and training length not stated.',
        criterion=('Gates: ' + _SEEDS_TEXT + '; every point at sigma^2 >= {fit_sigma2_min:g} '
                   'reaches train accuracy >= {train_acc_min} (every line, every seed); no '
                   'non-finite value; on every line the trained MSDR at the largest sigma^2 '
                   '(tau^2) differs from its value at initialisation by > {z:g} SE (paired '
                   'by seed); the strongest weight decay has lr x wd x steps >= '
                   '{wd_strength_min:g}. Checks, on per-seed statistics: Spearman(sigma^2, '
                   'MSDR) exceeds {rho_sigma2_min} on every line of Figs 18-20; the mean over '
                   'sigma^2 >= {dim_sigma2_min:g} of Spearman(dimension, MSDR) exceeds '
                   '{rho_dim_min} for input dimension and for hidden width; the mean relative '
                   'spread (max - min) / mean of MSDR over weight decays at sigma^2 >= '
                   '{dim_sigma2_min:g} is below {wd_spread_max}; at the smallest tau^2 the '
                   'dissimilar MSDR exceeds the similar one (paired by seed), and Spearman'
                   '(tau^2, similar MSDR) exceeds {rho_tau2_min}. Tested at the default '
                   'learning rate; the width investigation is reported only.'),
        constants=C_004B,
        evidence=evidence_004b, gates=gates_004b, checks=checks_004b,
        setting=setting_004b, figure=figure_004b, notes=notes_004b),
    reproduce.ClaimSpec(
        id='004c',
        claim='Trained on fine labels (each class split at random into two), the features '
              'first cluster by the C original classes, then move toward 2C clusters, and the '
              'C-class structure is still visible at the end.',
        paper='Sec 6, Figs 15-16: ResNet-18 on fine CIFAR-10 (20 labels); distance matrices '
              'over training.',
        criterion=('Gates: ' + _SEEDS_TEXT + '; every run reaches train accuracy >= '
                   '{train_acc_min} on the fine labels; final fine-label train NC1 <= '
                   '{nc1_max} (the 2C collapse happened); the final MSDR over the original '
                   'classes exceeds its value at initialisation by > {z:g} SE (paired by '
                   'seed). Checks: at the early epoch, '
                   'MSDR over the original classes (halves of a class) is below '
                   '{fine_early_msdr_max} and the separation (mean D between halves of '
                   'different classes / between the halves of one class) exceeds '
                   '{fine_early_sep_min}; MSDR grows from the early to the last epoch by a '
                   'factor exceeding {fine_growth_min}; the final separation exceeds '
                   '{fine_final_sep_min}.'),
        constants=C_004C,
        evidence=evidence_004c, gates=gates_004c, checks=checks_004c,
        setting=setting_004c, figure=figure_004c),
]
