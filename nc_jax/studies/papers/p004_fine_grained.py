"""Paper 004: "Are Neurons Actually Collapsed? On the Fine-Grained Structure in
Neural Representations" — claims 004a-004c as one study.

Runs (``configs/papers/p004_fine_grained.py``):

- ``coarse_<model>_seed<s>``: a trainer run on coarse labels y mod C~
  (``label_map='mod:5'``), checkpointed at the analysis epochs, then the
  class distance matrix over the ORIGINAL classes and its MSDR at every
  analysis epoch; for the models in ``clp_models`` also t-SNE views per
  super-class, CLP and a true-label linear probe (`fine_grained.analyze_run`).
- ``fine_<model>_seed<s>``: a trainer run on fine labels (each class split at
  random in two, ``label_map='split:2'``); distance matrices over the 2C fine
  classes at the analysis epochs.
- ``mixture_<part>``: the Gaussian-mixture sweeps of App. B (Figs 18-21), and
  ``mixture_hidden_dim_lr<x>``: the hidden-width sweep at another learning
  rate (the investigation of the width trend).

The criteria are module constants (`CRITERIA`), fixed before any run; the
verdicts are computed from the runs' numbers by `analyze`.

References: paper 004 secs 4-6, Figs 1-8, 11-12, 15-21, App. B; SPEC.md
"Fine-grained structure (004)".
"""

from __future__ import annotations

import os
import shutil

import ml_collections
import numpy as np

from nc_jax import data
from nc_jax import plots
from nc_jax import train
from nc_jax.studies import fine_grained
from nc_jax.studies import simulations
from nc_jax.studies import sweep
from nc_jax.studies.common import say, spearman
from nc_jax.studies.reproduce import Claim, verdict
from nc_jax.workdir import Workdir

PAPER = '004'
TITLE = 'Are Neurons Actually Collapsed? On the Fine-Grained Structure in Neural Representations'

# Fixed before the first run; never tuned afterwards.
CRITERIA = dict(
    msdr_min=1.1,          # 004a: final-epoch MSDR above this = structure visible.
    epochs_past_tpt=2.0,   # 004a: trained >= this x the first 100%-accuracy epoch.
    clp_ratio_min=0.9,     # 004a: CLP >= this x the true-label probe.
    reconstruction_min=0.8,  # 004a: k-means on t-SNE recovers sub-classes.
    rho_sigma2_min=0.7,    # 004b: Spearman(sigma^2, MSDR) of every line.
    rho_dim_min=0.5,       # 004b: mean Spearman(dim, MSDR) at sigma^2 >= 2.
    wd_spread_max=0.2,     # 004b: mean (max-min)/mean MSDR over weight decays.
    rho_tau2_min=0.7,      # 004b: Spearman(tau^2, MSDR of similar sub-classes).
    fine_early_msdr_max=1.2,   # 004c: early, halves of a class indistinct.
    fine_early_sep_min=1.5,    # 004c: early, original classes apart.
    fine_growth_min=1.1,       # 004c: MSDR over original classes grows x this.
    fine_final_sep_min=1.1,    # 004c: at the end, original classes still apart.
)


def _epochs(analysis_epochs, tcfg) -> list[int]:
  """The analysis epochs a run reaches, and its last epoch."""
  return sorted({e for e in analysis_epochs if e < tcfg.num_epochs} | {tcfg.num_epochs})


def _last(by_epoch: dict) -> float:
  """The value at the largest epoch of an {"epoch": value} record."""
  return by_epoch[str(max(int(e) for e in by_epoch))]


def _coarse_analysis(config, with_clp: bool):

  def analysis(run, rdir):
    if with_clp:
      return fine_grained.analyze_run(
          rdir, run.config, analysis_epochs=config.coarse_epochs,
          analysis_train_examples=config.analysis_train_examples,
          clp_cfg=config.clp, probe_cfg=config.probe, out=Workdir(rdir))
    sub_ds, _ = fine_grained.analysis_sets(run.config, config.analysis_train_examples)
    num_fine = int(sub_ds.fine_labels.max()) + 1
    f2c = data.mod_coarse_map(num_fine, sub_ds.num_classes)
    dist, msdr = fine_grained.distances_over_epochs(
        rdir, run.config, _epochs(config.coarse_epochs, run.config), sub_ds,
        sub_ds.fine_labels, num_fine, f2c)
    plots.distance_heatmaps(os.path.join(rdir, 'class_distances.png'), dist,
                            fine_to_coarse=f2c, msdr=msdr,
                            title=f'{run.name}: class distances (train, penultimate)')
    summary = train.summarize(Workdir(rdir).read_metrics())
    return dict(msdr_by_epoch={str(e): v for e, v in msdr.items()},
                coarse_train_accuracy=summary['train_accuracy'],
                coarse_test_accuracy=summary['test_accuracy'],
                terminal_phase_epoch=summary.get('terminal_phase_epoch'))

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
    summary = train.summarize(Workdir(rdir).read_metrics())
    return dict(msdr_original_by_epoch={str(e): s['msdr_original'] for e, s in stats.items()},
                separation_by_epoch={str(e): s['separation'] for e, s in stats.items()},
                fine_train_accuracy=summary['train_accuracy'],
                terminal_phase_epoch=summary.get('terminal_phase_epoch'))

  return analysis


def _mixture(config, part: str, **overrides):

  def execute(run, rdir):
    mcfg = ml_collections.ConfigDict(config.mixture.to_dict())
    mcfg.parts = (part,)
    for k, v in overrides.items():
      mcfg[k] = v
    return simulations.mixture_study(mcfg, rdir)

  return execute


def plan(config, workdir: str) -> list[sweep.Run]:
  """Every run of the study (see the module docstring)."""
  del workdir
  runs = []
  for model, over in config.coarse_models.items():
    seeds = config.seeds if model in config.clp_models else config.seeds[:1]
    for seed in seeds:
      tcfg = sweep.with_overrides(config.coarse, dict(seed=seed, **over.to_dict()))
      runs.append(sweep.Run(f'coarse_{model}_seed{seed}',
                            sweep.train_then(_coarse_analysis(config, model in config.clp_models)),
                            tcfg, seed=seed, overrides=dict(arch=model, **over.to_dict())))
  for seed in config.seeds:
    tcfg = sweep.with_overrides(config.fine, dict(seed=seed))
    runs.append(sweep.Run(f'fine_mlp_seed{seed}', sweep.train_then(_fine_analysis(config)), tcfg,
                          seed=seed, overrides=dict(label_map=tcfg.label_map)))
  for part in config.mixture_parts:
    runs.append(sweep.Run(f'mixture_{part}', _mixture(config, part),
                          overrides=dict(part=part)))
  for lr in config.mixture_width_lrs:
    runs.append(sweep.Run(f'mixture_hidden_dim_lr{lr:g}',
                          _mixture(config, 'hidden_dim', learning_rate=lr),
                          overrides=dict(part='hidden_dim', learning_rate=lr)))
  return runs


# ---------------------------------------------------------------------------
# Claims.
# ---------------------------------------------------------------------------


def _copy(workdir: str, src: str, name: str) -> str:
  shutil.copyfile(src, os.path.join(workdir, name))
  return name


def _claim_004a(config, workdir, records) -> Claim:
  c = CRITERIA
  mlp = {n: r['final'] for n, r in records.items() if n.startswith('coarse_mlp_')}
  epochs = max(config.coarse_epochs)
  tpt = {n: f['terminal_phase_epoch'] for n, f in mlp.items()}
  final_msdr = {n: f['msdr_by_epoch'][str(epochs)] for n, f in mlp.items()}
  clp = np.array([f['clp_accuracy'] for f in mlp.values()])
  lpo = np.array([f['lpo_accuracy'] for f in mlp.values()])
  recon = np.array([f['clp_reconstruction_accuracy'] for f in mlp.values()])
  checks = dict(
      terminal_phase=all(t is not None and epochs >= c['epochs_past_tpt'] * t
                         for t in tpt.values()),
      msdr=all(m > c['msdr_min'] for m in final_msdr.values()),
      clp_close=bool(clp.mean() >= c['clp_ratio_min'] * lpo.mean()),
      subclusters=bool(recon.mean() >= c['reconstruction_min']))
  arch = {n.removeprefix('coarse_'): _last(r['final']['msdr_by_epoch'])
          for n, r in records.items() if n.startswith('coarse_') and 'mlp' not in n}
  arch_acc = {n.removeprefix('coarse_'): r['final']['coarse_train_accuracy']
              for n, r in records.items() if n.startswith('coarse_') and 'mlp' not in n}
  # Figures: seed 0 of the MLP, and MSDR over epochs for every model.
  first = sorted(mlp)[0]
  rdir = sweep.run_dir(workdir, first)
  figs = [_copy(workdir, os.path.join(rdir, f), f'004a_{f}')
          for f in ('class_distances.png', 'tsne_superclasses.png', 'clp.png')]
  lines = {}
  for n, r in records.items():
    if n.startswith('coarse_'):
      by_epoch = r['final']['msdr_by_epoch']
      ep = sorted(int(e) for e in by_epoch)
      lines[n.removeprefix('coarse_')] = ([e / ep[-1] for e in ep],
                                          [by_epoch[str(e)] for e in ep])
  plots.xy_lines(os.path.join(workdir, '004a_msdr_over_epochs.png'), lines,
                 xlabel='fraction of training (epoch / last epoch)', ylabel='MSDR',
                 title='MSDR over the original classes (train), coarse labels y mod 5')
  figs.append('004a_msdr_over_epochs.png')
  for n in sorted(records):
    if n.startswith('coarse_') and 'mlp' not in n:
      figs.append(_copy(workdir, os.path.join(sweep.run_dir(workdir, n), 'class_distances.png'),
                        f'004a_class_distances_{n.removeprefix("coarse_")}.png'))
  return Claim(
      id='004a',
      claim='Trained on coarse labels into the terminal phase, the original classes stay '
            'visible inside the collapsed super-classes: MSDR > 1, two sub-clusters per '
            'super-class under t-SNE, and Cluster-and-Linear-Probe close to a probe '
            'trained with the true labels.',
      paper='Secs 4-5, Figs 1-8 and 11-12: ResNet-18 on coarse CIFAR-10 (y mod 5), 350 '
            'epochs; CLP 93% on the 10 original classes; structure seen for ResNet and '
            'DenseNet, not VGG.',
      setting=config.setting_004a,
      criterion=(f"Every MLP seed reaches 100% train accuracy and is trained to >= "
                 f"{c['epochs_past_tpt']:g}x that epoch; final-epoch MSDR > {c['msdr_min']} "
                 f"for every seed; mean CLP >= {c['clp_ratio_min']} x mean true-label probe; "
                 f"mean k-means-on-t-SNE reconstruction of the train sub-classes >= "
                 f"{c['reconstruction_min']}. The CNN runs are reported, not tested."),
      verdict=verdict(checks),
      evidence=dict(checks=checks, terminal_phase_epoch=tpt, last_epoch=epochs,
                    final_msdr=final_msdr, clp_accuracy=clp.tolist(),
                    true_label_probe_accuracy=lpo.tolist(),
                    clp_over_probe=float(clp.mean() / lpo.mean()),
                    reconstruction_accuracy=recon.tolist(),
                    msdr_initialisation={n: f['msdr_by_epoch']['0'] for n, f in mlp.items()},
                    cnn_final_msdr=arch, cnn_final_train_accuracy=arch_acc),
      figures=figs)


def _line_rhos(summary: dict, key_of) -> dict[str, float]:
  x = summary['x']
  return {k: spearman(x, v['msdr_mean']) for k, v in summary.items() if k != 'x'}


def _dim_trend(summary: dict) -> tuple[float, list[float]]:
  """Mean over sigma^2 >= 2 of Spearman(dimension, MSDR) across the lines."""
  x = np.asarray(summary['x'])
  lines = [k for k in summary if k != 'x']
  dims = [float(k.split('=')[1]) for k in lines]
  table = np.array([summary[k]['msdr_mean'] for k in lines])  # [D, P]
  rhos = [spearman(dims, table[:, j]) for j in np.flatnonzero(x >= 2)]
  return float(np.nanmean(rhos)), rhos


def _claim_004b(config, workdir, records) -> Claim:
  c = CRITERIA
  summ = {p: records[f'mixture_{p}']['final'][p] for p in config.mixture_parts}
  rho_sigma = {}
  for part in ('input_dim', 'hidden_dim', 'weight_decay'):
    for line, rho in _line_rhos(summ[part], None).items():
      rho_sigma[f'{part}:{line}'] = rho
  input_trend, _ = _dim_trend(summ['input_dim'])
  hidden_trend, _ = _dim_trend(summ['hidden_dim'])
  w = summ['weight_decay']
  x = np.asarray(w['x'])
  table = np.array([w[k]['msdr_mean'] for k in w if k != 'x'])
  spread = (table.max(0) - table.min(0)) / table.mean(0)
  wd_spread = float(spread[x >= 2].mean())
  sim = summ['similarity']
  ms, md = np.asarray(sim['msdr_similar']['msdr_mean']), np.asarray(sim['msdr_dissimilar']['msdr_mean'])
  rho_tau = spearman(sim['x'], ms)
  checks = dict(
      sigma2=all(r >= c['rho_sigma2_min'] for r in rho_sigma.values()),
      input_dim=input_trend >= c['rho_dim_min'],
      hidden_dim=hidden_trend >= c['rho_dim_min'],
      weight_decay=wd_spread <= c['wd_spread_max'],
      similar_lower=bool(ms[0] < md[0]),
      similar_grows_with_tau2=rho_tau >= c['rho_tau2_min'])
  investigation = {}
  for lr in config.mixture_width_lrs:
    s = records[f'mixture_hidden_dim_lr{lr:g}']['final']['hidden_dim']
    investigation[f'lr{lr:g}_hidden_trend'] = _dim_trend(s)[0]
    investigation[f'lr{lr:g}_msdr_at_sigma2_max'] = {
        k: v['msdr_mean'][-1] for k, v in s.items() if k != 'x'}
  h = summ['hidden_dim']
  investigation[f'lr{config.mixture.learning_rate:g}_msdr_at_sigma2_max'] = {
      k: v['msdr_mean'][-1] for k, v in h.items() if k != 'x'}
  investigation[f'lr{config.mixture.learning_rate:g}_msdr_init_at_sigma2_max'] = {
      k: v['msdr_init_mean'][-1] for k, v in h.items() if k != 'x'}
  all_fit = {p: bool(all(all(v['all_fit']) for k, v in s.items() if k != 'x'))
             for p, s in summ.items()}
  figs = []
  for part, name in (('input_dim', 'msdr_vs_sigma2_input_dim.png'),
                     ('hidden_dim', 'msdr_vs_sigma2_hidden_dim.png'),
                     ('weight_decay', 'msdr_vs_sigma2_weight_decay.png'),
                     ('similarity', 'msdr_vs_tau2.png')):
    figs.append(_copy(workdir, os.path.join(sweep.run_dir(workdir, f'mixture_{part}'), name),
                      f'004b_{name}'))
  for lr in config.mixture_width_lrs:
    figs.append(_copy(workdir, os.path.join(sweep.run_dir(workdir, f'mixture_hidden_dim_lr{lr:g}'),
                                            'msdr_vs_sigma2_hidden_dim.png'),
                      f'004b_msdr_vs_sigma2_hidden_dim_lr{lr:g}.png'))
  return Claim(
      id='004b',
      claim='In the Gaussian-mixture toy, MSDR rises with the cluster spread sigma^2, the '
            'input dimension and the hidden width, not with weight decay, and is lower for '
            'similar sub-classes (rising with their spread tau^2).',
      paper='App. B, Figs 18-21: 8 clusters x 500 samples, 4 super-classes, 2-layer ReLU MLP, '
            'd_input = d_hidden = 512, weight decay 0 by default; learning rate, '
            'initialisation and training length not stated.',
      setting=config.setting_004b,
      criterion=(f"Spearman(sigma^2, MSDR) >= {c['rho_sigma2_min']} on every line of Figs 18-20; "
                 f"mean over sigma^2 >= 2 of Spearman(dimension, MSDR) >= {c['rho_dim_min']} "
                 f"for input and for hidden width; mean relative spread of MSDR over weight "
                 f"decays at sigma^2 >= 2 <= {c['wd_spread_max']}; at the smallest tau^2 "
                 f"similar < dissimilar MSDR, and Spearman(tau^2, similar MSDR) >= "
                 f"{c['rho_tau2_min']}. Tested at the default learning rate; the other "
                 "learning rates are the width investigation, reported only."),
      verdict=verdict(checks),
      evidence=dict(checks=checks, spearman_sigma2_by_line=rho_sigma,
                    input_dim_trend=input_trend, hidden_dim_trend=hidden_trend,
                    weight_decay_spread=wd_spread, msdr_similar=ms.tolist(),
                    msdr_dissimilar=md.tolist(), tau2=sim['x'], spearman_tau2=rho_tau,
                    all_points_fit_by_part=all_fit, width_investigation=investigation),
      figures=figs,
      notes=config.notes_004b)


def _claim_004c(config, workdir, records) -> Claim:
  c = CRITERIA
  fine = {n: r['final'] for n, r in records.items() if n.startswith('fine_')}
  early, last = str(config.fine_early_epoch), str(max(config.fine_epochs))
  per = {}
  for n, f in fine.items():
    m, s = f['msdr_original_by_epoch'], f['separation_by_epoch']
    per[n] = dict(early_msdr=m[early], early_separation=s[early], final_msdr=m[last],
                  final_separation=s[last], growth=m[last] / m[early],
                  train_accuracy=f['fine_train_accuracy'],
                  terminal_phase_epoch=f['terminal_phase_epoch'])
  checks = dict(
      early_c_clusters=all(p['early_msdr'] <= c['fine_early_msdr_max'] and
                           p['early_separation'] >= c['fine_early_sep_min'] for p in per.values()),
      toward_2c=all(p['growth'] >= c['fine_growth_min'] for p in per.values()),
      c_structure_at_end=all(p['final_separation'] >= c['fine_final_sep_min']
                             for p in per.values()))
  first = sorted(fine)[0]
  figs = [_copy(workdir, os.path.join(sweep.run_dir(workdir, first), 'class_distances.png'),
                '004c_class_distances.png')]
  epochs = sorted(config.fine_epochs)
  plots.curves(os.path.join(workdir, '004c_over_epochs.png'), epochs,
               {f'{n} {k}': [f[f'{k}_by_epoch'][str(e)] for e in epochs]
                for n, f in fine.items() for k in ('msdr_original', 'separation')},
               xlabel='epoch', title='Fine labels (2C): halves of a class (MSDR) and original '
               'classes (separation)')
  figs.append('004c_over_epochs.png')
  return Claim(
      id='004c',
      claim='Trained on fine labels (each class split at random into two), the features first '
            'cluster by the C original classes, then move toward 2C clusters, and the C-class '
            'structure is still visible at the end.',
      paper='Sec 6, Figs 15-16: ResNet-18 on fine CIFAR-10 (20 labels); distance matrices '
            'over training.',
      setting=config.setting_004c,
      criterion=(f"For every seed, at epoch {early}: MSDR over the original classes <= "
                 f"{c['fine_early_msdr_max']} (its two halves indistinct) and separation "
                 f"(mean D between halves of different classes / between halves of one class) "
                 f">= {c['fine_early_sep_min']}; MSDR grows >= {c['fine_growth_min']}x by the "
                 f"last epoch ({last}); final separation >= {c['fine_final_sep_min']}."),
      verdict=verdict(checks),
      evidence=dict(checks=checks, **per),
      figures=figs)


def analyze(config, workdir: str, records: dict) -> list[Claim]:
  say('analysing the runs into claims 004a-004c')
  return [_claim_004a(config, workdir, records), _claim_004b(config, workdir, records),
          _claim_004c(config, workdir, records)]
