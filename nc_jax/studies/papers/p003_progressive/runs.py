"""Paper 003's runs: what is trained (`plan`) and what each run records.

Every run is a trainer run (`sweep.train`) of ``config.base`` with a group's
overrides and a seed, tagged for the claims (see the package docstring).
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


def _tracked_layers(run: RunDir) -> list[str]:
  """The tracked layers, input to output (no ``projection`` head)."""
  return [l for l in run.model_info['feature_dims'] if l != 'projection']


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

  ``data``: the probe's (train, test) data sets; None: a fixed random subset
  of ``config.probe_examples`` of the run's training images and its first
  ``config.probe_test_examples`` test images.
  """
  if data is None:
    tr, te = input_lib.load_data(tcfg)
    rng = np.random.default_rng(0)
    tr = tr.subset(np.sort(rng.choice(len(tr), min(len(tr), config.probe_examples), False)))
    data = tr, te.subset(np.arange(min(len(te), config.probe_test_examples)))
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


def depth_groups(config) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
  """003a's groups, shallow to deep: ``{group: (config overrides, recorded overrides)}``.

  MLP depths, then named models of one family (ResNet-18/34/50).
  """
  groups = {f'depth{d}': ({'model.kwargs.depth': d}, dict(depth=d)) for d in config.depths}
  groups.update({f'depth_{m}': ({'model.name': m}, dict(model=m))
                 for m in config.depth_models})
  return groups


def _per_seed(config, name: str, execute, over: Mapping[str, Any],
              overrides: Mapping[str, Any], tags: Mapping[str, Any]) -> list[sweep.Run]:
  """``<name>_seed<s>`` for every seed: ``config.base`` with ``over`` and the seed."""
  return [sweep.Run(f'{name}_seed{s}', execute,
                    sweep.with_overrides(config.base, {**over, 'seed': s}), seed=s,
                    overrides=dict(overrides), tags=dict(tags)) for s in config.seeds]


def plan(config, workdir: str) -> list[sweep.Run]:
  """The study's runs: every group (a depth, a noise rate, a severity, a source) x seeds."""
  del workdir
  b, t = config.base, config.target
  runs = []
  depth = sweep.train(keep=KEEP, then=_then(config, probe=True))
  for group, (over, recorded) in depth_groups(config).items():
    runs += _per_seed(config, group, depth, over, recorded,
                      {'kind': 'depth', 'group': group, 'model': b.model.name, **recorded})
  noise = sweep.train(keep=KEEP, then=_then(config))
  for rate in config.noise_rates:
    runs += _per_seed(config, f'noise{rate:g}', noise,
                      {'data.label_noise': rate, 'evals.label_sets': ('clean',)},
                      dict(label_noise=rate),
                      dict(kind='label_noise', label_noise=rate, model=b.model.name))
  corrupt = sweep.train(keep=KEEP, then=_then(config, extra_splits=('train_clean',)))
  for sev in config.severities:
    # Every training image, corrupted and clean: both CDNVs read the same images.
    runs += _per_seed(config, f'corrupt{sev}', corrupt,
                      {'data.corruption.name': config.corruption,
                       'data.corruption.severity': sev, 'evals.train_examples': 0,
                       'evals.sets.train_clean': dict(like_train=True)},
                      dict(corruption=config.corruption, severity=sev),
                      dict(kind='corruption', corruption=config.corruption, severity=sev))
  source = sweep.train(keep=KEEP, then=_then(config, target=True, extra_splits=('target',)))
  target = dict(dataset=config.domain_dataset, split='test',
                corruption=t.data.corruption.name, severity=t.data.corruption.severity,
                examples=config.probe_test_examples)
  for name, src in config.sources.items():
    # A source: the domain data set with its corruption (``config.sources``).
    runs += _per_seed(config, f'source_{name}', source,
                      {'data.name': config.domain_dataset,
                       'data.corruption.name': src.corruption,
                       'data.corruption.severity': src.corruption_severity,
                       'evals.sets.target': target},
                      src.to_dict(),
                      dict(kind='source', source=name, corruption=src.corruption,
                           severity=src.corruption_severity))
  return runs
