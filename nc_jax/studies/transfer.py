"""Transfer (papers 000, 001): pretrain, probe the frozen layers, fine-tune.

Every training here is the nc_jax trainer: the pretraining run, and each
fine-tuning variant as a trainer run with ``init_from`` = the pretraining
run and ``finetune`` = the variant (`nc_jax.train.finetune`), so all of them
resume, checkpoint and log the same way.

`layerwise_probes` gives, per layer of a trained run on a downstream data
set: the L-BFGS probe accuracy and the downstream collapse (NC1, VCI) of the
frozen features. `transfer_study` (``experiments/transfer.py``) runs the
whole pipeline as a sweep (`sweep.run_all`: finished runs are skipped).

References:
  Paper 000 sec 6.3 (L-BFGS probes, MLOG); paper 001 secs 3.2-3.3
  (downstream NC1 vs transfer accuracy, layer / SCL / full fine-tuning);
  SPEC.md "Transfer (000, 001)".
"""

from __future__ import annotations

import json
import os
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


def layerwise_probes(run_dir: str, downstream, probe_cfg, *,
                     epoch: int | None = None) -> dict[str, dict[str, float]]:
  """{layer: probe_top1, probe_l2, downstream_nc1, downstream_vci} of a run.

  Args:
    run_dir: a trainer run (the pretrained model).
    downstream: a trainer config naming the downstream data (its dataset,
      subset and label map; its model keys are ignored).
    probe_cfg: ``l2_grid_size``, ``l2_min``, ``l2_max``, ``val_fraction``,
      ``max_iters``.
    epoch: the checkpoint (default: the latest).
  """
  down_train, down_test = input_lib.load_data(downstream)
  model = RunDir(run_dir).model(epoch)
  layers = tuple(k for k in models.feature_names(model) if k != 'projection')
  out = probe_layers(run_dir, down_train, down_test, probe_cfg, layers=layers,
                     seed=downstream.seed, batch_size=downstream.eval_batch_size, epoch=epoch)
  for layer, r in out.items():
    say(f"probe {layer}: {r['probe_top1']:.4f} (downstream nc1 "
        f"{r['downstream_nc1']:.4g})")
  return out


def finetune_config(downstream: ml_collections.ConfigDict, pretrain_dir: str,
                    variant: str, block: str = '') -> ml_collections.ConfigDict:
  """The trainer config of one fine-tuning variant from ``pretrain_dir``."""
  return sweep.with_overrides(downstream, dict(
      init_from=os.path.abspath(pretrain_dir), finetune=variant,
      finetune_block=block or ''))


def plan(config, workdir: str) -> list[sweep.Run]:
  """The pretraining run, the probe run, then one run per fine-tuning variant."""
  pdir = config.pretrain_workdir or sweep.run_dir(workdir, 'pretrain')
  runs = []
  if not config.pretrain_workdir:
    runs.append(sweep.Run('pretrain', sweep.train_run, config.pretrain,
                          seed=config.pretrain.seed))
  deps = () if config.pretrain_workdir else ('pretrain',)

  def probe(run, rdir):
    by_layer = layerwise_probes(pdir, config.downstream, config.probe)
    Workdir(rdir).write_summary(by_layer)
    return {f'{k}_{layer}': v for layer, r in by_layer.items()
            for k, v in r.items()}

  runs.append(sweep.Run('layerwise_probe', probe, seed=config.downstream.seed,
                        deps=deps))
  for variant in config.variants:
    for block in (config.blocks if variant in ('layer', 'scl') else ('',)):
      name = variant + (f'_{block}' if block else '')
      runs.append(sweep.Run(
          f'finetune_{name}', sweep.train_run,
          finetune_config(config.downstream, pdir, variant, block),
          seed=config.downstream.seed,
          overrides=dict(finetune=variant, finetune_block=block), deps=deps))
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
    Spearman / Pearson correlation, MLOG and each fine-tuning variant's test
    accuracy.
  """
  wd = Workdir(workdir)
  wd.write_config(config)
  records = sweep.run_all(plan(config, workdir), workdir, say=say)
  pdir = config.pretrain_workdir or sweep.run_dir(workdir, 'pretrain')
  pre_acc = RunDir(pdir).summary['test_accuracy']
  with open(os.path.join(sweep.run_dir(workdir, 'layerwise_probe'),
                         'summary.json')) as f:
    by_layer = json.load(f)
  layers = list(by_layer)
  acc = np.array([by_layer[k]['probe_top1'] for k in layers])
  x_nc1 = np.array([by_layer[k]['downstream_nc1'] for k in layers])
  plots.curves(wd.file('layerwise.png'), np.arange(len(layers)),
               {'probe top-1': acc, 'downstream NC1 / max': x_nc1 / x_nc1.max()},
               xlabel='layer (' + ', '.join(layers) + ')',
               title='Layer-wise linear probes (frozen features)')
  pen = by_layer['penultimate']['probe_top1']
  results = {'L-BFGS probe': pen}
  for name, r in records.items():
    if name.startswith('finetune_'):
      results[name.removeprefix('finetune_')] = r['final']['test_accuracy']
  plots.bars(wd.file('finetune.png'), results,
             title=f'{config.pretrain.dataset} -> {config.downstream.dataset}: '
                   'probe and fine-tuning')
  summary = dict(
      pretrain_test_accuracy=pre_acc,
      probe_top1_by_layer={k: by_layer[k]['probe_top1'] for k in layers},
      probe_l2_by_layer={k: by_layer[k]['probe_l2'] for k in layers},
      downstream_nc1_by_layer={k: by_layer[k]['downstream_nc1'] for k in layers},
      spearman_nc1_vs_probe=float(correlation.spearman(x_nc1, acc)),
      pearson_nc1_vs_probe=float(correlation.pearson(np.log(x_nc1), acc)),
      mlog=float(correlation.mlog(np.array([pen]), pre_acc)),
      finetune_test_accuracy=results)
  wd.write_summary(summary)
  return summary
