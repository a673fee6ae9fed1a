"""Paper 001: "What deep representations should we learn? A neural collapse
perspective" — claims 001a-001d as one study.

Every pretraining is a trainer run on the source task; transfer is a linear
probe (L-BFGS, frozen features) on the downstream task, read at the layer
transfer uses: the encoder output ('pre_head' when a classifier-side head is
present, else 'penultimate'; SupCon's projection is never used). Runs
(``configs/papers/p001_transfer.py``):

- ``<loss>_seed<s>`` (001a): MSE, CE, SupCon with a linear and with an MLP
  projection head;
- ``<ce|mse>_head<L>`` (001b): L classifier-side head layers;
- ``aug<k>``, ``adv<eps>``, ``deep`` (001c): augmentation strengths,
  FGSM-training strengths, and one deep MLP probed at every layer;
- ``ft_<variant>_seed<s>`` (001d): the fine-tuning variants of 001 sec 3.3
  from the CE model, as trainer runs (``init_from``).

Criteria: `CRITERIA`, fixed before any run. References: paper 001 secs 3.1-3.3,
Table 1-2, Figs 1, 3-6; SPEC.md "Transfer (000, 001)".
"""

from __future__ import annotations

import os

import numpy as np

from nc_jax import plots
from nc_jax import train
from nc_jax.studies import sweep
from nc_jax.studies.common import probe_layers, say, spearman
from nc_jax.studies.reproduce import Claim, verdict
from nc_jax.train import input as input_lib
from nc_jax.workdir import Workdir

PAPER = '001'
TITLE = 'What deep representations should we learn? A neural collapse perspective'

CRITERIA = dict(
    downstream_rho_max=-0.5,  # 001c: Spearman(downstream NC1, transfer accuracy).
    scl_tolerance=0.005,      # 001d: SCL >= layer FT - this (mean accuracy).
    probe_margin=0.02,        # 001d: layer FT >= linear probe + this (">>").
)


def transfer_layer(rdir: str) -> str:
  dims = train.finetune.read_model_info(rdir)['feature_dims']
  return 'pre_head' if 'pre_head' in dims else 'penultimate'


def _probe(config, rdir: str, layers) -> dict[str, dict[str, float]]:
  """{layer: probe top-1 and downstream nc1} on the downstream task."""
  tr, te = input_lib.load_data(config.downstream)
  res = probe_layers(rdir, tr, te, config.probe, layers=layers, seed=0,
                     batch_size=config.downstream.eval_batch_size)
  return {l: dict(transfer=r['probe_top1'], downstream_nc1=r['downstream_nc1'])
          for l, r in res.items()}


def _source_nc1(rdir: str, layer: str) -> float:
  recs = [r for r in Workdir(rdir).read_metrics()
          if r.get('split') == 'train' and r.get('layer') == layer and 'labels' not in r]
  return recs[-1]['nc1']


def _pretrain(config, *, all_layers: bool = False):

  def execute(run, rdir):
    summary = train.train_and_evaluate(run.config, rdir)
    layer = transfer_layer(rdir)
    if all_layers:
      layers = [l for l in train.finetune.read_model_info(rdir)['feature_dims']
                if l != 'projection']
    else:
      layers = [layer]
    probes = _probe(config, rdir, layers)
    out = dict(layer=layer, source_nc1=_source_nc1(rdir, layer),
               source_test_accuracy=summary['test_accuracy'],
               transfer=probes[layer]['transfer'],
               downstream_nc1=probes[layer]['downstream_nc1'])
    if all_layers:
      out['by_layer'] = {l: dict(probes[l], source_nc1=_source_nc1(rdir, l)) for l in layers}
    say(f"{run.name}: source nc1 {out['source_nc1']:.4g}, transfer {out['transfer']:.4f}")
    return out

  return execute


def _finetune(run, rdir):
  s = train.train_and_evaluate(run.config, rdir)
  return dict(test_accuracy=s['test_accuracy'], trained_params=s['num_params'])


def plan(config, workdir: str) -> list[sweep.Run]:
  runs = []
  for name, over in config.losses.items():
    for seed in config.seeds:
      runs.append(sweep.Run(f'{name}_seed{seed}', _pretrain(config),
                            sweep.with_overrides(config.pretrain, dict(over.to_dict(), seed=seed)),
                            seed=seed, overrides=dict(over.to_dict())))
  for loss in ('ce', 'mse'):
    for depth in config.head_depths:
      if depth:
        over = {'loss': loss, 'model_kwargs.head_depth': depth}
        runs.append(sweep.Run(f'{loss}_head{depth}', _pretrain(config),
                              sweep.with_overrides(config.pretrain, over), overrides=over))
  for k in config.aug_strengths:
    if k != config.base_aug:
      over = dict(crop_padding=k, augment_noise=config.noise_per_strength * k)
      runs.append(sweep.Run(f'aug{k}', _pretrain(config),
                            sweep.with_overrides(config.pretrain, over), overrides=over))
  for eps in config.adv_eps:
    if eps:
      over = dict(adversarial_eps=eps)
      runs.append(sweep.Run(f'adv{eps:g}', _pretrain(config),
                            sweep.with_overrides(config.pretrain, over), overrides=over))
  runs.append(sweep.Run('deep', _pretrain(config, all_layers=True),
                        sweep.with_overrides(config.pretrain, config.deep.to_dict()),
                        overrides=config.deep.to_dict()))
  src = f'ce_seed{config.seeds[0]}'
  pdir = os.path.abspath(sweep.run_dir(workdir, src))
  for variant in config.variants:
    for seed in config.seeds:
      over = dict(init_from=pdir, finetune=variant, seed=seed,
                  finetune_block=config.ft_block if variant in ('layer', 'scl') else '')
      runs.append(sweep.Run(f'ft_{variant}_seed{seed}', _finetune,
                            sweep.with_overrides(config.finetune, over), seed=seed,
                            overrides=dict(finetune=variant), deps=(src,)))
  return runs


# ---------------------------------------------------------------------------
# Claims.
# ---------------------------------------------------------------------------


def _mean(r, names, key):
  return float(np.mean([r[n]['final'][key] for n in names]))


def _claim_001a(config, workdir, r) -> Claim:
  losses = list(config.losses)
  nc1 = {l: _mean(r, [f'{l}_seed{s}' for s in config.seeds], 'source_nc1') for l in losses}
  acc = {l: _mean(r, [f'{l}_seed{s}' for s in config.seeds], 'transfer') for l in losses}
  checks = dict(mse_most_collapsed=min(nc1, key=nc1.get) == 'mse',
                supcon_mlp_least_collapsed=max(nc1, key=nc1.get) == 'supcon_mlp',
                mse_worst_transfer=min(acc, key=acc.get) == 'mse',
                supcon_mlp_best_transfer=max(acc, key=acc.get) == 'supcon_mlp')
  fig = '001a_nc1_vs_transfer.png'
  plots.scatter(os.path.join(workdir, fig),
                {l: ([r[f'{l}_seed{s}']['final']['source_nc1'] for s in config.seeds],
                     [r[f'{l}_seed{s}']['final']['transfer'] for s in config.seeds])
                 for l in losses},
                xlabel='source NC1 (train, transfer layer)', ylabel='transfer (probe top-1)',
                logx=True, title='Losses: source collapse vs transfer')
  return Claim(
      id='001a',
      claim='Pretraining with MSE gives the most collapsed source features and the worst '
            'transfer; SupCon with an MLP head the least collapsed and the best; CE and SupCon '
            'with a linear head in between.',
      paper='Table 1: ResNet-18, CIFAR-100 -> CIFAR-10: NC1 0.001 / 0.771 / 0.792 / 2.991, '
            'transfer 54.0 / 71.2 / 69.9 / 79.5 (MSE / CE / SupCon linear / SupCon MLP).',
      setting=config.setting,
      criterion=('Over the seed means: MSE has the lowest source NC1 and the lowest transfer '
                 'accuracy, SupCon-MLP the highest of both.'),
      verdict=verdict(checks),
      evidence=dict(checks=checks, source_nc1=nc1, transfer=acc),
      figures=[fig])


def _claim_001b(config, workdir, r) -> Claim:
  s0 = config.seeds[0]
  rows, checks = {}, {}
  for loss in ('ce', 'mse'):
    names = [f'{loss}_seed{s0}' if d == 0 else f'{loss}_head{d}' for d in config.head_depths]
    nc1 = [r[n]['final']['source_nc1'] for n in names]
    acc = [r[n]['final']['transfer'] for n in names]
    rows[loss] = dict(head_depths=list(config.head_depths), source_nc1=nc1, transfer=acc)
    checks[f'{loss}_nc1_rises'] = nc1[-1] > nc1[0]
    checks[f'{loss}_transfer_rises'] = acc[-1] > acc[0]
  lin = [r[f'supcon_linear_seed{s}']['final'] for s in config.seeds]
  mlp = [r[f'supcon_mlp_seed{s}']['final'] for s in config.seeds]
  rows['supcon'] = dict(head_layers=[1, 2],
                        source_nc1=[np.mean([f['source_nc1'] for f in lin]),
                                    np.mean([f['source_nc1'] for f in mlp])],
                        transfer=[np.mean([f['transfer'] for f in lin]),
                                  np.mean([f['transfer'] for f in mlp])])
  checks['supcon_nc1_rises'] = rows['supcon']['source_nc1'][1] > rows['supcon']['source_nc1'][0]
  checks['supcon_transfer_rises'] = rows['supcon']['transfer'][1] > rows['supcon']['transfer'][0]
  figs = []
  for key, logy in (('source_nc1', True), ('transfer', False)):
    fig = f'001b_{key}_vs_head_layers.png'
    plots.curves(os.path.join(workdir, fig), list(config.head_depths),
                 {l: rows[l][key] for l in ('ce', 'mse')}, xlabel='head layers', logy=logy,
                 title=f'{key} (pre-head features) vs classifier-side head layers')
    figs.append(fig)
  return Claim(
      id='001b',
      claim='Adding projection-head layers raises the source NC1 of the pre-head features and '
            'the transfer accuracy, for CE, MSE and SupCon alike.',
      paper='Fig 1: ResNet-18 CIFAR-100 -> CIFAR-10, heads of 0-3 layers.',
      setting=config.setting + f' Head layers {tuple(config.head_depths)} for CE and MSE '
              '(seed 0); SupCon: linear (1 layer) vs MLP (2 layers) projection.',
      criterion='For CE, MSE (deepest head vs none) and SupCon (MLP vs linear): both the '
                'pre-head source NC1 and the transfer accuracy are higher with more head layers.',
      verdict=verdict(checks),
      evidence=dict(checks=checks, **rows),
      figures=figs)


def _claim_001c(config, workdir, r) -> Claim:
  c = CRITERIA
  s0 = config.seeds[0]
  base = f'ce_seed{s0}'
  aug = [base if k == config.base_aug else f'aug{k}' for k in config.aug_strengths]
  adv = [base if eps == 0 else f'adv{eps:g}' for eps in config.adv_eps]
  groups = {'augmentation': aug, 'adversarial': adv}
  pts = {g: ([r[n]['final']['downstream_nc1'] for n in names],
             [r[n]['final']['transfer'] for n in names]) for g, names in groups.items()}
  deep = r['deep']['final']['by_layer']
  pts['layers (deep MLP)'] = ([v['downstream_nc1'] for v in deep.values()],
                              [v['transfer'] for v in deep.values()])
  rho = {g: spearman(*xy) for g, xy in pts.items()}
  checks = {f'{g}_negative': rho[g] <= c['downstream_rho_max'] for g in rho}
  fig = '001c_downstream_nc1_vs_transfer.png'
  plots.scatter(os.path.join(workdir, fig), pts, xlabel='downstream NC1 (MNIST features)',
                ylabel='transfer (probe top-1)', logx=True,
                title='Downstream collapse vs transfer')
  return Claim(
      id='001c',
      claim='Downstream NC1 (of the downstream data\'s features) correlates negatively with '
            'transfer accuracy: across augmentation strengths, adversarial-training '
            'strengths, and the layers of one deep network.',
      paper='Figs 3, 5, 6: ResNets on CIFAR-100 -> CIFAR-10 (augmentation, adversarial '
            'training); a 12 x 3072 MLP, per-layer downstream NC1 against per-layer probes.',
      setting=config.setting + f' Augmentation strengths k = {tuple(config.aug_strengths)} '
              f'(crop padding k px and pixel noise {config.noise_per_strength} k); FGSM '
              f'training eps {tuple(config.adv_eps)}; a {config.deep.model_kwargs.depth} x '
              f'{config.deep.model_kwargs.width} MLP probed at every layer.',
      criterion=f"Spearman(downstream NC1, transfer accuracy) <= {c['downstream_rho_max']} in "
                "each of the three groups.",
      verdict=verdict(checks),
      evidence=dict(checks=checks, spearman=rho,
                    points={g: dict(downstream_nc1=x, transfer=y) for g, (x, y) in pts.items()}),
      figures=[fig])


def _claim_001d(config, workdir, r) -> Claim:
  c = CRITERIA
  acc = {v: [r[f'ft_{v}_seed{s}']['final']['test_accuracy'] for s in config.seeds]
         for v in config.variants}
  mean = {v: float(np.mean(a)) for v, a in acc.items()}
  params = {v: r[f'ft_{v}_seed{config.seeds[0]}']['final']['trained_params']
            for v in config.variants}
  lbfgs = r[f'ce_seed{config.seeds[0]}']['final']['transfer']
  checks = dict(scl_at_least_layer=mean['scl'] >= mean['layer'] - c['scl_tolerance'],
                layer_well_above_probe=mean['layer'] >= mean['linear_probe'] + c['probe_margin'])
  fig = '001d_finetuning.png'
  plots.bars(os.path.join(workdir, fig),
             dict({f'{v}\n(mean of {len(config.seeds)})': m for v, m in mean.items()},
                  **{'L-BFGS probe\n(frozen)': lbfgs}),
             title=f'{config.pretrain.dataset} -> {config.downstream.dataset}: fine-tuning')
  return Claim(
      id='001d',
      claim='SCL fine-tuning >= layer fine-tuning >> linear probe, with full fine-tuning as the '
            'reference.',
      paper='Table 2: e.g. ResNet-18 ImageNet -> CIFAR-10: 43 / 82 / 85 / 86 (linear probe / '
            'layer FT / SCL FT / full FT).',
      setting=config.setting_ft,
      criterion=(f"Over seed means: SCL >= layer FT - {c['scl_tolerance']}; layer FT >= linear "
                 f"probe (head only) + {c['probe_margin']}. Full FT and the L-BFGS probe are "
                 "reported."),
      verdict=verdict(checks),
      evidence=dict(checks=checks, test_accuracy=acc, mean=mean, trained_params=params,
                    lbfgs_probe=lbfgs),
      figures=[fig])


def analyze(config, workdir: str, records: dict) -> list[Claim]:
  say('analysing the runs into claims 001a-001d')
  return [f(config, workdir, records) for f in
          (_claim_001a, _claim_001b, _claim_001c, _claim_001d)]
