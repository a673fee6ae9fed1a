"""Paper 002: "Limitations of Neural Collapse for Understanding Generalization in
Deep Learning" (Hui, Belkin, Nakkiran) — claims 002a-002d as one study.

Runs (``configs/papers/p002_limits.py``):

- ``cascade_seed<s>`` (002a, 002d): the paper's 3 x 1024 MLP on 1,000 MNIST
  images, checkpointed along training; afterwards, at every checkpoint, the
  train variance with the current class means and with the final model's
  means (the paper's definition), the strong test variance and the weak test
  variance (k-means on the test features), at every hidden layer.
- ``size<n>_seed<s>`` (002b): one run per train-set size, each stopped when
  its training loss falls below ``stop_at_train_loss``.
- ``parity_pretrain`` then ``finetune_e<epoch>_lr<lr>`` (002c): pretraining
  on MNIST parity labels, then every checkpoint fine-tuned (all layers, a new
  10-class head) on 500 new images for each learning rate of a sweep; the
  learning rate is chosen on 100 held-out validation images, and the test
  accuracy of that choice is set against the checkpoint's train variance.

Train variance (SPEC.md ``train_variance`` = ``squared_distance`` on train
features) is measured with the current model's class means (what the trainer
records) and, as paper 002 sec 3.1 defines it, with the class means of the
final model: E||h_t(x) - mu_y(T)||^2 / E_i||mu_i(T) - mu(T)||^2. Each figure
says which it uses. Criteria: `CRITERIA`, fixed before any run.

References: paper 002 secs 3-5, Figs 2-6; SPEC.md lines 50-52.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from nc_jax import metrics
from nc_jax import plots
from nc_jax import train
from nc_jax.studies import sweep
from nc_jax.studies.common import features_at, say, spearman
from nc_jax.studies.reproduce import Claim, verdict
from nc_jax.train import checkpoints
from nc_jax.train import input as input_lib
from nc_jax.workdir import Workdir

PAPER = '002'
TITLE = 'Limitations of Neural Collapse for Understanding Generalization in Deep Learning'

# Fixed before the first run; never tuned afterwards.
CRITERIA = dict(
    gap_min=5.0,          # 002a: final test variances >= this x final train variance.
    train_fall_max=0.5,   # 002a: TV(T) <= this x TV(T/2): train collapse continues.
    test_level_min=0.7,   # 002a: strong test variance(T) >= this x its value at T/2.
    size_rho_min=0.8,     # 002b: |Spearman(size, variance)| of the seed means.
    transfer_rho_min=0.5,  # 002c: Spearman(checkpoint TV, fine-tuned accuracy).
)


def final_means_variance(h_t: np.ndarray, h_final: np.ndarray, labels: np.ndarray,
                         num_classes: int) -> float:
  """Paper 002's TrainVariance(t): E||h_t - mu_y(T)||^2 / E_i||mu_i(T) - mu(T)||^2.

  The class means mu(T) are the final model's; with balanced classes the
  sample average in the numerator equals the class-balanced one of SPEC.md.
  """
  h_t, h_final = np.asarray(h_t, np.float64), np.asarray(h_final, np.float64)
  mu = np.stack([h_final[labels == k].mean(0) for k in range(num_classes)])
  within = np.mean(np.sum((h_t - mu[labels]) ** 2, axis=1))
  return float(within / np.mean(np.sum((mu - mu.mean(0)) ** 2, axis=1)))


def _cascade_analysis(config):

  def analysis(run: sweep.Run, rdir: str) -> dict[str, Any]:
    tcfg = run.config
    train_ds, test_ds = input_lib.load_data(tcfg)
    sets = input_lib.eval_sets(tcfg, train_ds, test_ds)
    tr, te = sets['train'], sets['test']
    k = tr.num_classes
    layers = config.cascade_layers
    epochs = sorted(checkpoints.epochs(rdir))
    feats = {e: features_at(rdir, e, {'train': tr, 'test': te}, layers=layers,
                            batch_size=tcfg.eval_batch_size) for e in epochs}
    last = epochs[-1]
    out: dict[str, Any] = {'epochs': epochs}
    for layer in layers:
      out[f'train_variance_final_means_{layer}'] = [
          final_means_variance(feats[e]['train'][layer], feats[last]['train'][layer],
                               tr.labels, k) for e in epochs]
      out[f'train_variance_{layer}'] = [
          float(metrics.train_variance(feats[e]['train'][layer], tr.labels, num_classes=k))
          for e in epochs]
    pen = 'penultimate'
    out['strong_test_variance'] = [
        float(metrics.strong_test_variance(feats[e]['test'][pen], te.labels, num_classes=k))
        for e in epochs]
    out['weak_test_variance'] = [
        float(metrics.weak_test_variance(feats[e]['test'][pen], num_clusters=k,
                                         key=tcfg.seed, num_restarts=config.kmeans_restarts))
        for e in epochs]
    summary = train.summarize(Workdir(rdir).read_metrics())
    out.update(train_accuracy=summary['train_accuracy'], test_accuracy=summary['test_accuracy'],
               terminal_phase_epoch=summary['terminal_phase_epoch'])
    say(f"{run.name}: TV {out['train_variance_penultimate'][-1]:.3g}, strong "
        f"{out['strong_test_variance'][-1]:.3g}, weak {out['weak_test_variance'][-1]:.3g}")
    return out

  return analysis


def _size_final(run, rdir):
  summary = train.train_and_evaluate(run.config, rdir)
  return dict(train_variance=summary['train_squared_distance'],
              strong_test_variance=summary['test_squared_distance'],
              train_accuracy=summary['train_accuracy'], test_accuracy=summary['test_accuracy'],
              epochs=summary['epoch'], stopped_at_train_loss=summary['stopped_at_train_loss'],
              final_running_loss=[r for r in Workdir(rdir).read_metrics()
                                  if 'running_loss' in r][-1]['running_loss'])


def _pretrain_analysis(group):

  def analysis(run, rdir):
    tcfg = run.config
    tr, _ = input_lib.load_data(tcfg)
    out = {}
    for e in group.epochs:
      h = features_at(rdir, e, {'train': tr}, batch_size=tcfg.eval_batch_size)['train']
      out[f'train_variance_e{e}'] = float(metrics.train_variance(
          h['penultimate'], tr.labels, num_classes=tr.num_classes))
    return out

  return analysis


def _finetune_final(run, rdir):
  try:
    s = train.train_and_evaluate(run.config, rdir)
  except FloatingPointError as err:  # A learning rate of the sweep diverged:
    say(f'{run.name}: {err}')        # a result, not a crash of the study.
    return dict(diverged=True, val_accuracy=None, test_accuracy=None, train_accuracy=None)
  return dict(diverged=False, val_accuracy=s['val_accuracy'],
              test_accuracy=s['test_accuracy'], train_accuracy=s['train_accuracy'])


def plan(config, workdir: str) -> list[sweep.Run]:
  runs = []
  for seed in config.seeds:
    runs.append(sweep.Run(f'cascade_seed{seed}', sweep.train_then(_cascade_analysis(config)),
                          sweep.with_overrides(config.cascade, dict(seed=seed)), seed=seed))
  for n in config.sizes:
    for seed in config.seeds:
      over = dict(train_examples_per_class=n // 10, seed=seed)
      runs.append(sweep.Run(f'size{n}_seed{seed}', _size_final,
                            sweep.with_overrides(config.size, over), seed=seed,
                            overrides=dict(train_size=n)))
  for group, g in config.transfer.items():
    pre = f'{group}_pretrain'
    runs.append(sweep.Run(pre, sweep.train_then(_pretrain_analysis(g)), g.pretrain,
                          seed=g.pretrain.seed))
    pdir = os.path.abspath(sweep.run_dir(workdir, pre))
    for e in g.epochs:
      for lr in g.lrs:
        over = dict(init_from=pdir, init_epoch=e, learning_rate=lr)
        runs.append(sweep.Run(f'{group}_finetune_e{e}_lr{lr:g}', _finetune_final,
                              sweep.with_overrides(g.finetune, over), seed=g.finetune.seed,
                              overrides=dict(init_epoch=e, learning_rate=lr), deps=(pre,)))
  return runs


# ---------------------------------------------------------------------------
# Claims.
# ---------------------------------------------------------------------------


def _mid(epochs, values):
  """The value at the checkpoint nearest half the last epoch."""
  epochs = np.asarray(epochs)
  i = int(np.argmin(np.abs(epochs - epochs[-1] / 2)))
  return values[i], int(epochs[i])


def _claim_002a(config, workdir, records) -> Claim:
  c = CRITERIA
  per, checks = {}, {}
  for name in sorted(n for n in records if n.startswith('cascade_')):
    f = records[name]['final']
    tv, tvf = f['train_variance_penultimate'], f['train_variance_final_means_penultimate']
    strong, weak = f['strong_test_variance'], f['weak_test_variance']
    tv_mid, mid = _mid(f['epochs'], tv)
    strong_mid, _ = _mid(f['epochs'], strong)
    per[name] = dict(final_train_variance=tv[-1], final_train_variance_final_means=tvf[-1],
                     final_strong_test_variance=strong[-1], final_weak_test_variance=weak[-1],
                     mid_epoch=mid, mid_train_variance=tv_mid, mid_strong_test_variance=strong_mid,
                     train_accuracy=f['train_accuracy'], test_accuracy=f['test_accuracy'])
    checks[f'{name}_gap'] = bool(strong[-1] >= c['gap_min'] * tv[-1] and
                                 weak[-1] >= c['gap_min'] * tv[-1])
    checks[f'{name}_train_keeps_falling'] = bool(tv[-1] <= c['train_fall_max'] * tv_mid)
    checks[f'{name}_test_levels_off'] = bool(strong[-1] >= c['test_level_min'] * strong_mid)
  first = records[sorted(n for n in records if n.startswith('cascade_'))[0]]['final']
  fig = '002a_train_vs_test_variance.png'
  plots.curves(os.path.join(workdir, fig), first['epochs'], {
      'train variance (current means)': first['train_variance_penultimate'],
      'train variance (final means, paper)': first['train_variance_final_means_penultimate'],
      'strong test variance': first['strong_test_variance'],
      'weak test variance (k-means)': first['weak_test_variance']},
      xlabel='epoch', logy=True, title='MLP 3 x 1024, 1,000 MNIST images (seed 0), last hidden layer')
  return Claim(
      id='002a',
      claim='Train collapse without test collapse: the train variance keeps falling while the '
            'strong and weak test variances level off far above it.',
      paper='Figs 1-3: ResNet-18 on CIFAR-10 (and other models / data sets), 80k SGD '
            'iterations, batch 128, lr 0.1, cosine, no augmentation.',
      setting=config.setting_cascade,
      criterion=(f"For every seed, at the last checkpoint T (last hidden layer): strong and weak "
                 f"test variance >= {c['gap_min']:g} x train variance (current means); train "
                 f"variance(T) <= {c['train_fall_max']} x its value at T/2; strong test "
                 f"variance(T) >= {c['test_level_min']} x its value at T/2."),
      verdict=verdict(checks),
      evidence=dict(checks=checks, **per),
      figures=[fig])


def _claim_002b(config, workdir, records) -> Claim:
  c = CRITERIA
  sizes = list(config.sizes)
  tv = {n: [records[f'size{n}_seed{s}']['final']['train_variance'] for s in config.seeds]
        for n in sizes}
  st = {n: [records[f'size{n}_seed{s}']['final']['strong_test_variance'] for s in config.seeds]
        for n in sizes}
  stopped = {f'size{n}_seed{s}': records[f'size{n}_seed{s}']['final']['stopped_at_train_loss']
             for n in sizes for s in config.seeds}
  tv_mean = [float(np.mean(tv[n])) for n in sizes]
  st_mean = [float(np.mean(st[n])) for n in sizes]
  rho_train, rho_test = spearman(sizes, tv_mean), spearman(sizes, st_mean)
  checks = dict(train_collapse_weaker_with_size=rho_train >= c['size_rho_min'],
                test_collapse_stronger_with_size=rho_test <= -c['size_rho_min'],
                every_run_reached_the_loss=all(stopped.values()) or None)
  fig = '002b_variance_vs_train_size.png'
  plots.curves(os.path.join(workdir, fig), sizes,
               {'train variance': tv_mean, 'strong test variance': st_mean},
               xlabel='training images', logy=True,
               title=f'End of training (loss < {config.size.stop_at_train_loss:g}), '
                     f'mean of {len(config.seeds)} seeds')
  return Claim(
      id='002b',
      claim='With more training data, train collapse at the end of training is weaker and test '
            'collapse stronger.',
      paper='Fig 4: ResNet-18 on CIFAR-10 with 12.5k-50k images and VGG-11-BN on Fashion-MNIST '
            'subsets, each trained until the training loss is 1e-6.',
      setting=config.setting_size,
      criterion=(f"Over the seed means, Spearman(train size, train variance) >= "
                 f"{c['size_rho_min']} and Spearman(train size, strong test variance) <= "
                 f"-{c['size_rho_min']}; every run must reach the loss threshold (else "
                 "inconclusive)."),
      verdict=verdict(checks),
      evidence=dict(checks=checks, sizes=sizes, train_variance=tv, strong_test_variance=st,
                    spearman_train=rho_train, spearman_test=rho_test, reached_loss=stopped),
      figures=[fig])


def _claim_002c(config, workdir, records) -> Claim:
  c = CRITERIA
  checks, evidence, points = {}, {}, {}
  for group, g in config.transfer.items():
    pre = records[f'{group}_pretrain']['final']
    rows = []
    for e in g.epochs:
      tries = {lr: records[f'{group}_finetune_e{e}_lr{lr:g}']['final'] for lr in g.lrs}
      tries = {lr: t for lr, t in tries.items() if not t.get('diverged')}
      best = max(tries, key=lambda lr: (tries[lr]['val_accuracy'], -lr))
      rows.append(dict(epoch=e, train_variance=pre[f'train_variance_e{e}'], best_lr=best,
                       val_accuracy=tries[best]['val_accuracy'],
                       test_accuracy=tries[best]['test_accuracy']))
    tv = [r['train_variance'] for r in rows]
    acc = [r['test_accuracy'] for r in rows]
    rho = spearman(tv, acc)
    checks[f'{group}_more_collapse_worse_transfer'] = rho >= c['transfer_rho_min']
    evidence[group] = dict(spearman=rho, checkpoints=rows, diverged_runs=[
        n for n, rec in records.items()
        if n.startswith(f'{group}_finetune_') and rec['final'].get('diverged')])
    points[group] = (tv, acc)
  fig = '002c_transfer_vs_train_variance.png'
  plots.scatter(os.path.join(workdir, fig), points,
                xlabel='train variance of the checkpoint (super-class labels, current means)',
                ylabel='test accuracy after fine-tuning', logx=True,
                title='Super-class pretraining, then full fine-tuning on the fine classes')
  return Claim(
      id='002c',
      claim='Pretraining on super-classes: checkpoints with more train collapse transfer worse '
            'to the fine classes.',
      paper='Fig 5: MNIST parity labels, 3 x 1024 MLP, the first 1,000 images, lr 0.001, 100k '
            'iterations; checkpoints fine-tuned (all layers) on 500 new images, best accuracy '
            'over lr 0.0005-0.25 against the checkpoint train variance. Also ResNet-18 on '
            'CIFAR-10 objects vs animals (8 classes, deer and dog dropped).',
      setting=config.setting_transfer,
      criterion=(f"For each pretraining ({', '.join(config.transfer)}): Spearman(checkpoint "
                 f"train variance, test accuracy of the fine-tuning run whose learning rate "
                 f"is chosen on the validation images) >= {c['transfer_rho_min']} over the "
                 "checkpoints."),
      verdict=verdict(checks),
      evidence=dict(checks=checks, **evidence),
      figures=[fig])


def _claim_002d(config, workdir, records) -> Claim:
  layers = list(config.cascade_layers)
  checks, per = {}, {}
  for name in sorted(n for n in records if n.startswith('cascade_')):
    f = records[name]['final']
    final = {l: f[f'train_variance_{l}'][-1] for l in layers}
    # First checkpoint where a layer's variance is below half its initial value.
    half = {}
    for l in layers:
      v = np.asarray(f[f'train_variance_{l}'])
      below = np.flatnonzero(v <= 0.5 * v[0])
      half[l] = int(f['epochs'][below[0]]) if len(below) else None
    per[name] = dict(final_train_variance=final, half_epoch=half,
                     final_train_variance_final_means={
                         l: f[f'train_variance_final_means_{l}'][-1] for l in layers})
    order = [final[l] for l in layers]
    checks[f'{name}_last_layer_furthest'] = bool(all(a > b for a, b in zip(order, order[1:])))
    if half[layers[-1]] is None:
      checks[f'{name}_last_layer_first'] = False
    else:
      checks[f'{name}_last_layer_first'] = all(
          half[l] is None or half[layers[-1]] <= half[l] for l in layers[:-1])
  first = records[sorted(n for n in records if n.startswith('cascade_'))[0]]['final']
  figs = []
  for kind, label in (('', 'current means'), ('final_means_', 'final means (paper)')):
    fig = f'002d_cascade_{kind or "current_means_"}per_layer.png'.replace('__', '_')
    plots.curves(os.path.join(workdir, fig), first['epochs'],
                 {l: first[f'train_variance_{kind}{l}'] for l in layers}, xlabel='epoch',
                 logy=True, title=f'Train variance per layer ({label}), seed 0')
    figs.append(fig)
  return Claim(
      id='002d',
      claim='Cascading collapse: the last hidden layer\'s train variance falls first and '
            'furthest, the earlier layers\' later and less.',
      paper='Fig 6: 3 x 1024 MLP, MNIST, 100 images per class, lr 0.001, cosine, 80k '
            'iterations; train variance per layer over steps.',
      setting=config.setting_cascade,
      criterion='For every seed (current class means): final train variance strictly '
                'decreasing from the first to the last hidden layer, and the last layer the '
                'first (or tied first) to fall below half its initial value.',
      verdict=verdict(checks),
      evidence=dict(checks=checks, layers=layers, **per),
      figures=figs)


def analyze(config, workdir: str, records: dict) -> list[Claim]:
  say('analysing the runs into claims 002a-002d')
  return [_claim_002a(config, workdir, records), _claim_002b(config, workdir, records),
          _claim_002c(config, workdir, records), _claim_002d(config, workdir, records)]
