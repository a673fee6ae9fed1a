"""Paper 001's runs: what a config trains and probes (`plan`), each tagged by `coords`.

A pretraining is a trainer run on the source task, then (`sweep.train`'s
``then``) the source NC1 of its transfer layer and an L-BFGS probe of that
layer's frozen features on each downstream target (`transfer.layerwise_probes`);
the deep MLP is probed at every layer on the primary target. The MSE runs
train at the rate `lr_rule` chose from the pilots ``mse_lr_rule_lr<rate>``
(read when they start, `chosen_mse_rate`). The fine-tuning runs of seed s
start from the CE pretraining of seed s (`transfer.finetune_run`).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from typing import Any

from nc_jax.rundir import RunDir
from nc_jax.studies import sweep
from nc_jax.studies import transfer
from nc_jax.studies.common import say

_SOURCE_KEEP = ('test_accuracy', 'train_accuracy', 'train_loss')  # From the trainer summary.
_PROBED = ('transfer', 'downstream_nc1')  # What a probe adds per target.


def coords(config, **over) -> dict[str, Any]:
  """A pretraining's tags: the base model (CE, no head, the base augmentation
  level, no adversary, the base network) with ``over`` changed."""
  return dict(dict(kind='pretrain', loss='ce', head_depth=0, aug=config.base_aug,
                   adv_eps=0.0, net='base'), **over)


def aug_overrides(config, level: int) -> dict[str, Any]:
  """The trainer overrides of augmentation level ``level`` of ``config.aug_ladder``
  (each level adds its step to those before it)."""
  steps = config.aug_ladder[1:level + 1]
  v = config.aug_values
  return {'augment.crop_padding': v.crop_padding if 'crop' in steps else 0,
          'augment.flip': 'flip' in steps,
          'augment.jitter': v.jitter if 'jitter' in steps else 0.0,
          'augment.erase': v.erase if 'erase' in steps else 0.0}


# ---------------------------------------------------------------------------
# MSE's learning rate: a rule that reads only the source training.
# ---------------------------------------------------------------------------


def rule_name(rate: float) -> str:
  return f'mse_lr_rule_lr{rate:g}'


def _rule_pilot(run, rdir):
  """A pilot's training loss at initialisation and after each epoch (eval, train split);
  a pilot whose loss turns NaN/Inf (the trainer stops it) records NaN for the next epoch."""
  from nc_jax import train as trainer  # pylint: disable=g-import-not-at-top
  try:
    trainer.train_and_evaluate(run.config, rdir)
    diverged = False
  except FloatingPointError:  # A rate past stability: the rule rejects it.
    diverged = True
  epochs, loss = RunDir(rdir).series('loss', split='train', layer='penultimate')
  loss = [float(l) for l in loss] + ([math.nan] if diverged else [])
  return dict(learning_rate=float(run.config.optimizer.learning_rate),
              epochs=[int(e) for e in epochs], train_loss=loss, diverged=diverged)


def lr_rule(pilots: Mapping[float, Mapping[str, Any]],
            epochs: int) -> tuple[float | None, dict[float, bool]]:
  """Of the rates whose pilot lowers its training loss at each of its first ``epochs``
  epochs (every value finite), the one whose loss ends lowest (None if none).

  (The rule fixed first, the largest rate whose loss fell every epoch to at most half its
  value at initialisation, accepted a pilot stalled at the loss of predicting the class
  prior; see the package's `HISTORY`.)

  Args:
    pilots: {rate: a pilot's record, ``train_loss`` at epochs 0, 1, ... (NaN stored as
      'nan')}.
    epochs: epochs read after initialisation.

  Returns:
    (the chosen rate or None, {rate: whether its loss falls every epoch}).
  """
  ok, last = {}, {}
  for rate, rec in pilots.items():
    loss = [float(l) for l in rec['train_loss']][:epochs + 1]  # Stored NaN: 'nan'.
    ok[float(rate)] = bool(len(loss) == epochs + 1 and all(math.isfinite(l) for l in loss)
                           and all(b < a for a, b in zip(loss, loss[1:])))
    last[float(rate)] = loss[-1]
  passing = [r for r, good in ok.items() if good]
  return (min(passing, key=lambda r: (last[r], -r)) if passing else None), ok


def chosen_mse_rate(config, workdir: str) -> float:
  """`lr_rule` over the finished pilots in ``workdir``; the grid's smallest rate
  when no rate passes (the MSE runs' gates then say whether they trained)."""
  pilots = {r: sweep.read_run(workdir, rule_name(r))['final'] for r in config.mse_lr_grid}
  rate, _ = lr_rule(pilots, config.lr_rule.epochs)
  return float(min(config.mse_lr_grid) if rate is None else rate)


def at_rule_rate(config, execute):
  """``execute`` with the MSE rate `chosen_mse_rate` read when the run starts."""

  def run_it(run, rdir):
    rate = chosen_mse_rate(config, os.path.dirname(os.path.dirname(rdir)))
    at_rate = dataclasses.replace(run, config=sweep.with_overrides(
        run.config, {'optimizer.learning_rate': rate}))
    return dict(execute(at_rate, rdir), learning_rate=rate)

  return run_it


# ---------------------------------------------------------------------------
# A pretraining's analysis: source NC1 and the probes of each target.
# ---------------------------------------------------------------------------


def _source_nc1(run: RunDir, layer: str) -> dict[str, float | None]:
  """Train NC1 of ``layer`` at initialisation (epoch 0; None if not logged) and at the end."""
  epochs, nc1 = run.series('nc1', split='train', layer=layer)
  return dict(source_nc1_init=float(nc1[0]) if epochs[0] == 0 else None,
              source_nc1=float(nc1[-1]))


def _probe(rdir: str, target, probe_cfg, layers) -> dict[str, dict[str, float]]:
  probes = transfer.layerwise_probes(rdir, target, probe_cfg, layers=layers)
  return {l: dict(transfer=p['probe_top1'], downstream_nc1=p['downstream_nc1'])
          for l, p in probes.items()}


def _analysis(config, *, every_layer: bool = False):
  """``then`` of a pretraining: the transfer layer's source NC1 and its probe on
  every target (the primary's at the top level, all under ``targets``); with
  ``every_layer``, every layer on the primary target (``by_layer``)."""

  def then(run, rdir):
    rd = RunDir(rdir)
    layer = transfer.transfer_layer(rd.model_info['feature_dims'])
    targets = {name: _probe(rdir, t, config.probe, [layer])[layer]
               for name, t in config.targets.items()}
    out = dict(layer=layer, **_source_nc1(rd, layer), **targets[config.primary],
               targets=targets)
    if every_layer:
      rows = _probe(rdir, config.targets[config.primary], config.probe, None)
      out['by_layer'] = {l: dict(r, **_source_nc1(rd, l)) for l, r in rows.items()}
    say(f"{run.name}: source nc1 {out['source_nc1']:.4g}, transfer {out['transfer']:.4f}")
    return out

  return then


def _trained_params(run, rdir):
  return dict(trained_params=RunDir(rdir).summary['num_params'])


def pretrain_name(stem: str, seed: int) -> str:
  return f'{stem}_seed{seed}'


def _adv_stem(eps: float) -> str:
  return f'pgd{eps * 255:g}'  # eps in 1/255 units: pgd2 = 2/255.


def plan(config, workdir: str) -> list[sweep.Run]:
  """The study's runs (see the package docstring); fine-tuning reads from ``workdir``."""
  seeds = tuple(config.seeds)
  pretrain = sweep.train(keep=_SOURCE_KEEP, then=_analysis(config))
  losses = {loss: sweep.dotted_overrides(tree) for loss, tree in config.losses.items()}
  rule = [rule_name(r) for r in config.mse_lr_grid]
  runs = []

  def add(stem, over, seed, execute=pretrain, **tags):
    deps, recorded = (), dict(over)
    if tags.get('loss') == 'mse':
      execute, deps = at_rule_rate(config, execute), tuple(rule)
      # Planned at the grid's smallest rate; the rule's rate replaces it at the start
      # (recorded in the run's final numbers as learning_rate).
      over = dict(over, **{'optimizer.learning_rate': min(config.mse_lr_grid)})
      recorded['optimizer.learning_rate'] = 'the MSE rate rule (final: learning_rate)'
    runs.append(sweep.Run(pretrain_name(stem, seed), execute,
                          sweep.with_overrides(config.pretrain, dict(over, seed=seed)),
                          seed=seed, overrides=recorded, deps=deps,
                          tags=coords(config, **tags)))

  for rate, name in zip(config.mse_lr_grid, rule):
    over = dict(losses['mse'], **{'optimizer.learning_rate': rate,
                                  'stop_after_epochs': config.lr_rule.epochs,
                                  'evals.every': 1, 'seed': config.pilot_seed})
    runs.append(sweep.Run(name, _rule_pilot, sweep.with_overrides(config.pretrain, over),
                          seed=config.pilot_seed, overrides=over,
                          tags=dict(kind='lr_rule', learning_rate=rate)))
  for loss, over in losses.items():
    for s in seeds:
      add(loss, over, s, loss=loss)
  for loss in ('ce', 'mse'):
    for depth in config.head_depths:
      if depth:
        for s in seeds:
          add(f'{loss}_head{depth}', dict(losses[loss], **{'model.kwargs.head_depth': depth}),
              s, loss=loss, head_depth=depth)
  for level, step in enumerate(config.aug_ladder):
    if level != config.base_aug:
      for s in seeds:
        add(f'aug_{step}', aug_overrides(config, level), s, aug=level)
  for eps in config.adv_eps:
    if eps:
      for s in seeds:
        add(_adv_stem(eps), {'augment.adversarial_eps': eps,
                             'augment.adversarial_steps': config.adv_steps}, s, adv_eps=eps)
  deep = sweep.train(keep=_SOURCE_KEEP, then=_analysis(config, every_layer=True))
  for s in seeds:
    add('deep', sweep.dotted_overrides(config.deep), s, execute=deep, net='deep')
  for s in config.ft_seeds:  # 001d's pretrainings beyond the study's seeds.
    if s not in seeds:
      add('ce', losses['ce'], s, loss='ce')
  finetune = sweep.train(keep=_SOURCE_KEEP, then=_trained_params)
  for s in config.ft_seeds:
    src = pretrain_name('ce', s)
    for variant in config.variants:
      for block in transfer.tuned_blocks(variant, config.ft_blocks):
        runs.append(transfer.finetune_run(
            f'ft_{variant}' + (f'_{block}' if block else '') + f'_seed{s}', config.finetune,
            sweep.run_dir(workdir, src), variant, block=block, seed=s, execute=finetune,
            deps=(src,), overrides={'init.finetune': variant, 'init.finetune_block': block},
            tags=dict(source_seed=s, block=block)))
  return runs

