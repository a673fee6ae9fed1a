"""Paper 001's runs: what a config trains and probes (`plan`), each tagged by `coords`.

A pretraining is a trainer run on the source task, then (`sweep.train`'s
``then``) the source NC1 of its transfer layer and an L-BFGS probe of that
layer's frozen features on the downstream task (`transfer.layerwise_probes`);
the deep MLP is probed at every layer. The fine-tuning runs start from the CE
model of the first seed (`transfer.finetune_run`).
"""

from __future__ import annotations

from typing import Any

from nc_jax.rundir import RunDir
from nc_jax.studies import sweep
from nc_jax.studies import transfer
from nc_jax.studies.common import say

_SOURCE_KEEP = ('test_accuracy', 'train_accuracy', 'train_loss')  # From the trainer summary.


def coords(config, **over) -> dict[str, Any]:
  """A pretraining's tags: the base model (CE, no head, base augmentation, no
  adversary, the base network) with ``over`` changed."""
  return dict(dict(kind='pretrain', loss='ce', head_depth=0, aug=config.base_aug,
                   adv_eps=0.0, net='base'), **over)


def _source_nc1(run: RunDir, layer: str) -> dict[str, float | None]:
  """Train NC1 of ``layer`` at initialisation (epoch 0; None if not logged) and at the end."""
  epochs, nc1 = run.series('nc1', split='train', layer=layer)
  return dict(source_nc1_init=float(nc1[0]) if epochs[0] == 0 else None,
              source_nc1=float(nc1[-1]))


def _analysis(config, *, every_layer: bool = False):
  """``then`` of a pretraining: source NC1 and downstream probe (`transfer.layerwise_probes`)
  of the transfer layer; with ``every_layer``, of every layer too (``by_layer``)."""

  def then(run, rdir):
    rd = RunDir(rdir)
    layer = transfer.transfer_layer(rd.model_info['feature_dims'])
    probes = transfer.layerwise_probes(rdir, config.downstream, config.probe,
                                       layers=None if every_layer else [layer])
    rows = {l: dict(transfer=p['probe_top1'], downstream_nc1=p['downstream_nc1'],
                    **_source_nc1(rd, l)) for l, p in probes.items()}
    out = dict(layer=layer, **rows[layer])
    if every_layer:
      out['by_layer'] = rows
    say(f"{run.name}: source nc1 {out['source_nc1']:.4g}, transfer {out['transfer']:.4f}")
    return out

  return then


def _trained_params(run, rdir):
  return dict(trained_params=RunDir(rdir).summary['num_params'])


def _seeded(stem: str, seed: int, first: int) -> str:
  # The first seed keeps the name these runs had when they had one seed.
  return stem if seed == first else f'{stem}_seed{seed}'


def plan(config, workdir: str) -> list[sweep.Run]:
  """The study's runs (see the package docstring); fine-tuning reads from ``workdir``."""
  seeds = tuple(config.seeds)
  first = seeds[0]
  pretrain = sweep.train(keep=_SOURCE_KEEP, then=_analysis(config))
  runs = []

  def add(name, over, seed, execute=pretrain, **tags):
    runs.append(sweep.Run(name, execute,
                          sweep.with_overrides(config.pretrain, dict(over, seed=seed)),
                          seed=seed, overrides=dict(over), tags=coords(config, **tags)))

  losses = {loss: sweep.dotted_overrides(tree) for loss, tree in config.losses.items()}
  for loss, over in losses.items():
    for s in seeds:
      add(f'{loss}_seed{s}', over, s, loss=loss)
  for loss in ('ce', 'mse'):
    for depth in config.head_depths:
      if depth:
        for s in seeds:
          add(_seeded(f'{loss}_head{depth}', s, first),
              dict(losses[loss], **{'model.kwargs.head_depth': depth}), s, loss=loss,
              head_depth=depth)
  for k in config.aug_strengths:
    if k != config.base_aug:
      for s in seeds:
        add(_seeded(f'aug{k}', s, first),
            {'augment.crop_padding': k, 'augment.noise': config.noise_per_strength * k}, s,
            aug=k)
  for eps in config.adv_eps:
    if eps:
      for s in seeds:
        add(_seeded(f'adv{eps:g}', s, first), {'augment.adversarial_eps': eps}, s,
            adv_eps=eps)
  deep = sweep.train(keep=_SOURCE_KEEP, then=_analysis(config, every_layer=True))
  for s in seeds:
    add(_seeded('deep', s, first), sweep.dotted_overrides(config.deep), s, execute=deep,
        net='deep')
  src = f'ce_seed{first}'  # The FT source: the CE base run of the first seed.
  finetune = sweep.train(keep=_SOURCE_KEEP, then=_trained_params)
  for variant in config.variants:
    for s in seeds:
      runs.append(transfer.finetune_run(
          f'ft_{variant}_seed{s}', config.finetune, sweep.run_dir(workdir, src), variant,
          block=config.ft_block, seed=s, execute=finetune, deps=(src,),
          overrides={'init.finetune': variant}, tags=dict(source_seed=first)))
  return runs
