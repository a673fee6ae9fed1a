"""Paper 003's runs: what is trained (`plan`) and what each run records.

Every run is a trainer run (`sweep.train`) of ``config.base`` (the ResNets
of 003a: ``config.resnet``) with a group's overrides and a seed, tagged for
the claims (see the package docstring). Layers are read input to output
(`layer_order`).
After training, `analysis` reads the run's records (`RunDir`): per layer,
CDNV and NC2 on the training images at the last epoch and at
initialisation, and the memorization ratio; depth runs add a linear probe
on every layer's frozen features, source runs one on the target domain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from nc_jax import records
from nc_jax.rundir import RunDir
from nc_jax.studies import sweep
from nc_jax.studies.common import probe_layers
from nc_jax.train import input as input_lib

# What every run records besides its per-layer analysis (summary keys).
KEEP = ('train_accuracy', 'test_accuracy', 'train_loss')


def layer_order(name: str) -> tuple:
  """Sort key of a feature name, input to output: ``stem``, then ``layer<i>``
  (MLPs) or ``layer<s>.<b>`` (ResNet stage s, block b) by their numbers, then
  ``penultimate``. (``model.json`` stores the names sorted as text, which puts
  ``stem`` last and ``layer10`` before ``layer2``.)"""
  if name == 'stem':
    return (0,)
  if name == 'penultimate':
    return (2,)
  return (1, *(int(part) for part in name.removeprefix('layer').split('.')))


def _tracked_layers(run: RunDir) -> list[str]:
  """The tracked layers, input to output (no ``projection`` head)."""
  return sorted((l for l in run.model_info['feature_dims'] if l != 'projection'),
                key=layer_order)


def _per_layer(run: RunDir, layers: Sequence[str], epoch: int | None, split: str,
               key: str = 'cdnv', labels: str = records.TASK) -> list[Any]:
  """``key`` of each layer's record of a split and label set at ``epoch`` (None: the last)."""
  if epoch is None:
    at = run.last(split, labels=labels)
  else:
    at = {r['layer']: r for r in run.eval(split=split, labels=labels) if r['epoch'] == epoch}
  return [at[l][key] for l in layers]


def analysis(rdir: str, extra_splits: Sequence[str] = ()) -> dict[str, Any]:
  """Per-layer CDNV / NC2 at the last epoch and at initialisation (key suffix ``_init``).

  Also CDNV on ``extra_splits`` (``cdnv_<split>``) and the memorization ratio:
  CDNV against the clean labels over CDNV against the (noisy) training labels
  when the run evaluates the clean labels, else CDNV on ``train_clean`` (the
  training images without their corruption) over CDNV on the training images.
  """
  run = RunDir(rdir)
  layers = _tracked_layers(run)
  noisy = bool(run.eval(split='train', labels='clean'))
  out: dict[str, Any] = dict(layers=layers)
  for suffix, epoch in (('', None), ('_init', 0)):
    out['cdnv' + suffix] = _per_layer(run, layers, epoch, 'train')
    out['nc2_etf' + suffix] = _per_layer(run, layers, epoch, 'train', 'nc2_etf')
    if noisy:
      out['cdnv_clean_labels' + suffix] = _per_layer(run, layers, epoch, 'train',
                                                     labels='clean')
    for split in extra_splits:
      out[f'cdnv_{split}' + suffix] = _per_layer(run, layers, epoch, split)
    clean = out.get('cdnv_clean_labels' + suffix, out.get('cdnv_train_clean' + suffix))
    if clean is not None:
      out['memorization_ratio' + suffix] = [
          c / n for c, n in zip(clean, out['cdnv' + suffix])]
  return out


def _probe(config, rdir: str, tcfg, data=None) -> list[float]:
  """Linear-probe test accuracy of every layer's frozen features (layer order).

  ``data``: the probe's (train, test) data sets; None: fixed random subsets
  of ``config.probe_examples`` of the run's training images and of
  ``config.probe_test_examples`` of its test images (0: all of them; image
  folders are sorted by class, so never a slice).
  """
  if data is None:
    tr, te = input_lib.load_data(tcfg)
    rng = np.random.default_rng(0)
    pick = lambda ds, n: (ds.subset(np.sort(rng.choice(len(ds), n, False)))
                          if 0 < n < len(ds) else ds)
    data = pick(tr, config.probe_examples), pick(te, config.probe_test_examples)
  layers = _tracked_layers(RunDir(rdir))
  res = probe_layers(rdir, *data, config.probe, layers=layers, seed=0,
                     batch_size=tcfg.evals.batch_size)
  return [res[l]['probe_top1'] for l in layers]


def _then(config, *, probe: bool = False, target: bool = False,
          extra_splits: Sequence[str] = ()):
  """The analysis `sweep.train` runs after training (merged into the record)."""

  def then(run: sweep.Run, rdir: str) -> dict[str, Any]:
    out = analysis(rdir, extra_splits)
    if probe:
      out['probe_accuracy'] = _probe(config, rdir, run.config)
    if target:
      out['target_probe_accuracy'] = _probe(config, rdir, run.config,
                                            input_lib.load_data(config.target))
    return out

  return then


def depth_groups(config) -> dict[str, tuple[Any, dict[str, Any], dict[str, Any]]]:
  """003a's groups, shallow to deep within each family:
  ``{group: (base config, config overrides, tags)}``.

  The MLP depths (``config.base``, Fashion-MNIST: the per-layer-law control;
  they also evaluate the clean labels, so they serve as 003b's noise-free
  runs) and the named models of one family (``config.resnet``, the paper's
  ResNets: the claim's primary evidence).
  """
  groups = {f'depth{d}': (config.base,
                          {'model.kwargs.depth': d, 'evals.label_sets': ('clean',)},
                          dict(family='mlp', model=config.base.model.name, depth=d))
            for d in config.depths}
  groups.update({f'depth_{m}': (config.resnet, {'model.name': m},
                                dict(family='resnet', model=m))
                 for m in config.depth_models})
  return groups


def noise_nets(config) -> dict[str, dict[str, Any]]:
  """003b's networks: ``{net: config overrides}``, one MLP per ``config.noise_depths``
  (``{'base': {}}``, ``config.base`` as it is, when there are none)."""
  if not config.noise_depths:
    return {'base': {}}
  return {f'depth{d}': {'model.kwargs.depth': d} for d in config.noise_depths}


def noise_runs(study, net: str, rate: float) -> list[sweep.Result]:
  """The finished runs of ``net`` at noise ``rate``; at rate 0, 003a's MLP depth
  runs of that depth when the plan has them (the same training: `plan` does
  not run it twice)."""
  if not rate and net in depth_groups(study.config):
    return study.where(kind='depth', group=net)
  return study.where(kind='label_noise', net=net, label_noise=rate)


def _per_seed(config, name: str, execute, base, over: Mapping[str, Any],
              overrides: Mapping[str, Any], tags: Mapping[str, Any]) -> list[sweep.Run]:
  """``<name>_seed<s>`` for every seed: ``base`` with ``over`` and the seed."""
  return [sweep.Run(f'{name}_seed{s}', execute,
                    sweep.with_overrides(base, {**over, 'seed': s}), seed=s,
                    overrides=dict(overrides), tags=dict(tags)) for s in config.seeds]


def plan(config, workdir: str) -> list[sweep.Run]:
  """The study's runs: every group (a depth, a noise rate, a severity, a source) x seeds."""
  del workdir
  t = config.target
  runs = []
  depth = sweep.train(keep=KEEP, then=_then(config, probe=True))
  for group, (base, over, tags) in depth_groups(config).items():
    runs += _per_seed(config, group, depth, base, over, over,
                      {'kind': 'depth', 'group': group, **tags})
  noise = sweep.train(keep=KEEP, then=_then(config))
  trained_by_003a = depth_groups(config)
  for net, net_over in noise_nets(config).items():
    for rate in config.noise_rates:
      if not rate and net in trained_by_003a:
        continue  # 003a's run of this depth (`noise_runs`).
      runs += _per_seed(config, f'noise{rate:g}_{net}', noise, config.base,
                        {**net_over, 'data.label_noise': rate,
                         'evals.label_sets': ('clean',)},
                        dict(net_over, label_noise=rate),
                        dict(kind='label_noise', net=net, label_noise=rate,
                             model=config.base.model.name))
  corrupt = sweep.train(keep=KEEP, then=_then(config, extra_splits=('train_clean',)))
  for sev in config.severities:
    # Every training image, corrupted and clean: both CDNVs read the same images.
    runs += _per_seed(config, f'corrupt{sev}', corrupt, config.base,
                      {'data.corruption.name': config.corruption,
                       'data.corruption.severity': sev, 'evals.train_examples': 0,
                       'evals.sets.train_clean': dict(like_train=True)},
                      dict(corruption=config.corruption, severity=sev),
                      dict(kind='corruption', corruption=config.corruption, severity=sev))
  source = sweep.train(keep=KEEP, then=_then(config, target=True, extra_splits=('target',)))
  target = dict(dataset=t.data.name, split=t.data.test_split,
                corruption=t.data.corruption.name, severity=t.data.corruption.severity,
                examples=config.probe_test_examples, options=t.data.options.to_dict(),
                label_map='')
  for name, src in config.sources.items():
    # A source: the domain data set with its corruption (``config.sources``).
    runs += _per_seed(config, f'source_{name}', source, config.base,
                      {'data.name': config.domain_dataset,
                       'augment.crop_padding': 0, 'augment.flip': False,  # digits
                       'data.corruption.name': src.corruption,
                       'data.corruption.severity': src.corruption_severity,
                       'evals.sets.target': target},
                      src.to_dict(),
                      dict(kind='source', source=name, corruption=src.corruption,
                           severity=src.corruption_severity))
  return runs
