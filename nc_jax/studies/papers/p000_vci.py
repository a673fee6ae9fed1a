"""Paper 000: "Quantifying the Variability Collapse of Neural Networks" (VCI) —
claims 000a-000e as one study.

Runs (``configs/papers/p000_vci.py``), each tagged for the claims to select
it by (`reproduce.Study.where`):

- ``schedule_<name>_seed<s>`` (``kind='schedule', schedule=<name>``; 000c,
  000d): one pretraining per learning-rate schedule (exponential x0.975 per
  epoch after a warm-up from 1e-5; cosine; cosine without weight decay and
  warm-up) and seed, the collapse metrics of the train features recorded
  along training (epoch 0 is the initialisation).
- ``tau<t>_seed<s>`` (``kind='temperature', temperature=<t>``) and
  ``cosreg<l>_seed<s>`` (``kind='cosine_reg', cosine_reg=<l>``) (000e):
  pretrainings swept over the softmax temperature and over the within-class
  cosine regulariser; each then probed (L-BFGS linear probes of the frozen
  penultimate features) on the downstream tasks. MLOG is computed from the
  recorded accuracies by the claim.
- ``theorem`` (``kind='theorem'``; 000a, 000b): on the features of one
  trained network (the temperature sweep's run at ``theorem_temperature``,
  first seed), Thm 5.1's closed form against a fitted least-squares probe at
  several layers, and the invariance of VCI under random invertible maps
  (Obs 4.2's 2 x 2 example included).
- ``ufm_null_space`` (``kind='ufm'``; 000d): the UFM with lambda_H = 0 and NO
  injected noise.

Each claim is a `reproduce.ClaimSpec` in `CLAIMS`: its evidence (read from the
runs by their tags), gates (every run read trained; the collapse the claim is
about happened, measured against the initialisation; >= 3 seeds where the
claim is about a trend or a difference), checks (every comparison of seed
groups through `spread`) and a criterion written over the same constants
the gates and checks read, fixed before the run; its setting sentence is
composed from `settings`. Trainer runs are read through `nc_jax.rundir.RunDir`.

References: paper 000 secs 4-6, Thm 5.1, Prop 4.1, Obs 4.2-4.5, Figs 1, 3, 7,
Tables 1-2; SPEC.md.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nc_jax import metrics
from nc_jax import plots
from nc_jax import sims
from nc_jax.probes import correlation
from nc_jax.rundir import RunDir
from nc_jax.studies import reproduce
from nc_jax.studies import settings
from nc_jax.studies import spread
from nc_jax.studies import sweep
from nc_jax.studies.common import probe_layers, say
from nc_jax.train import input as input_lib

PAPER = '000'
TITLE = 'Quantifying the Variability Collapse of Neural Networks'

METRICS_000E = ('vci', 'fuzziness', 'squared_distance', 'class_separation')
FALL_METRICS = METRICS_000E + ('cosine_within',)  # 000c's curves; 000b's maps.
TRACKED = ('fuzziness', 'squared_distance', 'cosine_within', 'class_separation', 'vci',
           'within_vb', 'within_vb_perp')
# The summary numbers every trainer run records (the gates read them).
KEEP = ('test_accuracy', 'train_accuracy', 'train_loss', 'train_nc1')
# 000e's sweeps: the run's kind (also its tag and trainer key) -> the config key of its values.
SWEEPS = {'temperature': 'temperatures', 'cosine_reg': 'cosine_regs'}
_PREFIX = {'temperature': 'tau', 'cosine_reg': 'cosreg'}

# Gates shared by the claims, fixed before the run.
TRAINED = dict(
    test_accuracy_min=0.7,  # Every pretraining read: test accuracy (7 classes: chance 0.14).
)
# 000a / 000b test identities that hold for any features; the gate only asks that the
# features be a trained network's (test accuracy > 2x chance), at any scale.
TRAINED_FEATURES = dict(test_accuracy_min=0.3)
COLLAPSED = dict(
    nc1_max=0.5,  # Every run read: final train NC1 (penultimate), ~1/5 of its value at init.
)
SEEDS = dict(min_seeds=spread.MIN_SEEDS, z=spread.Z)


# ---------------------------------------------------------------------------
# Runs.
# ---------------------------------------------------------------------------


def _train_curves(run, rdir) -> dict[str, list]:
  """After a schedule's pretraining: ``{'epoch', metric: [one value per evaluated epoch]}``
  of the train features (penultimate), for `TRACKED`, 'nc1' and 'accuracy'."""
  del run
  recs = RunDir(rdir).eval(split='train', layer='penultimate')
  return {k: [r.get(k) for r in recs] for k in ('epoch',) + TRACKED + ('nc1', 'accuracy')}


def _probe_tasks(config, rdir: str) -> dict[str, float]:
  """Downstream linear-probe accuracy (top-1) of a run's penultimate features, per task."""
  out = {}
  for task, dcfg in config.downstream.items():
    tr, te = input_lib.load_data(dcfg)
    out[task] = probe_layers(rdir, tr, te, config.probe, layers=('penultimate',),
                             seed=dcfg.seed, batch_size=dcfg.eval_batch_size
                             )['penultimate']['probe_top1']
  return out


def _transfer(config):
  """After a sweep's pretraining: its final train metrics and downstream probe accuracies."""

  def then(run, rdir):
    last = RunDir(rdir).last('train')['penultimate']
    accs = _probe_tasks(config, rdir)
    say(f"{run.name}: vci {last['vci']:.4f}, downstream {accs}")
    return dict({k: last.get(k) for k in TRACKED}, downstream_accuracy=accs)

  return then


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
  del workdir
  runs = []
  for seed in config.schedule_seeds:
    for name, over in config.schedules.items():
      o = over.to_dict()
      runs.append(sweep.Run(f'schedule_{name}_seed{seed}',
                            sweep.train(keep=KEEP, then=_train_curves),
                            sweep.with_overrides(config.pretrain, dict(o, seed=seed)),
                            seed=seed, overrides=o, tags=dict(kind='schedule', schedule=name)))
  pretrain_and_probe = sweep.train(keep=KEEP, then=_transfer(config))
  for seed in config.seeds:
    for kind, key in SWEEPS.items():
      for value in config[key]:
        runs.append(sweep.Run(f'{_PREFIX[kind]}{value:g}_seed{seed}', pretrain_and_probe,
                              sweep.with_overrides(config.pretrain, {kind: value, 'seed': seed}),
                              seed=seed, overrides={kind: value}, tags={'kind': kind, kind: value}))
  source = [r for r in runs if r.matches(kind='temperature', temperature=config.theorem_temperature,
                                         seed=config.seeds[0])]
  if len(source) != 1:
    raise ValueError(f'theorem_temperature {config.theorem_temperature} is not one of the '
                     f'temperatures {tuple(config.temperatures)}')
  runs.append(sweep.Run('theorem', _theorem_run(config), deps=(source[0].name,),
                        seed=source[0].seed, tags=dict(kind='theorem')))
  runs.append(sweep.Run('ufm_null_space', _ufm_run(config), tags=dict(kind='ufm')))
  return runs


# ---------------------------------------------------------------------------
# Numbers and the shared gates.
# ---------------------------------------------------------------------------


def _num(x) -> float:
  """A recorded number as a float: NaN for None (non-finite numbers are recorded as text)."""
  return math.nan if x is None else float(x)


def _extreme(pick, values: Sequence[Any]) -> float | None:
  """``pick`` (min or max) of ``values``; None (a gate reading it fails) unless every
  value is finite."""
  return pick(map(float, values)) if spread.finite(values) else None


def _trained(results: Sequence[sweep.Result]) -> dict[str, Any]:
  """What `_trained_gates` reads: the runs' test accuracies and final train losses."""
  acc = [r.final.get('test_accuracy') for r in results]
  return dict(runs=len(results), test_accuracy=spread.quantity(acc),
              min_test_accuracy=_extreme(min, acc),
              nonfinite_losses=sum(not spread.finite([r.final.get('train_loss')])
                                   for r in results))


def _trained_gates(ev, c) -> dict[str, reproduce.Gate]:
  t = ev['trained']
  return dict(
      runs_trained=reproduce.at_least(t['min_test_accuracy'], c['test_accuracy_min'],
                                      'smallest test accuracy of the pretrainings read'),
      losses_finite=reproduce.at_most(t['nonfinite_losses'], 0,
                                      'runs read whose final train loss is not finite'))


def _initial(r: sweep.Result, key: str) -> Any:
  """A schedule run's ``key`` at epoch 0 (the initialisation); None if not evaluated."""
  epochs = list(r.final.get('epoch', ()))
  return r[key][epochs.index(0)] if 0 in epochs else None


def _train_nc1(results: Sequence[sweep.Result]) -> dict[str, Any]:
  """Train NC1 (penultimate) at initialisation (epoch 0) and at the end, per run."""
  return dict(initial=spread.quantity([_initial(r, 'nc1') for r in results]),
              final=spread.quantity([r['nc1'][-1] for r in results]))


def _schedule_gates(ev, c) -> dict[str, reproduce.Gate]:
  """000c / 000d: every run trained, >= ``min_seeds`` per schedule, every run collapsed
  (below ``nc1_max`` and below its value at initialisation beyond noise)."""
  nc1 = ev['train_nc1']
  return dict(
      _trained_gates(ev, c),
      seeds=reproduce.seeds_gate(min(map(len, ev['seeds'].values()), default=0),
                                 c['min_seeds']),
      train_collapse=reproduce.at_most(_extreme(max, nc1['final']['values']), c['nc1_max'],
                                       'largest final train NC1 (penultimate) of the runs read'),
      collapse_vs_init=reproduce.changed_gate(
          nc1['initial'], nc1['final'],
          'z of (train NC1 at initialisation - final train NC1)'))


# ---------------------------------------------------------------------------
# The setting, computed from the variant's config (`settings`).
# ---------------------------------------------------------------------------

# Why the variant's setting differs from the paper's (by ``config.variant``).
_WHY = {
    'cpu': 'An MLP on Fashion-MNIST instead of the paper\'s ResNets on CIFAR-10 / ImageNet, to '
           'fit a 2-core CPU.',
    'runlocal': 'The pipeline at toy scale (a test of the code; its verdicts mean nothing).',
    'gpu': "The paper's model family and schedule on the data available here.",
}


def _why(config) -> str:
  return ' ' + _WHY.get(config.variant, '')


def _pretraining(p) -> str:
  """`settings.trainer`, what it leaves out (the warm-up's start, the exponential decay,
  a softmax temperature of 1) and the features the collapse metrics are measured on."""
  extra = [f'warm-up from lr {p.warmup_init:g}'] if p.warmup_epochs else []
  extra += [f'lr x{p.decay_rate:g} per epoch'] if p.schedule == 'exponential' else []
  extra += ['softmax temperature 1'] if p.temperature == 1.0 else []  # Else in trainer().
  n = settings.number(p.eval_train_examples) if p.eval_train_examples else 'all'
  every = 'epoch' if p.eval_every == 1 else f'{p.eval_every} epochs'
  extra.append(f'collapse metrics on {n} training images every {every}')
  return f"{settings.trainer(p)}; {', '.join(extra)}"


def _overrides(o: Mapping[str, Any]) -> str:
  return ', '.join(f'{k} {v}' for k, v in o.items())


def _num_classes(p) -> int | None:
  """K of a trainer config's task (None where the label map makes it unknown here)."""
  if p.label_map.startswith('classes:'):
    return len(p.label_map.removeprefix('classes:').split(','))
  return {'fashion_mnist': 10, 'mnist': 10, 'cifar10': 10, 'cifar10_jpeg': 10,
          'cifar100': 100}.get(p.dataset) if not p.label_map else None


def _setting_theorem(config) -> str:
  return (f"Features of the temperature sweep's run at tau = {config.theorem_temperature:g}, "
          f"seed {config.seeds[0]} ({_pretraining(config.pretrain)}), on "
          f"{settings.number(config.theorem_examples)} training images, at layers "
          f"{', '.join(config.theorem_layers)}")


def _setting_000a(config) -> str:
  return (_setting_theorem(config) + '; the closed form (metrics.linear_probe_mse, float64) '
          'against a weighted least-squares fit (numpy.linalg.lstsq, float64).' + _why(config))


def _setting_000b(config) -> str:
  return (_setting_theorem(config) + f'; the penultimate features under {config.num_maps} '
          "random Gaussian maps, float64; Obs 4.2's 2 x 2 example." + _why(config))


def _setting_000c(config) -> str:
  schedules = '; '.join(f'{n}: {_overrides(o)}' for n, o in config.schedules.items())
  return (f'{_pretraining(config.pretrain)}. Schedules (overriding the above): {schedules}; '
          f'{settings.seeds(config.schedule_seeds)} per schedule.' + _why(config))


def _setting_000d(config) -> str:
  p, u = config.pretrain, config.ufm
  k = f'K = {_num_classes(p)}'
  dims = f"p = {p.model_kwargs.get('width')}, {k}" if p.model == 'mlp' else k
  return (f"The {config.vb_schedule} schedule's runs of 000c "
          f'({_overrides(config.schedules[config.vb_schedule])}; '
          f'{settings.seeds(config.schedule_seeds)}), penultimate train features ({dims}); '
          f'{_pretraining(p)}. And the UFM (K = {u.num_classes}, {u.samples_per_class} '
          f'samples per class, p = {u.dim}, {u.loss} loss, lr {u.learning_rate:g}, lambda_W '
          f'{u.lambda_w:g}, lambda_H = 0, {u.num_steps} steps) with no injected noise.'
          + _why(config))


def _setting_000e(config) -> str:
  p, pr = config.pretrain, config.probe
  tau = settings.grid({'softmax temperature tau': config.temperatures})
  lam = settings.grid({'within-class cosine regulariser lambda': config.cosine_regs})
  tasks = '; '.join(f'{name}: {settings.data(d)}, tested on {settings.test_data(d)}'
                    for name, d in config.downstream.items())
  return (f'{_pretraining(p)}. Sweeps: {tau}; {lam} at tau = {p.temperature:g}; '
          f'{settings.seeds(config.seeds)} per point. Downstream (frozen '
          f'penultimate features, L-BFGS probes with {pr.l2_grid_size} L2 values in '
          f'[{pr.l2_min:g}, {pr.l2_max:g}], {pr.max_iters} iterations): {tasks}. MLOG from the '
          "probes' top-1 accuracies and the pretraining test accuracy." + _why(config))


# ---------------------------------------------------------------------------
# 000a: Thm 5.1 on real features.
# ---------------------------------------------------------------------------


def _theorem_and_source(study: reproduce.Study):
  c = study.config
  return (study.one(kind='theorem'),
          study.one(kind='temperature', temperature=c.theorem_temperature, seed=c.seeds[0]))


def _evidence_000a(study) -> dict[str, Any]:
  t, src = _theorem_and_source(study)
  return dict(trained=_trained([src]),
              layers={l: dict(closed_form=_num(t[f'closed_form_{l}']),
                              fitted=_num(t[f'fitted_{l}']))
                      for l in study.config.theorem_layers})


def _checks_000a(ev, c) -> dict[str, bool | None]:
  return {f'{l}_agrees': bool(abs(v['closed_form'] - v['fitted'])
                              <= c['theorem_rtol'] * abs(v['fitted']) + c['theorem_atol'])
          for l, v in ev['layers'].items()}


CLAIM_000A = reproduce.ClaimSpec(
    id='000a',
    claim='Thm 5.1: the minimum class-balanced MSE linear-probe loss equals '
          '1/2 - 1/(2K) - Tr(Sigma_T^+ Sigma_B)/(2K).',
    paper='Thm 5.1 (proof in App. A), which makes VCI the normalised optimal linear-probe loss.',
    criterion=('Gates: the source pretraining reaches test accuracy >= {test_accuracy_min} '
               'with a finite final train loss. Check: |closed form - fitted| <= '
               '{theorem_rtol:g} x fitted + {theorem_atol:g} at every layer.'),
    constants=dict(theorem_rtol=1e-4, theorem_atol=1e-7, **TRAINED_FEATURES),
    evidence=_evidence_000a,
    gates=_trained_gates,
    checks=_checks_000a,
    setting=_setting_000a)


# ---------------------------------------------------------------------------
# 000b: invariance of VCI.
# ---------------------------------------------------------------------------


def _evidence_000b(study) -> dict[str, Any]:
  t, src = _theorem_and_source(study)
  return dict(trained=_trained([src]),
              max_relative_change={k: float(np.max(np.asarray(v, float)))  # NaN propagates.
                                   for k, v in t['relative_change'].items()},
              **{k: [_num(x) for x in t[k]]
                 for k in ('map_condition_numbers', 'example_fuzziness', 'example_vci')})


def _gates_000b(ev, c) -> dict[str, reproduce.Gate]:
  return dict(_trained_gates(ev, c), maps_well_conditioned=reproduce.at_most(
      _extreme(max, ev['map_condition_numbers']), c['cond_max'],
      'largest condition number of the random maps (float64 round-off stays below the '
      'invariance tolerance)'))


def _checks_000b(ev, c) -> dict[str, bool | None]:
  ch = ev['max_relative_change']
  return dict(
      vci_invariant=bool(ch['vci'] <= c['invariance_rtol']),
      others_change=all(bool(ch[k] > c['changes_min']) for k in ch if k != 'vci'),
      example_fuzziness_1_to_2=bool(np.allclose(ev['example_fuzziness'], [1, 2], rtol=1e-9)))


CLAIM_000B = reproduce.ClaimSpec(
    id='000b',
    claim='VCI is unchanged by an invertible linear map of the features, while fuzziness, '
          'squared distance and the cosine metrics change; the 2 x 2 example takes '
          'fuzziness from 1 to 2.',
    paper='Sec 4 (Obs 4.2-4.5, Thm 5.2).',
    criterion=('Gates: the source pretraining reaches test accuracy >= {test_accuracy_min} with '
               'a finite final train loss; every map has condition number <= {cond_max:g}. '
               'Checks: max relative change of VCI <= {invariance_rtol:g}; each of fuzziness, '
               'squared_distance, class_separation, cosine_within changes by > '
               '{changes_min:.0%} under some map; the example gives fuzziness 1 -> 2.'),
    constants=dict(invariance_rtol=1e-4, changes_min=0.01, cond_max=1e6, **TRAINED_FEATURES),
    evidence=_evidence_000b,
    gates=_gates_000b,
    checks=_checks_000b,
    setting=_setting_000b)


# ---------------------------------------------------------------------------
# 000c: VCI and fuzziness fall over training; squared distance and cosine need not.
# ---------------------------------------------------------------------------


def _schedule_runs(study, name: str) -> list[sweep.Result]:
  return study.where(kind='schedule', schedule=name)


def _spearman_from_epoch1(r: sweep.Result, key: str) -> float:
  """Spearman(epoch, metric) over the evaluated epochs after the initialisation."""
  ep, v = np.asarray(r['epoch'], float), np.asarray(r[key], float)
  return float(correlation.spearman(ep[ep > 0], v[ep > 0]))


def _evidence_000c(study) -> dict[str, Any]:
  names = list(study.config.schedules)
  runs = {n: _schedule_runs(study, n) for n in names}
  every = [r for n in names for r in runs[n]]
  return dict(
      seeds={n: [r.seed for r in runs[n]] for n in names},
      trained=_trained(every), train_nc1=_train_nc1(every),
      spearman_with_epoch={n: {k: spread.quantity([_spearman_from_epoch1(r, k)
                                                    for r in runs[n]])
                               for k in FALL_METRICS} for n in names})


def _checks_000c(ev, c) -> dict[str, bool | None]:
  rho, lim = ev['spearman_with_epoch'], c['fall_rho_max']
  checks = {f'{name}_{k}_falls': spread.below(by_metric[k], lim)
            for name, by_metric in rho.items() for k in ('vci', 'fuzziness')}
  checks['sqdist_or_cosine_not_consistent'] = spread.any_of(
      [spread.exceeds(by_metric[k], lim)
       for by_metric in rho.values() for k in ('squared_distance', 'cosine_within')])
  return checks


def _figure_000c(ev, study) -> list[str]:
  del ev
  figs = []
  for k in FALL_METRICS:
    curves, x = {}, None
    for name in study.config.schedules:
      rs = _schedule_runs(study, name)
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


CLAIM_000C = reproduce.ClaimSpec(
    id='000c',
    claim='Over training, VCI and fuzziness fall, while squared distance and cosine '
          'similarity need not.',
    paper='Fig 3: ResNet-18 on CIFAR-10, Nesterov SGD lr 0.1 x B/256, 10-epoch warm-up from '
          '1e-5, wd 8e-5, crop + flip; exponential x0.975/epoch, cosine, and cosine without '
          'wd and warm-up.',
    criterion=('Gates: every run reaches test accuracy >= {test_accuracy_min} with a finite '
               'final train loss; >= {min_seeds} seeds per schedule; every run collapses: final '
               'train NC1 <= {nc1_max}, and below its value at initialisation by > {z:g} SE. '
               'Checks (Spearman(epoch, metric) per run, from the first evaluated epoch after '
               'the initialisation on): for every schedule, the seed mean of Spearman for VCI '
               'and for fuzziness lies below {fall_rho_max} by > {z:g} SE; and for at least one '
               'schedule the seed mean for squared distance or cosine_within lies above '
               '{fall_rho_max} by > {z:g} SE (not consistently falling).'),
    constants=dict(fall_rho_max=-0.8, **TRAINED, **COLLAPSED, **SEEDS),
    evidence=_evidence_000c,
    gates=_schedule_gates,
    checks=_checks_000c,
    setting=_setting_000c,
    figure=_figure_000c)


# ---------------------------------------------------------------------------
# 000d: within_vb falls, within_vb_perp does not.
# ---------------------------------------------------------------------------


def _first_last(rs: Sequence[sweep.Result], key: str) -> dict[str, Any]:
  """Per seed: the value at the first evaluated epoch after init, the last, and last / first."""
  first = np.array([r[key][1] if len(r[key]) > 1 else None for r in rs], float)
  last = np.array([r[key][-1] for r in rs], float)
  with np.errstate(divide='ignore', invalid='ignore'):
    ratio = np.where(first != 0, last / first, math.nan)
  return {k: spread.quantity(v) for k, v in dict(first=first, last=last, ratio=ratio).items()}


def _evidence_000d(study) -> dict[str, Any]:
  rs = _schedule_runs(study, study.config.vb_schedule)
  u = study.one(kind='ufm')
  return dict(
      seeds={study.config.vb_schedule: [r.seed for r in rs]},
      trained=_trained(rs), train_nc1=_train_nc1(rs),
      first_epoch=[r['epoch'][1] if len(r['epoch']) > 1 else None for r in rs],
      last_epoch=[r['epoch'][-1] for r in rs],
      within_vb=_first_last(rs, 'within_vb'), within_vb_perp=_first_last(rs, 'within_vb_perp'),
      **{f'ufm_{k}_first_last': [_num(u[k][1]), _num(u[k][-1])]
         for k in ('within_vb', 'within_vb_perp')})


def _checks_000d(ev, c) -> dict[str, bool | None]:
  return dict(
      within_vb_falls=spread.below(ev['within_vb']['ratio'], c['vb_fall_max']),
      within_vb_perp_does_not=spread.exceeds(ev['within_vb_perp']['ratio'],
                                             c['vb_perp_keep_min']))


def _figure_000d(ev, study) -> list[str]:
  del ev
  config = study.config
  curves, x = {}, None
  for r in _schedule_runs(study, config.vb_schedule):
    x = r['epoch']
    for k in ('within_vb', 'within_vb_perp'):
      curves[f'{k} seed {r.seed}'] = np.asarray(r[k], float)
  fig = '000d_within_vb.png'
  plots.curves(study.file(fig), x, curves, xlabel='epoch', logy=True,
               title=f'Sigma_W inside / outside span(M), schedule {config.vb_schedule}')
  u = study.one(kind='ufm')
  fig2 = '000d_ufm_lambda_h_0.png'
  plots.curves(study.file(fig2), u['steps'],
               {'within_vb': u['within_vb'], 'within_vb_perp': u['within_vb_perp']},
               xlabel='step', logy=True, title='UFM, lambda_H = 0, no injected noise')
  return [fig, fig2]


def _notes_000d(ev, config) -> str:
  del ev, config
  return ('In the UFM the gradient of the loss with respect to each feature lies in the row '
          'space of W, so with lambda_H = 0 and no injected noise gradient descent never '
          'moves the features inside null(W): within_vb_perp stays near its initial value '
          'instead of growing (the numbers above). The growth shown by '
          'experiments/ufm.py comes from the null-space noise it injects every step, by '
          'construction; Prop 4.1 says such growth costs nothing, not that training '
          'produces it.')


CLAIM_000D = reproduce.ClaimSpec(
    id='000d',
    claim='With p > K, the within-class variation inside span(M) falls while the part in its '
          'orthogonal complement does not, and can grow.',
    paper='Fig 1 and Prop 4.1: ResNet-50 on ImageNet; in the UFM without feature '
          'regularisation the loss cannot see variation in the null space of W.',
    criterion=('Gates: every run reaches test accuracy >= {test_accuracy_min} with a finite '
               'final train loss; >= {min_seeds} seeds; every run collapses: final train NC1 '
               '<= {nc1_max}, and below its value at initialisation by > {z:g} SE. Checks, on '
               'the per-seed ratio last / first evaluated epoch after the initialisation: the '
               'mean ratio of within_vb lies below {vb_fall_max} by > {z:g} SE, and that of '
               'within_vb_perp above {vb_perp_keep_min} by > {z:g} SE. The UFM is reported, '
               'not tested.'),
    constants=dict(vb_fall_max=0.5, vb_perp_keep_min=0.8, **TRAINED, **COLLAPSED, **SEEDS),
    evidence=_evidence_000d,
    gates=_schedule_gates,
    checks=_checks_000d,
    setting=_setting_000d,
    figure=_figure_000d,
    notes=_notes_000d)


# ---------------------------------------------------------------------------
# 000e: VCI tracks transfer in both sweeps; the other metrics do not consistently.
# ---------------------------------------------------------------------------


def _mlog(accuracies: Mapping[str, Any], pretrain_accuracy) -> float:
  acc = np.asarray(list(accuracies.values()), np.float64)
  return float(correlation.mlog(acc, _num(pretrain_accuracy)))


def _sweep_table(study) -> tuple[dict[str, list[dict]], list[sweep.Result]]:
  """{sweep: [one row per run: point, seed, metrics, accuracies, MLOG]} and the runs."""
  table, results = {}, []
  for kind, key in SWEEPS.items():
    rows = []
    for value in study.config[key]:
      for r in study.where(kind=kind, **{kind: value}):
        results.append(r)
        down = {t: _num(a) for t, a in r['downstream_accuracy'].items()}
        rows.append(dict(point=float(value), seed=r.seed,
                         **{k: _num(r[k]) for k in METRICS_000E},
                         test_accuracy=_num(r['test_accuracy']), downstream=down,
                         mlog=_mlog(down, r['test_accuracy'])))
    table[kind] = rows
  return table, results


def _pearson_mlog(rows: Sequence[Mapping[str, Any]], k: str) -> float:
  """Pearson r of metric ``k`` and MLOG over ``rows``."""
  return float(correlation.pearson([row[k] for row in rows], [row['mlog'] for row in rows]))


def _by_seed(rows: Sequence[Mapping[str, Any]], points: list[float]) -> dict[int, list]:
  """{seed: its rows in point order}, for the seeds with a row at every point."""
  out = {}
  for seed in sorted({row['seed'] for row in rows}):
    mine = sorted((row for row in rows if row['seed'] == seed), key=lambda row: row['point'])
    if [row['point'] for row in mine] == points:
      out[seed] = mine
  return out


def sweep_statistics(table: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, Any]:
  """000e's statistics of a sweep table (see `_sweep_table`).

  Returns:
    ``seeds`` ({sweep: fewest seeds at a point}); ``by_point`` ({sweep:
    {metric or 'mlog': [{point, values, mean, se, n}]}}); ``pearson_by_seed``
    ({sweep: {metric: `spread.quantity` of Pearson(metric, MLOG) over the
    points, one per seed, and its ``seeds``}}); ``pearson_pooled`` ({sweep:
    {metric: r over every run}}, the first pass's statistic, reported);
    ``nonfinite_mlog`` (count).
  """
  out = dict(seeds={}, by_point={}, pearson_by_seed={}, pearson_pooled={})
  for s, rows in table.items():
    points = sorted({row['point'] for row in rows})
    at = {p: [row for row in rows if row['point'] == p] for p in points}
    out['seeds'][s] = min((len(v) for v in at.values()), default=0)
    out['by_point'][s] = {k: [dict(point=p, **spread.quantity([row[k] for row in at[p]]))
                              for p in points] for k in METRICS_000E + ('mlog',)}
    by_seed = _by_seed(rows, points)
    out['pearson_by_seed'][s] = {
        k: dict(seeds=list(by_seed), **spread.quantity([_pearson_mlog(mine, k)
                                                         for mine in by_seed.values()]))
        for k in METRICS_000E}
    out['pearson_pooled'][s] = {k: _pearson_mlog(rows, k) for k in METRICS_000E}
  out['nonfinite_mlog'] = sum(not math.isfinite(row['mlog'])
                              for rows in table.values() for row in rows)
  return out


def _evidence_000e(study) -> dict[str, Any]:
  table, results = _sweep_table(study)
  return dict(trained=_trained(results), **sweep_statistics(table), runs=table)


def _gates_000e(ev, c) -> dict[str, reproduce.Gate]:
  gates = dict(_trained_gates(ev, c),
               mlog_finite=reproduce.at_most(ev['nonfinite_mlog'], 0,
                                             'runs whose MLOG is not finite'),
               seeds=reproduce.seeds_gate(min(ev['seeds'].values(), default=0),
                                          c['min_seeds']))
  for s, by_metric in ev['by_point'].items():
    for k in METRICS_000E:
      ends = (by_metric[k][-1], by_metric[k][0]) if by_metric[k] else ([], [])
      gates[f'{s}_moves_{k}'] = reproduce.Gate(  # NaN (fails) when not measurable.
          abs(spread.z_score(*ends)), spread.Z, '>',
          f'|z| of {k} between the end points of the {s} sweep')
  return gates


def _inconsistent(a: spread.Values, b: spread.Values, r_min: float) -> bool | None:
  """Pearson r per seed in two sweeps: True if the sign flips or one |r| < r_min, each beyond
  its noise; False if both exceed r_min with the same sign beyond noise; else None."""
  above = lambda x, t: spread.exceeds(x, t) is True
  below = lambda x, t: spread.below(x, t) is True
  flip = (above(a, 0) and below(b, 0)) or (below(a, 0) and above(b, 0))
  weak = any(below(x, r_min) and above(x, -r_min) for x in (a, b))
  if flip or weak:
    return True
  same = ((above(a, r_min) and above(b, r_min)) or (below(a, -r_min) and below(b, -r_min)))
  return False if same else None


def _checks_000e(ev, c) -> dict[str, bool | None]:
  r = ev['pearson_by_seed']
  checks = dict(vci_consistent=spread.all_of([spread.exceeds(r[s]['vci'], c['pearson_min'])
                                               for s in SWEEPS]))
  for k in METRICS_000E[1:]:
    checks[f'{k}_inconsistent'] = _inconsistent(r['temperature'][k], r['cosine_reg'][k],
                                                c['pearson_min'])
  return checks


def _figure_000e(ev, study) -> list[str]:
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


def _notes_000e(ev, config) -> str:
  del ev, config
  return ('The tested statistic is Pearson r over the sweep points within each seed, so that '
          'its spread over seeds is known; pearson_pooled (over every run, the first '
          "pass's statistic) is reported, not tested.")


CLAIM_000E = reproduce.ClaimSpec(
    id='000e',
    claim='Across pretrainings swept over the softmax temperature and, separately, over the '
          'within-class cosine regulariser, VCI correlates with transfer (MLOG) in both '
          'sweeps, while fuzziness, squared distance and cosine class separation do not '
          'correlate consistently.',
    paper='Sec 6.3, Fig 7, Tables 1-2: ResNet-50 on ImageNet, tau 0.1-1.0, lambda 2.5-10, '
          'metrics on a 50k training subset, L-BFGS probes with 97 L2 values on 10 '
          'downstream tasks; Pearson r per metric.',
    criterion=('Gates: every pretraining reaches test accuracy >= {test_accuracy_min} with a '
               'finite final train loss and a finite MLOG; >= {min_seeds} seeds per sweep '
               'point; each sweep moves each of VCI, fuzziness, squared_distance and '
               'class_separation: its end points differ by > {z:g} SE. Checks, on Pearson(metric, '
               'MLOG) over the sweep points, one r per seed: the seed mean of r for VCI exceeds '
               '{pearson_min} by > {z:g} SE in both sweeps; each of fuzziness, squared_distance '
               'and class_separation is inconsistent: its r changes sign between the sweeps, or '
               'lies within (-{pearson_min}, {pearson_min}) in one of them, beyond {z:g} SE '
               '(consistent, i.e. not reproduced, if both exceed {pearson_min} in magnitude with '
               'one sign beyond {z:g} SE; otherwise undecided).'),
    constants=dict(pearson_min=0.5, **TRAINED, **SEEDS),
    evidence=_evidence_000e,
    gates=_gates_000e,
    checks=_checks_000e,
    setting=_setting_000e,
    figure=_figure_000e,
    notes=_notes_000e)


CLAIMS = [CLAIM_000A, CLAIM_000B, CLAIM_000C, CLAIM_000D, CLAIM_000E]
