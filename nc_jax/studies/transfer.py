"""Transfer (papers 000, 001): the one pipeline, from a pretraining to a downstream task.

Paper 001's study (`nc_jax.studies.papers.p001_transfer`) and the generic
experiment (`transfer_study`, ``experiments/transfer.py``) build on:

- `transfer_layer`: the layer transfer reads, the encoder output;
- `layerwise_probes`: per layer of a trained run, on a downstream data set,
  the L-BFGS probe accuracy and the downstream collapse (NC1, VCI) of the
  frozen features;
- `finetune_run`: one fine-tuning variant of a pretraining as a trainer run
  (`finetune_config`: ``init.workdir`` = the pretraining, ``init.finetune`` =
  the variant, `nc_jax.train.finetune`), a `sweep.Run` tagged
  ``kind='finetune', variant=<variant>``, so it resumes, checkpoints and logs
  like every run;
- `nc1_transfer_spearman`: Spearman(downstream NC1, transfer accuracy) over
  layers or runs (001 Figs 4-6 find it negative);
- `finetune_figure`: the probe and the fine-tuning variants as bars;

`transfer_study` runs the whole pipeline as a sweep (`sweep.run_all`:
finished runs are skipped).

References:
  Paper 000 sec 6.3 (L-BFGS probes, MLOG); paper 001 secs 3.2-3.3
  (downstream NC1 vs transfer accuracy, layer / SCL / full fine-tuning);
  SPEC.md "Transfer (000, 001)".
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import ml_collections
import numpy as np

from nc_jax import models
from nc_jax import plots
from nc_jax.probes import correlation
from nc_jax.rundir import RunDir
from nc_jax.studies import sweep
from nc_jax.studies.common import probe_layers, say
from nc_jax.train import input as input_lib
from nc_jax.workdir import Workdir

BLOCK_VARIANTS = ('layer', 'scl')  # The fine-tuning variants that tune one block.


def transfer_layer(layers: Iterable[str]) -> str:
  """The layer transfer reads, the encoder output: ``'pre_head'`` when the
  model has classifier-side head layers (001b), else ``'penultimate'``."""
  return 'pre_head' if 'pre_head' in layers else 'penultimate'


def feature_layers(run_dir: str, epoch: int | None = None) -> tuple[str, ...]:
  """A run's feature layers from input to output, less SupCon's projection
  (never transferred)."""
  return tuple(k for k in models.feature_names(RunDir(run_dir).model(epoch))
               if k != 'projection')


def layerwise_probes(run_dir: str, downstream, probe_cfg, *,
                     layers: Sequence[str] | None = None,
                     epoch: int | None = None) -> dict[str, dict[str, float]]:
  """{layer: probe_top1, probe_mean_per_class, probe_l2, downstream_nc1,
  downstream_vci} of a run's frozen features (`common.probe_layers`).

  Args:
    run_dir: a trainer run (the pretrained model).
    downstream: a trainer config naming the downstream data (its ``data``
      group: data set, subset, label map; its model is ignored); its ``seed``
      seeds the probe's validation split, its ``evals.batch_size`` sizes the
      forward passes.
    probe_cfg: ``l2_grid_size``, ``l2_min``, ``l2_max``, ``val_fraction``,
      ``max_iters``.
    layers: the layers to probe (default: `feature_layers`).
    epoch: the checkpoint (default: the latest).
  """
  layers = feature_layers(run_dir, epoch) if layers is None else tuple(layers)
  down_train, down_test = input_lib.load_data(downstream)
  out = probe_layers(run_dir, down_train, down_test, probe_cfg, layers=layers,
                     seed=downstream.seed, batch_size=downstream.evals.batch_size,
                     epoch=epoch)
  for layer, r in out.items():
    say(f"probe {layer}: {r['probe_top1']:.4f} (downstream nc1 "
        f"{r['downstream_nc1']:.4g})")
  return out


def tuned_blocks(variant: str, blocks: Sequence[str]) -> tuple[str, ...]:
  """The blocks a variant is run with: ``blocks`` for `BLOCK_VARIANTS`, else ('',)."""
  return tuple(blocks) if variant in BLOCK_VARIANTS else ('',)


def finetune_config(finetune: ml_collections.ConfigDict, pretrain_dir: str,
                    variant: str, block: str = '', *,
                    seed: int | None = None) -> ml_collections.ConfigDict:
  """The trainer config of one fine-tuning variant from ``pretrain_dir``.

  ``block`` is the tuned block of `BLOCK_VARIANTS` (dropped for the others);
  ``seed`` replaces ``finetune.seed`` unless None.
  """
  over = {'init.workdir': os.path.abspath(pretrain_dir), 'init.finetune': variant,
          'init.finetune_block': block if variant in BLOCK_VARIANTS else ''}
  return sweep.with_overrides(finetune, over if seed is None else dict(over, seed=seed))


def finetune_run(name: str, finetune: ml_collections.ConfigDict, pretrain_dir: str,
                 variant: str, *, block: str = '', seed: int | None = None,
                 execute: Callable[[sweep.Run, str], Mapping[str, Any]] | None = None,
                 deps: Sequence[str] = (),
                 overrides: Mapping[str, Any] | None = None,
                 tags: Mapping[str, Any] | None = None) -> sweep.Run:
  """One fine-tuning variant of a pretraining as a trainer run (`finetune_config`).

  Args:
    name: the run's name in the sweep.
    finetune: the downstream trainer config (the model comes from the pretraining).
    pretrain_dir: the pretraining run's folder.
    variant, block, seed: as in `finetune_config`.
    execute: the executor (default ``sweep.train()``: the summary's scalars).
    deps: runs that must finish first (the pretraining, when the sweep has it).
    overrides: what the run records as its overrides (default: variant and block).
    tags: added to ``kind='finetune', variant=variant``.
  """
  config = finetune_config(finetune, pretrain_dir, variant, block, seed=seed)
  if overrides is None:
    overrides = {'init.finetune': variant, 'init.finetune_block': config.init.finetune_block}
  return sweep.Run(name, execute or sweep.train(), config, seed=config.seed,
                   overrides=dict(overrides), deps=tuple(deps),
                   tags=dict(kind='finetune', variant=variant, **(tags or {})))


def nc1_transfer_spearman(nc1: Sequence[Any], accuracy: Sequence[Any]) -> float:
  """Spearman(downstream NC1, transfer accuracy) over points (layers, runs);
  None counts as NaN (the correlation is then NaN)."""
  return float(correlation.spearman(np.asarray(nc1, float), np.asarray(accuracy, float)))


def finetune_figure(path: str, probe: Any, accuracy: Mapping[str, Any], *,
                    source: str, target: str) -> str:
  """Bars: the L-BFGS probe of the frozen features, then the fine-tuning
  variants' test accuracies (None plots as NaN)."""
  bars = {'L-BFGS probe\n(frozen)': probe, **accuracy}
  return plots.bars(path, {k: np.nan if v is None else v for k, v in bars.items()},
                    title=f'{source} -> {target}: probe and fine-tuning')


def plan(config, workdir: str) -> list[sweep.Run]:
  """The pretraining run, the probe run, then one run per fine-tuning variant and block."""
  pdir = config.pretrain_workdir or sweep.run_dir(workdir, 'pretrain')
  deps = () if config.pretrain_workdir else ('pretrain',)
  runs = [] if config.pretrain_workdir else [
      sweep.Run('pretrain', sweep.train(), config.pretrain, seed=config.pretrain.seed)]

  def probe(run, rdir):
    by_layer = layerwise_probes(pdir, config.downstream, config.probe)
    Workdir(rdir).write_summary(by_layer)
    return {f'{k}_{layer}': v for layer, r in by_layer.items()
            for k, v in r.items()}

  runs.append(sweep.Run('layerwise_probe', probe, seed=config.downstream.seed,
                        deps=deps))
  for variant in config.variants:
    for block in tuned_blocks(variant, config.blocks):
      runs.append(finetune_run(f'finetune_{variant}' + (f'_{block}' if block else ''),
                               config.downstream, pdir, variant, block=block, deps=deps))
  return runs


def transfer_study(config: ml_collections.ConfigDict,
                   workdir: str) -> dict[str, Any]:
  """Pretrain, layer-wise probes, fine-tuning variants; summary and figures.

  Args:
    config: see ``configs/transfer.py`` (``pretrain`` and ``downstream`` are
      trainer configs; ``variants``, ``blocks``, ``probe`` drive the rest).
    workdir: output folder (``runs/<name>/`` hold the runs).

  Returns:
    The summary: per-layer probe accuracies and downstream NC1, their
    Spearman / Pearson correlation, MLOG of the transfer layer's probe and
    each fine-tuning variant's test accuracy.
  """
  wd = Workdir(workdir)
  wd.write_config(config)
  records = sweep.run_all(plan(config, workdir), workdir, say=say)
  pdir = config.pretrain_workdir or sweep.run_dir(workdir, 'pretrain')
  pre_acc = RunDir(pdir).summary['test_accuracy']
  with open(os.path.join(sweep.run_dir(workdir, 'layerwise_probe'),
                         'summary.json')) as f:
    by_layer = json.load(f)
  layers = [k for k in feature_layers(pdir) if k in by_layer]  # Input to output.
  acc = np.array([by_layer[k]['probe_top1'] for k in layers])
  x_nc1 = np.array([by_layer[k]['downstream_nc1'] for k in layers])
  plots.curves(wd.file('layerwise.png'), np.arange(len(layers)),
               {'probe top-1': acc, 'downstream NC1 / max': x_nc1 / x_nc1.max()},
               xlabel='layer (' + ', '.join(layers) + ')',
               title='Layer-wise linear probes (frozen features)')
  probe = by_layer[transfer_layer(layers)]['probe_top1']
  finetuned = {name.removeprefix('finetune_'): r['final']['test_accuracy']
               for name, r in records.items() if name.startswith('finetune_')}
  finetune_figure(wd.file('finetune.png'), probe, finetuned,
                  source=config.pretrain.data.name, target=config.downstream.data.name)
  summary = dict(
      pretrain_test_accuracy=pre_acc,
      probe_top1_by_layer={k: by_layer[k]['probe_top1'] for k in layers},
      probe_l2_by_layer={k: by_layer[k]['probe_l2'] for k in layers},
      downstream_nc1_by_layer={k: by_layer[k]['downstream_nc1'] for k in layers},
      spearman_nc1_vs_probe=nc1_transfer_spearman(x_nc1, acc),
      pearson_nc1_vs_probe=float(correlation.pearson(np.log(x_nc1), acc)),
      mlog=float(correlation.mlog(np.array([probe]), pre_acc)),
      finetune_test_accuracy={'L-BFGS probe': probe, **finetuned})
  wd.write_summary(summary)
  return summary
