"""Paper 000's runs: what a config trains and computes (`plan`), and the runs' own steps.

- Schedule pretrainings (000c, 000d): the collapse metrics of the train
  features along training (`TRACKED`, from the trainer's evaluation records).
- Sweep pretrainings (000e, `SWEEPS`): the final train metrics, then L-BFGS
  probes of the frozen penultimate features on each downstream task.
- The lambda pilot (000e's design): pretrainings at ``pilot_cosine_regs`` and
  ``pilot_seed`` (not a study seed), their final train metrics only: the
  regulariser's effect on within-class cosine similarity, from which the
  config's lambda grid was chosen before any transfer number existed.
- The theorem run (000a, 000b): Thm 5.1's closed form against a fitted
  least-squares probe (`least_squares_probe_loss`) at several layers of one
  sweep run's features, and VCI's invariance under random invertible maps.
- The UFM run (000d): lambda_H = 0 and no injected noise.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nc_jax import metrics
from nc_jax import sims
from nc_jax.rundir import RunDir
from nc_jax.studies import sweep
from nc_jax.studies.common import probe_layers, say
from nc_jax.train import input as input_lib

# 000e's metrics: VCI and the paper's three earlier ones; its "Cosine Similarity" is
# Kornblith et al.'s within-class cosine distance (SPEC.md cosine_within).
METRICS_000E = ('vci', 'fuzziness', 'squared_distance', 'cosine_within')
FALL_METRICS = METRICS_000E + ('class_separation',)  # 000c's curves; 000b's maps.
TRACKED = ('fuzziness', 'squared_distance', 'cosine_within', 'class_separation', 'vci',
           'within_vb', 'within_vb_perp')
# The summary numbers every trainer run records (the gates read them).
KEEP = ('test_accuracy', 'train_accuracy', 'train_loss', 'train_nc1', 'terminal_phase_epoch')
# A downstream task's score MLOG reads (``score`` of its config): paper 000 App. C
# uses mean per-class accuracy for some tasks, top-1 for the others.
SCORES = {'top1': 'probe_top1', 'mean_per_class': 'probe_mean_per_class'}
# 000e's sweeps: the run's kind (also its tag) -> the config key of its values,
SWEEPS = {'temperature': 'temperatures', 'cosine_reg': 'cosine_regs'}
# and the trainer config key it sets (on the pretraining's CE loss).
SWEEP_KEYS = {'temperature': 'loss.kwargs.temperature', 'cosine_reg': 'loss.cosine_reg'}
_PREFIX = {'temperature': 'tau', 'cosine_reg': 'cosreg'}


def _train_curves(run, rdir) -> dict[str, list]:
  """After a schedule's pretraining: ``{'epoch', metric: [one value per evaluated epoch]}``
  of the train features (penultimate), for `TRACKED`, 'nc1' and 'accuracy'."""
  del run
  recs = RunDir(rdir).eval(split='train', layer='penultimate')
  return {k: [r.get(k) for r in recs] for k in ('epoch',) + TRACKED + ('nc1', 'accuracy')}


def _probe_tasks(config, rdir: str) -> dict[str, dict[str, float]]:
  """Per downstream task, the linear probe of a run's penultimate features: its
  ``score`` (the accuracy MLOG reads, `SCORES`), top-1, mean per-class accuracy, L2."""
  out = {}
  for task, dcfg in config.downstream.items():
    tr, te = input_lib.load_data(dcfg)
    r = probe_layers(rdir, tr, te, config.probe, layers=('penultimate',), seed=dcfg.seed,
                     batch_size=dcfg.evals.batch_size)['penultimate']
    out[task] = dict(score=r[SCORES[dcfg.score]], top1=r['probe_top1'],
                     mean_per_class=r['probe_mean_per_class'], l2=r['probe_l2'])
  return out


def _final_train_metrics(rdir: str) -> dict[str, float]:
  last = RunDir(rdir).last('train')['penultimate']
  return {k: last.get(k) for k in TRACKED}


def _transfer(config):
  """After a sweep's pretraining: its final train metrics and downstream probes."""

  def then(run, rdir):
    probes = _probe_tasks(config, rdir)
    final = _final_train_metrics(rdir)
    scores = {t: p['score'] for t, p in probes.items()}
    say(f"{run.name}: vci {final['vci']:.4f}, downstream {scores}")
    return dict(final, downstream_accuracy=scores, downstream=probes)

  return then


def _pilot(run, rdir):
  """After a pilot pretraining: its final train metrics (no probes)."""
  del run
  return _final_train_metrics(rdir)


def least_squares_probe_loss(h: np.ndarray, y: np.ndarray, num_classes: int) -> float:
  """min over (W, b) of (1/2) sum_i w_i ||W h_i + b - e_{y_i}||^2, w_i = 1/(K n_{y_i}).

  Fitted by weighted least squares in float64 (`numpy.linalg.lstsq`): the
  class-balanced MSE probe whose minimum Thm 5.1 gives in closed form.
  """
  h = np.asarray(h, np.float64)
  counts = np.bincount(y, minlength=num_classes)
  k = int(np.sum(counts > 0))
  w = 1.0 / (k * counts[y])
  x = np.concatenate([h, np.ones((len(h), 1))], axis=1) * np.sqrt(w)[:, None]
  t = np.eye(num_classes)[y] * np.sqrt(w)[:, None]
  coef, *_ = np.linalg.lstsq(x, t, rcond=None)
  return float(0.5 * np.sum((x @ coef - t) ** 2))


def _probe_losses(feats: Mapping[str, np.ndarray], y: np.ndarray, k: int,
                  layers: Sequence[str]) -> dict[str, float]:
  """000a, per layer: Thm 5.1's closed form and the fitted probe's loss (float64)."""
  out = {}
  for layer in layers:
    m = metrics.class_moments(jnp.asarray(feats[layer], jnp.float64), jnp.asarray(y),
                              num_classes=k)
    out[f'closed_form_{layer}'] = float(metrics.linear_probe_mse(m))
    out[f'fitted_{layer}'] = least_squares_probe_loss(feats[layer], y, k)
  return out


def _invariance(h: np.ndarray, y: np.ndarray, k: int, num_maps: int) -> dict[str, Any]:
  """000b: |metric(h A) / metric(h) - 1| per `FALL_METRICS` and cond(A), for
  ``num_maps`` random Gaussian maps A (seed 0)."""
  rng = np.random.default_rng(0)
  report = lambda x: metrics.collapse_report(jnp.asarray(x), jnp.asarray(y), num_classes=k)
  base = report(h)
  changes, conds = {key: [] for key in FALL_METRICS}, []
  for _ in range(num_maps):
    a = rng.normal(size=(h.shape[1], h.shape[1]))
    conds.append(float(np.linalg.cond(a)))
    rep = report(h @ a)
    for key in changes:
      changes[key].append(abs(float(rep[key]) / float(base[key]) - 1))
  return dict(relative_change=changes, map_condition_numbers=conds)


def _example_4_2() -> dict[str, list[float]]:
  """Obs 4.2's example: Sigma_B = diag(1, 0), Sigma_W = I, mapped by U = [[1, 1], [0, 1]];
  fuzziness and VCI before and after."""
  s2 = np.sqrt(2.0)
  within = np.array([[s2, 0], [-s2, 0], [0, s2], [0, -s2]])
  x = np.concatenate([within + [1, 0], within + [-1, 0]])
  y = jnp.asarray(np.repeat([0, 1], 4))
  u = np.array([[1.0, 1.0], [0.0, 1.0]])
  m = [metrics.class_moments(jnp.asarray(v), y, num_classes=2) for v in (x, x @ u.T)]
  return dict(example_fuzziness=[float(metrics.fuzziness(mi)) for mi in m],
              example_vci=[float(metrics.vci(mi)) for mi in m])


def _theorem_run(config):
  """000a / 000b on the features of the run this run depends on (its latest checkpoint)."""

  def execute(run, rdir):
    # The source run is this run's dependency, in the same study folder.
    src = RunDir(sweep.run_dir(os.path.dirname(os.path.dirname(rdir)), run.deps[0]))
    tr, _ = input_lib.load_data(src.config)
    sub = tr.subset(np.arange(min(len(tr), config.theorem_examples)))
    layers = tuple(config.theorem_layers)
    feats = src.features({'train': sub}, layers=layers)['train']
    y, k = sub.labels, sub.num_classes
    with jax.enable_x64(True):
      return dict(_probe_losses(feats, y, k, layers),
                  **_invariance(np.asarray(feats['penultimate'], np.float64), y, k,
                                config.num_maps),
                  **_example_4_2())

  return execute


def _ufm_run(config):
  """000d's UFM: lambda_H = 0 and no injected noise; within_vb(_perp) and loss by step."""

  def execute(run, rdir):
    del run, rdir
    u = config.ufm
    spec = sims.UFMSpec.balanced(num_classes=u.num_classes, samples_per_class=u.samples_per_class,
                                 dim=u.dim, loss=u.loss, num_steps=u.num_steps,
                                 log_every=u.log_every)
    hp = sims.UFMHparams(learning_rate=u.learning_rate, lambda_w=u.lambda_w, lambda_h=0.0)
    res = sims.simulate(hp, 0, spec=spec)
    return dict(steps=spec.steps.tolist(),
                **{k: np.asarray(res.history[k]).tolist()
                   for k in ('within_vb', 'within_vb_perp', 'loss')})

  return execute


def plan(config, workdir: str) -> list[sweep.Run]:
  """The study's runs, each tagged (see the package docstring); ``workdir`` is unused."""
  del workdir
  runs = []
  for seed in config.schedule_seeds:
    for name, tree in config.schedules.items():
      over = sweep.dotted_overrides(tree)
      runs.append(sweep.Run(f'schedule_{name}_seed{seed}',
                            sweep.train(keep=KEEP, then=_train_curves),
                            sweep.with_overrides(config.pretrain, dict(over, seed=seed)),
                            seed=seed, overrides=over, tags=dict(kind='schedule', schedule=name)))
  for lam in config.pilot_cosine_regs:
    over = {SWEEP_KEYS['cosine_reg']: lam}
    runs.append(sweep.Run(f'pilot_cosreg{lam:g}', sweep.train(keep=KEEP, then=_pilot),
                          sweep.with_overrides(config.pretrain,
                                               dict(over, seed=config.pilot_seed)),
                          seed=config.pilot_seed, overrides=over,
                          tags=dict(kind='pilot', cosine_reg=lam)))
  pretrain_and_probe = sweep.train(keep=KEEP, then=_transfer(config))
  for seed in config.seeds:
    for kind, key in SWEEPS.items():
      for value in config[key]:
        over = {SWEEP_KEYS[kind]: value}
        runs.append(sweep.Run(f'{_PREFIX[kind]}{value:g}_seed{seed}', pretrain_and_probe,
                              sweep.with_overrides(config.pretrain, dict(over, seed=seed)),
                              seed=seed, overrides=over, tags={'kind': kind, kind: value}))
  source = [r for r in runs if r.matches(kind='temperature', temperature=config.theorem_temperature,
                                         seed=config.seeds[0])]
  if len(source) != 1:
    raise ValueError(f'theorem_temperature {config.theorem_temperature} is not one of the '
                     f'temperatures {tuple(config.temperatures)}')
  runs.append(sweep.Run('theorem', _theorem_run(config), deps=(source[0].name,),
                        seed=source[0].seed, tags=dict(kind='theorem')))
  runs.append(sweep.Run('ufm_null_space', _ufm_run(config), tags=dict(kind='ufm')))
  return runs
