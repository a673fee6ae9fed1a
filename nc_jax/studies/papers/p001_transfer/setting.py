"""Paper 001's "what we ran": each claim's setting sentence, computed from the variant's config.

Composed from `nc_jax.studies.settings` and the study config's own keys, so a
``:runlocal`` report describes the runs it made.
"""

from __future__ import annotations

from nc_jax.studies import settings
from nc_jax.studies import sweep


def _supcon_temperature(config) -> str:
  """The SupCon runs' temperature(s) (their loss group, `config.losses`)."""
  losses = [sweep.with_overrides(config.pretrain, sweep.dotted_overrides(tree)).loss
            for tree in config.losses.values()]
  return ', '.join(f'{t:g}' for t in sorted({l.kwargs.temperature for l in losses
                                             if l.name == 'supcon'}))


def setting_001a(config) -> str:
  p, d, q = config.pretrain, config.downstream, config.probe
  evals = (f'{settings.number(p.evals.train_examples)} training images'
           if p.evals.train_examples else 'the training set')
  return (f'{settings.model(p)} pretrained on {settings.data(p)}: {settings.optimizer(p)}, '
          f'{settings.augmentation(p)}; losses {", ".join(config.losses)} (SupCon: temperature '
          f'{_supcon_temperature(config)}, two views, an online linear classifier); '
          f'{settings.seeds(config.seeds)}. Source NC1 of the transfer layer (pre_head with a '
          f'head, else penultimate) on {evals}, at the end and at initialisation. Transfer: '
          f'L-BFGS linear probe ({q.l2_grid_size} L2 values in [{q.l2_min:g}, {q.l2_max:g}], '
          f'{q.val_fraction:.0%} held out) of the frozen transfer-layer features on '
          f'{settings.data(d)}, tested on {settings.test_data(d)}.')


def setting_001b(config) -> str:
  return (setting_001a(config) + f' Classifier-side head layers '
          f'{tuple(config.head_depths)} for CE and MSE, {settings.seeds(config.seeds)}; '
          'SupCon: linear (1 layer) vs MLP (2 layers) projection (the runs of 001a).')


def setting_001c(config) -> str:
  deep = sweep.with_overrides(config.pretrain, sweep.dotted_overrides(config.deep))
  noise = (f' and pixel noise {config.noise_per_strength:g} k' if config.noise_per_strength
           else '')
  return (setting_001a(config) + f' Augmentation strengths k = '
          f'{tuple(config.aug_strengths)} (random crop padding k px{noise}; k = '
          f'{config.base_aug} is the CE model); FGSM training at eps {tuple(config.adv_eps)} '
          f'(pixels in [0, 1]); one deep network, {settings.model(deep)}, probed at every '
          f'layer. Each group for {settings.seeds(config.seeds)}: one Spearman correlation '
          'per seed.')


def setting_001d(config) -> str:
  f = config.finetune
  return (f'From the CE model of seed {config.seeds[0]} (see 001a): the linear probe (a new '
          f'head only), layer FT and SCL FT of block {config.ft_block} (SCL: identity skip, '
          f'equal widths), and full FT, each on {settings.data(f)}: {settings.optimizer(f)}; '
          f'{settings.seeds(config.seeds)}; test on {settings.test_data(f)}. The L-BFGS '
          'probe of the same frozen features (001a) is the head-only baseline\'s reference.')
