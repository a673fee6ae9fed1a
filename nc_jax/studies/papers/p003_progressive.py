"""Paper 003: "Generalization, Robustness and Adaptability of Progressive Neural
Collapse" — claims 003a-003d as one study.

Runs (``configs/papers/p003_progressive.py``), every one a trainer run that
records CDNV and NC2 at every layer:

- ``depth<d>`` (003a): one model family at several depths; afterwards a
  linear probe on every layer's frozen features.
- ``noise<r>_seed<s>`` (003b): symmetric label noise at several rates; the
  trainer measures CDNV against the noisy training labels and, on the same
  features, against the clean labels (``eval_label_sets=('clean',)``); the
  memorization ratio is their quotient (SPEC.md).
- ``corrupt<s>`` (003c): trained on corrupted inputs at several severities;
  CDNV on the corrupted training images and on the same images clean
  (``eval_sets.train_clean``, ``like_train=True``).
- ``source_<name>`` (003d): models trained on different source domains (the
  same labels, different input distributions); CDNV of each layer on the
  target domain (``eval_sets.target``) and a linear probe on the target with
  little target data.

Criteria: `CRITERIA`, fixed before any run. References: paper 003 secs 3-4,
Figs 1-3, 6, 9, Def 1; SPEC.md "Layers and noise (003)".
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from nc_jax import plots
from nc_jax import train
from nc_jax.studies import sweep
from nc_jax.studies.common import probe_layers, say, spearman
from nc_jax.studies.reproduce import Claim, verdict
from nc_jax.train import input as input_lib
from nc_jax.workdir import Workdir

PAPER = '003'
TITLE = 'Generalization, Robustness and Adaptability of Progressive Neural Collapse'

CRITERIA = dict(
    progressive_rho_max=-0.8,  # 003a: Spearman(layer, CDNV) at every depth.
    probe_rho_min=0.8,         # 003a: Spearman(layer, probe accuracy) at every depth.
    depth_gain_max=0.02,       # 003a: test accuracy gain from the 2nd-deepest to the deepest.
    lifted_fraction_min=0.7,   # 003b: fraction of layers whose CDNV rises with the noise rate.
    domain_rho_max=-0.5,       # 003d: Spearman(target CDNV, target probe accuracy).
)


def layer_records(rdir: str, split: str, labels: str | None = None) -> dict[str, dict]:
  """{layer: the last evaluation's record} of a trainer run."""
  out = {}
  for r in Workdir(rdir).read_metrics():
    if r.get('split') == split and r.get('labels') == labels:
      out[r['layer']] = r  # Later epochs overwrite earlier ones.
  return out


def _layers(rdir: str) -> list[str]:
  return [l for l in train.finetune.read_model_info(rdir)['feature_dims'] if l != 'projection']


def _probe_layers(config, rdir: str, tcfg, *, target=None) -> dict[str, float]:
  """Linear-probe test accuracy of every layer's frozen features."""
  if target is None:
    tr, te = input_lib.load_data(tcfg)
    rng = np.random.default_rng(0)
    tr = tr.subset(np.sort(rng.choice(len(tr), min(len(tr), config.probe_examples), False)))
    te = te.subset(np.arange(min(len(te), config.probe_test_examples)))
  else:
    tr, te = target
  res = probe_layers(rdir, tr, te, config.probe, layers=_layers(rdir), seed=0,
                     batch_size=tcfg.eval_batch_size)
  return {l: r['probe_top1'] for l, r in res.items()}


def _final(rdir: str, extra_splits=()) -> dict[str, Any]:
  layers = _layers(rdir)
  tr = layer_records(rdir, 'train')
  out = dict(layers=layers, cdnv=[tr[l]['cdnv'] for l in layers],
             nc2_etf=[tr[l]['nc2_etf'] for l in layers],
             test_accuracy=layer_records(rdir, 'test')['penultimate']['accuracy'],
             train_accuracy=tr['penultimate']['accuracy'])
  clean = layer_records(rdir, 'train', 'clean')
  if clean:
    out['cdnv_clean_labels'] = [clean[l]['cdnv'] for l in layers]
    out['memorization_ratio'] = [c / n for c, n in zip(out['cdnv_clean_labels'], out['cdnv'])]
  for split in extra_splits:
    recs = layer_records(rdir, split)
    out[f'cdnv_{split}'] = [recs[l]['cdnv'] for l in layers]
  return out


def _depth_run(config):

  def execute(run, rdir):
    train.train_and_evaluate(run.config, rdir)
    out = _final(rdir)
    probe = _probe_layers(config, rdir, run.config)
    out['probe_accuracy'] = [probe[l] for l in out['layers']]
    return out

  return execute


def _noise_run(run, rdir):
  train.train_and_evaluate(run.config, rdir)
  return _final(rdir)


def _corrupt_run(run, rdir):
  train.train_and_evaluate(run.config, rdir)
  out = _final(rdir, extra_splits=('train_clean',))
  # CDNV on the same images clean / on the corrupted ones it trained on.
  out['memorization_ratio'] = [c / n for c, n in zip(out['cdnv_train_clean'], out['cdnv'])]
  return out


def _source_run(config):

  def execute(run, rdir):
    train.train_and_evaluate(run.config, rdir)
    out = _final(rdir, extra_splits=('target',))
    t = config.target
    tcfg = run.config
    target_train, target_test = input_lib.load_data(t)
    probe = _probe_layers(config, rdir, tcfg, target=(target_train, target_test))
    out['target_probe_accuracy'] = [probe[l] for l in out['layers']]
    return out

  return execute


def plan(config, workdir: str) -> list[sweep.Run]:
  del workdir
  runs = []
  for d in config.depths:
    runs.append(sweep.Run(f'depth{d}', _depth_run(config),
                          sweep.with_overrides(config.base, {'model_kwargs.depth': d}),
                          overrides=dict(depth=d)))
  for m in config.depth_models:  # Deeper models of one family, by name (ResNet-18/34/50).
    runs.append(sweep.Run(f'depth_{m}', _depth_run(config),
                          sweep.with_overrides(config.base, {'model': m}),
                          overrides=dict(model=m)))
  for rate in config.noise_rates:
    for seed in config.seeds:
      over = dict(label_noise=rate, seed=seed, eval_label_sets=('clean',))
      runs.append(sweep.Run(f'noise{rate:g}_seed{seed}', _noise_run,
                            sweep.with_overrides(config.base, over), seed=seed,
                            overrides=dict(label_noise=rate)))
  for sev in config.severities:
    over = dict(corruption=config.corruption, corruption_severity=sev,
                eval_sets=dict(train_clean=dict(like_train=True)))
    runs.append(sweep.Run(f'corrupt{sev}', _corrupt_run, sweep.with_overrides(config.base, over),
                          overrides=dict(corruption=config.corruption, severity=sev)))
  for name, src in config.sources.items():
    over = dict(dataset=config.domain_dataset, **src.to_dict(),
                eval_sets=dict(target=dict(dataset=config.domain_dataset, split='test',
                                           corruption=config.target.corruption,
                                           severity=config.target.corruption_severity,
                                           examples=config.probe_test_examples)))
    runs.append(sweep.Run(f'source_{name}', _source_run(config),
                          sweep.with_overrides(config.base, over), overrides=src.to_dict()))
  return runs


# ---------------------------------------------------------------------------
# Claims.
# ---------------------------------------------------------------------------


def _depth_names(config) -> list[str]:
  return [f'depth{d}' for d in config.depths] + [f'depth_{m}' for m in config.depth_models]


def _claim_003a(config, workdir, r) -> Claim:
  c = CRITERIA
  checks, per = {}, {}
  names = _depth_names(config)
  for name in names:
    f = r[name]['final']
    idx = np.arange(len(f['layers']))
    rho_cdnv, rho_nc2 = spearman(idx, f['cdnv']), spearman(idx, f['nc2_etf'])
    rho_probe = spearman(idx, f['probe_accuracy'])
    per[name] = dict(cdnv=f['cdnv'], nc2_etf=f['nc2_etf'], probe=f['probe_accuracy'],
                            spearman_cdnv=rho_cdnv, spearman_nc2=rho_nc2,
                            spearman_probe=rho_probe, test_accuracy=f['test_accuracy'],
                            train_accuracy=f['train_accuracy'])
    checks[f'{name}_progressive_cdnv'] = rho_cdnv <= c['progressive_rho_max']
    checks[f'{name}_probe_rises'] = rho_probe >= c['probe_rho_min']
  accs = [r[n]['final']['test_accuracy'] for n in names]
  gain = accs[-1] - accs[-2]
  checks['little_gain_past_plateau'] = gain <= c['depth_gain_max']
  figs = []
  for key, logy in (('cdnv', True), ('nc2_etf', False), ('probe_accuracy', False)):
    fig = f'003a_{key}_by_layer.png'
    deepest = max(len(r[n]['final']['layers']) for n in names)
    curves = {}
    for n in names:
      v = r[n]['final'][key]
      curves[n] = list(v) + [np.nan] * (deepest - len(v))
    plots.curves(os.path.join(workdir, fig), np.arange(1, deepest + 1), curves,
                 xlabel='layer (1 = first hidden)', logy=logy, title=f'{key} by layer (train)')
    figs.append(fig)
  return Claim(
      id='003a',
      claim='CDNV and NC2 fall progressively from the first layer to the last (a plateau in '
            'the middle, a renewed fall at the end); past the plateau extra layers add little '
            'test accuracy; per-layer linear-probe accuracy rises along the same path.',
      paper='Fig 1: ResNet-18 to -152 on CIFAR-10/100, ImageNet (e.g. ResNet-50/101/152: '
            '95.55 / 95.58 / 95.58% on CIFAR-10).',
      setting=config.setting + f' Depths: {", ".join(names)}; probes on '
              f'{config.probe_examples} training / {config.probe_test_examples} test images.',
      criterion=(f"At every depth Spearman(layer, CDNV) <= {c['progressive_rho_max']} and "
                 f"Spearman(layer, probe accuracy) >= {c['probe_rho_min']}; the deepest model's "
                 f"test accuracy exceeds the second deepest by <= {c['depth_gain_max']}. The "
                 "plateau is reported (the CDNV curves), not tested."),
      verdict=verdict(checks),
      evidence=dict(checks=checks, test_accuracy_by_depth=dict(zip(names, accs)),
                    **per),
      figures=figs)


def _claim_003b(config, workdir, r) -> Claim:
  c = CRITERIA
  rates = list(config.noise_rates)
  mean = {rate: np.mean([r[f'noise{rate:g}_seed{s}']['final']['cdnv'] for s in config.seeds], 0)
          for rate in rates}
  ratio = {rate: np.mean([r[f'noise{rate:g}_seed{s}']['final']['memorization_ratio']
                          for s in config.seeds], 0) for rate in rates}
  layers = r[f'noise{rates[0]:g}_seed{config.seeds[0]}']['final']['layers']
  lifted = [bool(all(mean[a][i] < mean[b][i] for a, b in zip(rates, rates[1:])))
            for i in range(len(layers))]
  above = {rate: [layers[i] for i in np.flatnonzero(ratio[rate] > 1)] for rate in rates if rate}
  n = len(layers)
  checks = dict(
      curves_lifted_with_noise=np.mean(lifted) >= c['lifted_fraction_min'],
      ratio_below_1_except_last_layers=all(
          all(layers.index(l) >= n // 2 for l in above[rate]) for rate in above))
  figs = ['003b_cdnv_by_layer.png', '003b_memorization_ratio.png']
  plots.curves(os.path.join(workdir, figs[0]), np.arange(1, n + 1),
               {f'noise {rate:g}': mean[rate] for rate in rates}, xlabel='layer', logy=True,
               title='CDNV (noisy training labels) by layer')
  plots.curves(os.path.join(workdir, figs[1]), np.arange(1, n + 1),
               {f'noise {rate:g}': ratio[rate] for rate in rates if rate}, xlabel='layer',
               title='memorization ratio: CDNV(clean labels) / CDNV(noisy labels)')
  return Claim(
      id='003b',
      claim='With label noise the layer-wise CDNV curves keep their shape but are lifted as '
            'the noise rate grows; the memorization ratio stays below 1 except in the last '
            'few layers.',
      paper='Figs 2 and 6: ResNets on CIFAR-10N (human noisy labels) and CIFAR-10 with '
            'random labels.',
      setting=config.setting + f' Symmetric label noise rates {tuple(rates)}, seeds '
              f'{tuple(config.seeds)}; CDNV of the training images against the noisy and the '
              'clean labels.',
      criterion=(f"Over seed means: at >= {c['lifted_fraction_min']:.0%} of the layers CDNV "
                 "increases strictly with the noise rate; for every rate > 0, the layers with "
                 "memorization ratio > 1 are all in the second half of the network."),
      verdict=verdict(checks),
      evidence=dict(checks=checks, layers=layers,
                    cdnv={f'{k:g}': v.tolist() for k, v in mean.items()},
                    memorization_ratio={f'{k:g}': v.tolist() for k, v in ratio.items()},
                    layers_above_1={f'{k:g}': v for k, v in above.items()},
                    lifted_layers=lifted),
      figures=figs)


def _claim_003c(config, workdir, r) -> Claim:
  sevs = list(config.severities)
  layers = r[f'corrupt{sevs[0]}']['final']['layers']
  n = len(layers)
  ratio = {s: r[f'corrupt{s}']['final']['memorization_ratio'] for s in sevs}
  above = {s: [layers[i] for i in np.flatnonzero(np.asarray(ratio[s]) > 1)] for s in sevs}
  noise_above = {}
  for rate in config.noise_rates:
    if rate:
      m = np.mean([r[f'noise{rate:g}_seed{s}']['final']['memorization_ratio']
                   for s in config.seeds], 0)
      noise_above[f'{rate:g}'] = int(np.sum(m > 1))
  checks = dict(
      above_1_only_in_last_layers=all(
          all(layers.index(l) >= n // 2 for l in above[s]) for s in sevs),
      some_layer_above_1=any(above[s] for s in sevs) or None,
      more_layers_than_label_noise=(max(len(v) for v in above.values()) >
                                    max(noise_above.values())))
  fig = '003c_memorization_ratio.png'
  plots.curves(os.path.join(workdir, fig), np.arange(1, n + 1),
               {f'severity {s}': ratio[s] for s in sevs}, xlabel='layer',
               title=f'CDNV(clean images) / CDNV(corrupted images), trained on {config.corruption}')
  return Claim(
      id='003c',
      claim='Trained on corrupted inputs, the memorization ratio (CDNV on the clean versions / '
            'CDNV on the corrupted training data) rises above 1 only in the last layers, with '
            'more such layers than under label noise.',
      paper='Sec 4.2, Figs 8-9: ResNets on CIFAR-10-C (Gaussian noise, levels 0-3).',
      setting=config.setting + f' Trained on {config.corruption} at severities {tuple(sevs)} '
              '(data.corrupt, CIFAR-10-C-style levels); the clean copies are the same images.',
      criterion=('For every severity the layers with memorization ratio > 1 are all in the '
                 'second half of the network, at least one layer exceeds 1 for some severity '
                 '(else inconclusive), and the most such layers over severities exceeds the '
                 'most over the label-noise rates of 003b.'),
      verdict=verdict(checks),
      evidence=dict(checks=checks, layers=layers, memorization_ratio=ratio,
                    layers_above_1=above, label_noise_layers_above_1=noise_above),
      figures=[fig])


def _claim_003d(config, workdir, r) -> Claim:
  c = CRITERIA
  names = list(config.sources)
  layers = r[f'source_{names[0]}']['final']['layers']
  cdnv = np.array([r[f'source_{n}']['final']['cdnv_target'] for n in names])  # [S, L]
  acc = np.array([r[f'source_{n}']['final']['target_probe_accuracy'] for n in names])
  spread = np.std(np.log(cdnv), axis=0)  # Spread across source models, per layer.
  rho = spearman(cdnv.ravel(), acc.ravel())
  checks = dict(diverge_with_depth=bool(spread[-1] > spread[0]),
                collapse_predicts_probe=rho <= c['domain_rho_max'])
  figs = ['003d_target_cdnv.png', '003d_target_probe.png', '003d_cdnv_vs_probe.png']
  x = np.arange(1, len(layers) + 1)
  plots.curves(os.path.join(workdir, figs[0]), x, dict(zip(names, cdnv)), xlabel='layer',
               logy=True, title='CDNV on the target domain, by source model')
  plots.curves(os.path.join(workdir, figs[1]), x, dict(zip(names, acc)), xlabel='layer',
               title='target linear-probe accuracy, by source model')
  plots.scatter(os.path.join(workdir, figs[2]), {n: (cdnv[i], acc[i]) for i, n in enumerate(names)},
                xlabel='target CDNV', ylabel='target probe accuracy', logx=True,
                title='every (source model, layer)')
  return Claim(
      id='003d',
      claim='Under domain shift, models pretrained on different source domains show similar '
            'progressive collapse on the target in early layers and diverge in deeper ones; '
            'layers and models with stronger collapse on the target give higher linear-probe '
            'accuracy on it with little target data.',
      paper='Sec 4.3, Fig 3: ResNet-50 on Office-Home (Art, Clipart, Product, Real-World).',
      setting=config.setting_domain,
      criterion=(f"The spread (std of log CDNV across source models) on the target is larger at "
                 f"the last layer than at the first; Spearman(target CDNV, target probe "
                 f"accuracy) over every (model, layer) <= {c['domain_rho_max']}."),
      verdict=verdict(checks),
      evidence=dict(checks=checks, layers=layers, sources=names,
                    target_cdnv=dict(zip(names, cdnv.tolist())),
                    target_probe_accuracy=dict(zip(names, acc.tolist())),
                    spread_by_layer=spread.tolist(), spearman=rho),
      figures=figs)


def analyze(config, workdir: str, records: dict) -> list[Claim]:
  say('analysing the runs into claims 003a-003d')
  return [f(config, workdir, records) for f in
          (_claim_003a, _claim_003b, _claim_003c, _claim_003d)]
