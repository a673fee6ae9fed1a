"""Paper 000: "Quantifying the Variability Collapse of Neural Networks" (VCI) —
claims 000a-000e as one study.

Runs (``configs/papers/p000_vci.py``):

- ``schedule_<name>`` (000c, 000d): one pretraining per learning-rate schedule
  (exponential x0.975 per epoch after a warm-up from 1e-5; cosine; cosine
  without weight decay and warm-up), the collapse metrics of the train
  features recorded along training.
- ``tau<t>_seed<s>`` and ``cosreg<l>_seed<s>`` (000e): pretrainings swept over
  the softmax temperature and over the within-class cosine regulariser; each
  then probed (L-BFGS linear probes of the frozen penultimate features) on
  the downstream tasks, giving MLOG.
- ``theorem`` (000a, 000b): on the features of one trained network, Thm 5.1's
  closed form against a fitted least-squares probe at several layers, and
  the invariance of VCI under random invertible maps (Obs 4.2's 2 x 2
  example included).
- ``ufm_null_space`` (000d): the UFM with lambda_H = 0 and NO injected noise.

Criteria: `CRITERIA`, fixed before any run. References: paper 000 secs 4-6,
Thm 5.1, Prop 4.1, Obs 4.2-4.5, Figs 1, 3, 7, Tables 1-2; SPEC.md.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nc_jax import metrics
from nc_jax import plots
from nc_jax import sims
from nc_jax import train
from nc_jax.probes import correlation
from nc_jax.studies import sweep
from nc_jax.studies.common import features_at, pearson, probe_layers, say, spearman
from nc_jax.studies.reproduce import Claim, verdict
from nc_jax.train import checkpoints
from nc_jax.train import input as input_lib
from nc_jax.workdir import Workdir

PAPER = '000'
TITLE = 'Quantifying the Variability Collapse of Neural Networks'

CRITERIA = dict(
    theorem_rtol=1e-4,     # 000a: |closed form - fitted| <= this x fitted (+ 1e-7).
    invariance_rtol=1e-4,  # 000b: VCI changes by at most this (relative, float64).
    changes_min=0.01,      # 000b: the other metrics change by more than 1% under some map.
    fall_rho_max=-0.8,     # 000c: Spearman(epoch, VCI / fuzziness) <= this, every schedule.
    vb_fall_max=0.5,       # 000d: within_vb(T) <= this x within_vb(first epoch).
    vb_perp_keep_min=0.8,  # 000d: within_vb_perp(T) >= this x its first-epoch value.
    pearson_min=0.5,       # 000e: Pearson(VCI, MLOG) >= this in both sweeps.
)
METRICS_000E = ('vci', 'fuzziness', 'squared_distance', 'class_separation')
TRACKED = ('fuzziness', 'squared_distance', 'cosine_within', 'class_separation', 'vci',
           'within_vb', 'within_vb_perp')


def _series(rdir: str, split: str = 'train', layer: str = 'penultimate') -> dict[str, list]:
  """{metric: [values by evaluated epoch]} of a trainer run, plus 'epoch'."""
  recs = [r for r in Workdir(rdir).read_metrics()
          if r.get('split') == split and r.get('layer') == layer and 'labels' not in r]
  out = {'epoch': [r['epoch'] for r in recs]}
  for k in TRACKED + ('nc1', 'accuracy'):
    out[k] = [r.get(k) for r in recs]
  return out


def _schedule_run(run, rdir):
  summary = train.train_and_evaluate(run.config, rdir)
  return dict(_series(rdir), test_accuracy=summary['test_accuracy'])


def _probe_tasks(config, rdir: str) -> dict[str, float]:
  """Downstream linear-probe accuracy (top-1) of a run's penultimate features, per task."""
  out = {}
  for task, dcfg in config.downstream.items():
    tr, te = input_lib.load_data(dcfg)
    out[task] = probe_layers(rdir, tr, te, config.probe, layers=('penultimate',),
                             seed=dcfg.seed, batch_size=dcfg.eval_batch_size
                             )['penultimate']['probe_top1']
  return out


def _sweep_run(config):

  def execute(run, rdir):
    summary = train.train_and_evaluate(run.config, rdir)
    last = _series(rdir)
    accs = _probe_tasks(config, rdir)
    pre = summary['test_accuracy']
    mlog = float(correlation.mlog(np.array(list(accs.values())), pre))
    say(f"{run.name}: vci {last['vci'][-1]:.4f}, MLOG {mlog:.4f}, downstream {accs}")
    return dict({k: last[k][-1] for k in TRACKED + ('nc1',)}, pretrain_test_accuracy=pre,
                downstream_accuracy=accs, mlog=mlog)

  return execute


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


def _theorem_run(config):

  def execute(run, rdir):
    src = sweep.run_dir(os.path.dirname(os.path.dirname(rdir)), config.theorem_run)
    tcfg = checkpoints.read_config(src)
    tr, _ = input_lib.load_data(tcfg)
    sub = tr.subset(np.arange(min(len(tr), config.theorem_examples)))
    layers = tuple(config.theorem_layers)
    feats = features_at(src, max(checkpoints.epochs(src)), {'train': sub},
                        layers=layers)['train']
    k = sub.num_classes
    out: dict[str, Any] = {}
    with jax.enable_x64(True):
      for layer in layers:
        h = jnp.asarray(feats[layer], jnp.float64)
        m = metrics.class_moments(h, jnp.asarray(sub.labels), num_classes=k)
        out[f'closed_form_{layer}'] = float(metrics.linear_probe_mse(m))
        out[f'fitted_{layer}'] = least_squares_probe_loss(feats[layer], sub.labels, k)
      h = np.asarray(feats['penultimate'], np.float64)
      rng = np.random.default_rng(0)
      base = metrics.collapse_report(jnp.asarray(h), jnp.asarray(sub.labels), num_classes=k)
      changes = {key: [] for key in ('vci',) + METRICS_000E[1:] + ('cosine_within',)}
      conds = []
      for _ in range(config.num_maps):
        a = rng.normal(size=(h.shape[1], h.shape[1]))
        conds.append(float(np.linalg.cond(a)))
        rep = metrics.collapse_report(jnp.asarray(h @ a), jnp.asarray(sub.labels),
                                      num_classes=k)
        for key in changes:
          changes[key].append(abs(float(rep[key]) / float(base[key]) - 1))
      out['relative_change'] = changes
      out['map_condition_numbers'] = conds
      # Obs 4.2: Sigma_B = diag(1, 0), Sigma_W = I; U = [[1, 1], [0, 1]].
      s2 = np.sqrt(2.0)
      within = np.array([[s2, 0], [-s2, 0], [0, s2], [0, -s2]])
      x = np.concatenate([within + [1, 0], within + [-1, 0]])
      yy = np.repeat([0, 1], 4)
      u = np.array([[1.0, 1.0], [0.0, 1.0]])
      m0 = metrics.class_moments(jnp.asarray(x), jnp.asarray(yy), num_classes=2)
      m1 = metrics.class_moments(jnp.asarray(x @ u.T), jnp.asarray(yy), num_classes=2)
      out['example_fuzziness'] = [float(metrics.fuzziness(m0)), float(metrics.fuzziness(m1))]
      out['example_vci'] = [float(metrics.vci(m0)), float(metrics.vci(m1))]
    return out

  return execute


def _ufm_run(config):

  def execute(run, rdir):
    u = config.ufm
    spec = sims.UFMSpec.balanced(num_classes=u.num_classes, samples_per_class=u.samples_per_class,
                                 dim=u.dim, loss=u.loss, num_steps=u.num_steps,
                                 log_every=u.log_every)
    hp = sims.UFMHparams(learning_rate=u.learning_rate, lambda_w=u.lambda_w, lambda_h=0.0)
    res = sims.simulate(hp, 0, spec=spec)
    return dict(steps=spec.steps.tolist(),
                within_vb=np.asarray(res.history['within_vb']).tolist(),
                within_vb_perp=np.asarray(res.history['within_vb_perp']).tolist(),
                loss=np.asarray(res.history['loss']).tolist())

  return execute


def plan(config, workdir: str) -> list[sweep.Run]:
  del workdir
  runs = []
  for name, over in config.schedules.items():
    runs.append(sweep.Run(f'schedule_{name}', _schedule_run,
                          sweep.with_overrides(config.pretrain, over.to_dict()),
                          overrides=over.to_dict()))
  for seed in config.seeds:
    for tau in config.temperatures:
      runs.append(sweep.Run(f'tau{tau:g}_seed{seed}', _sweep_run(config),
                            sweep.with_overrides(config.pretrain, dict(temperature=tau, seed=seed)),
                            seed=seed, overrides=dict(temperature=tau)))
    for lam in config.cosine_regs:
      runs.append(sweep.Run(f'cosreg{lam:g}_seed{seed}', _sweep_run(config),
                            sweep.with_overrides(config.pretrain, dict(cosine_reg=lam, seed=seed)),
                            seed=seed, overrides=dict(cosine_reg=lam)))
  runs.append(sweep.Run('theorem', _theorem_run(config), deps=(config.theorem_run,)))
  runs.append(sweep.Run('ufm_null_space', _ufm_run(config)))
  return runs


# ---------------------------------------------------------------------------
# Claims.
# ---------------------------------------------------------------------------


def _claim_000a(config, workdir, r) -> Claim:
  c = CRITERIA
  f = r['theorem']['final']
  rows = {l: dict(closed_form=f[f'closed_form_{l}'], fitted=f[f'fitted_{l}'])
          for l in config.theorem_layers}
  checks = {f'{l}_agrees': abs(v['closed_form'] - v['fitted'])
            <= c['theorem_rtol'] * abs(v['fitted']) + 1e-7 for l, v in rows.items()}
  return Claim(
      id='000a',
      claim='Thm 5.1: the minimum class-balanced MSE linear-probe loss equals '
            '1/2 - 1/(2K) - Tr(Sigma_T^+ Sigma_B)/(2K).',
      paper='Thm 5.1 (proof in App. A), which makes VCI the normalised optimal linear-probe '
            'loss.',
      setting=(f"Features of a trained network ({config.theorem_run}: the MLP of 000e at "
               f"tau = 1) on {config.theorem_examples} training images, at layers "
               f"{', '.join(config.theorem_layers)}; the closed form "
               "(metrics.linear_probe_mse, float64) against a weighted least-squares fit "
               "(numpy.linalg.lstsq, float64)."),
      criterion=f"|closed form - fitted| <= {c['theorem_rtol']:g} x fitted + 1e-7 at every layer.",
      verdict=verdict(checks),
      evidence=dict(checks=checks, **rows))


def _claim_000b(config, workdir, r) -> Claim:
  c = CRITERIA
  f = r['theorem']['final']
  ch = f['relative_change']
  max_change = {k: max(v) for k, v in ch.items()}
  checks = dict(vci_invariant=max_change['vci'] <= c['invariance_rtol'],
                others_change=all(max_change[k] > c['changes_min'] for k in ch if k != 'vci'),
                example_fuzziness_1_to_2=bool(np.allclose(f['example_fuzziness'], [1, 2],
                                                          rtol=1e-9)))
  return Claim(
      id='000b',
      claim='VCI is unchanged by an invertible linear map of the features, while fuzziness, '
            'squared distance and the cosine metrics change; the 2 x 2 example takes '
            'fuzziness from 1 to 2.',
      paper='Sec 4 (Obs 4.2-4.5, Thm 5.2).',
      setting=(f'The penultimate features of {config.theorem_run} ({config.theorem_examples} '
               f'images, p = {config.pretrain.model_kwargs.width}) under {config.num_maps} '
               'random Gaussian maps, float64; Obs 4.2\'s example.'),
      criterion=(f"Max relative change of VCI <= {c['invariance_rtol']:g}; each of fuzziness, "
                 f"squared_distance, class_separation, cosine_within changes by > "
                 f"{c['changes_min']:.0%} under some map; the example gives fuzziness 1 -> 2."),
      verdict=verdict(checks),
      evidence=dict(checks=checks, max_relative_change=max_change,
                    map_condition_numbers=f['map_condition_numbers'],
                    example_fuzziness=f['example_fuzziness'], example_vci=f['example_vci']))


def _claim_000c(config, workdir, r) -> Claim:
  c = CRITERIA
  rho, checks, figs = {}, {}, []
  inconsistent = []
  for name in config.schedules:
    f = r[f'schedule_{name}']['final']
    ep = np.asarray(f['epoch'][1:])  # From the first epoch (0 is the initialisation).
    rho[name] = {k: spearman(ep, f[k][1:]) for k in METRICS_000E + ('cosine_within',)}
    checks[f'{name}_vci_falls'] = rho[name]['vci'] <= c['fall_rho_max']
    checks[f'{name}_fuzziness_falls'] = rho[name]['fuzziness'] <= c['fall_rho_max']
    inconsistent += [(name, k) for k in ('squared_distance', 'cosine_within')
                     if not rho[name][k] <= c['fall_rho_max']]
  checks['sqdist_or_cosine_not_consistent'] = bool(inconsistent)
  for k in METRICS_000E + ('cosine_within',):
    fig = f'000c_{k}.png'
    plots.curves(os.path.join(workdir, fig), r[f'schedule_{list(config.schedules)[0]}']['final']['epoch'],
                 {name: r[f'schedule_{name}']['final'][k] for name in config.schedules},
                 xlabel='epoch', logy=k in ('fuzziness', 'squared_distance'),
                 title=f'{k} of the train features over training')
    figs.append(fig)
  return Claim(
      id='000c',
      claim='Over training, VCI and fuzziness fall, while squared distance and cosine '
            'similarity need not.',
      paper='Fig 3: ResNet-18 on CIFAR-10, Nesterov SGD lr 0.1 x B/256, 10-epoch warm-up from '
            '1e-5, wd 8e-5, crop + flip; exponential x0.975/epoch, cosine, and cosine without '
            'wd and warm-up.',
      setting=config.setting_pretrain + ' Schedules: ' + '; '.join(
          f'{n}: {dict(o)}' for n, o in config.schedules.items()),
      criterion=(f"For every schedule, Spearman(epoch, VCI) and Spearman(epoch, fuzziness) <= "
                 f"{c['fall_rho_max']} from epoch 1 on; and for at least one schedule squared "
                 f"distance or cosine_within is not consistently falling (Spearman > "
                 f"{c['fall_rho_max']})."),
      verdict=verdict(checks),
      evidence=dict(checks=checks, spearman_with_epoch=rho,
                    not_consistently_falling=[f'{n}:{k}' for n, k in inconsistent]),
      figures=figs)


def _claim_000d(config, workdir, r) -> Claim:
  c = CRITERIA
  f = r[f"schedule_{config.vb_schedule}"]['final']
  vb, perp = f['within_vb'], f['within_vb_perp']
  u = r['ufm_null_space']['final']
  checks = dict(within_vb_falls=vb[-1] <= c['vb_fall_max'] * vb[1],
                within_vb_perp_does_not=perp[-1] >= c['vb_perp_keep_min'] * perp[1])
  fig = '000d_within_vb.png'
  plots.curves(os.path.join(workdir, fig), f['epoch'], {'within_vb': vb, 'within_vb_perp': perp},
               xlabel='epoch', logy=True,
               title=f'Sigma_W inside / outside span(M), schedule {config.vb_schedule}')
  fig2 = '000d_ufm_lambda_h_0.png'
  plots.curves(os.path.join(workdir, fig2), u['steps'],
               {'within_vb': u['within_vb'], 'within_vb_perp': u['within_vb_perp']},
               xlabel='step', logy=True, title='UFM, lambda_H = 0, no injected noise')
  return Claim(
      id='000d',
      claim='With p > K, the within-class variation inside span(M) falls while the part in its '
            'orthogonal complement does not, and can grow.',
      paper='Fig 1 and Prop 4.1: ResNet-50 on ImageNet; in the UFM without feature '
            'regularisation the loss cannot see variation in the null space of W.',
      setting=(f"The {config.vb_schedule} schedule's run of 000c (weight decay 0, "
               f"p = {config.pretrain.model_kwargs.width} > K = 7), train features; and the UFM "
               f"(K = {config.ufm.num_classes}, p = {config.ufm.dim}, {config.ufm.loss}, "
               f"lambda_H = 0) with no injected noise."),
      criterion=(f"within_vb(last) <= {c['vb_fall_max']} x within_vb(epoch 1) and "
                 f"within_vb_perp(last) >= {c['vb_perp_keep_min']} x within_vb_perp(epoch 1). "
                 "The UFM is reported, not tested."),
      verdict=verdict(checks),
      evidence=dict(checks=checks, epochs=f['epoch'], within_vb=vb, within_vb_perp=perp,
                    ufm_within_vb_first_last=[u['within_vb'][1], u['within_vb'][-1]],
                    ufm_within_vb_perp_first_last=[u['within_vb_perp'][1],
                                                   u['within_vb_perp'][-1]]),
      figures=[fig, fig2],
      notes=('In the UFM the gradient of the loss with respect to each feature lies in the row '
             'space of W, so with lambda_H = 0 and no injected noise gradient descent never '
             'moves the features inside null(W): within_vb_perp stays near its initial value '
             'instead of growing (the numbers above). The growth shown by '
             'experiments/ufm.py comes from the null-space noise it injects every step, by '
             'construction; Prop 4.1 says such growth costs nothing, not that training '
             'produces it.'))


def _claim_000e(config, workdir, r) -> Claim:
  c = CRITERIA
  sweeps = {'temperature': [n for n in r if n.startswith('tau')],
            'cosine_reg': [n for n in r if n.startswith('cosreg')]}
  rs = {s: {k: pearson([r[n]['final'][k] for n in names],
                             [r[n]['final']['mlog'] for n in names]) for k in METRICS_000E}
             for s, names in sweeps.items()}
  checks = dict(vci_consistent=all(rs[s]['vci'] >= c['pearson_min'] for s in sweeps))
  for k in METRICS_000E[1:]:
    a, b = rs['temperature'][k], rs['cosine_reg'][k]
    consistent = (np.sign(a) == np.sign(b) and min(abs(a), abs(b)) >= c['pearson_min'])
    checks[f'{k}_inconsistent'] = not consistent
  figs = []
  for k in METRICS_000E:
    fig = f'000e_{k}_vs_mlog.png'
    plots.scatter(os.path.join(workdir, fig),
                  {s: ([r[n]['final'][k] for n in names], [r[n]['final']['mlog'] for n in names])
                   for s, names in sweeps.items()},
                  xlabel=f'{k} of the pretrained train features', ylabel='MLOG',
                  title=f'{k} vs transfer (r per sweep)')
    figs.append(fig)
  table = {n: dict(metrics={k: r[n]['final'][k] for k in METRICS_000E},
                   pretrain_test_accuracy=r[n]['final']['pretrain_test_accuracy'],
                   downstream=r[n]['final']['downstream_accuracy'], mlog=r[n]['final']['mlog'])
           for names in sweeps.values() for n in names}
  return Claim(
      id='000e',
      claim='Across pretrainings swept over the softmax temperature and, separately, over the '
            'within-class cosine regulariser, VCI correlates with transfer (MLOG) in both '
            'sweeps, while fuzziness, squared distance and cosine class separation do not '
            'correlate consistently.',
      paper='Sec 6.3, Fig 7, Tables 1-2: ResNet-50 on ImageNet, tau 0.1-1.0, lambda 2.5-10, '
            'metrics on a 50k training subset, L-BFGS probes with 97 L2 values on 10 '
            'downstream tasks; Pearson r per metric.',
      setting=config.setting_sweeps,
      criterion=(f"Pearson(VCI, MLOG) >= {c['pearson_min']} in both sweeps (over every run, "
                 f"{len(config.seeds)} seeds per point); each of fuzziness, squared_distance "
                 f"and class_separation is inconsistent: its Pearson r changes sign between "
                 f"the sweeps or is below {c['pearson_min']} in magnitude in one of them."),
      verdict=verdict(checks),
      evidence=dict(checks=checks, pearson=rs, runs=table),
      figures=figs)


def analyze(config, workdir: str, records: dict) -> list[Claim]:
  say('analysing the runs into claims 000a-000e')
  return [f(config, workdir, records) for f in
          (_claim_000a, _claim_000b, _claim_000c, _claim_000d, _claim_000e)]
