"""Paper 001's "what we ran": each claim's setting sentence, computed from the variant's config.

Composed from `nc_jax.studies.settings` and the study config's own keys, so a
``:runlocal`` report describes the runs it made.
"""

from __future__ import annotations

from nc_jax.studies import settings
from nc_jax.studies import sweep
from nc_jax.studies.papers.p001_transfer.plan import aug_overrides


def _supcon(config) -> str:
  """The SupCon runs' temperature, views and length (their loss group, `config.losses`)."""
  runs = [sweep.with_overrides(config.pretrain, sweep.dotted_overrides(tree))
          for tree in config.losses.values()]
  runs = [t for t in runs if t.loss.name == 'supcon']
  if not runs:
    return ''
  t = runs[0]
  return (f'SupCon: temperature {t.loss.kwargs.temperature:g}, two views of '
          f'{settings.augmentation(t)}, {settings.epochs(t.num_epochs)}, an online linear '
          'classifier')


def _target(name: str, t) -> str:
  d = t.data
  subset = f', {d.examples_per_class:,} per class' if d.examples_per_class else ''
  return (f'{name} ({settings.DATA_NAMES.get(d.name, d.name)}: probe fit on {d.train_split}'
          f'{subset}, tested on {d.test_split})')


def targets(config) -> str:
  """'fmnist_fine (...; the claims' target), mnist (...; reported)'."""
  return ', '.join(_target(n, t) + ('; the claims\' target' if n == config.primary else
                                    '; reported') for n, t in config.targets.items())


def _mse_rule(config) -> str:
  r = config.lr_rule
  return (f'MSE at the rate of {{{", ".join(f"{x:g}" for x in config.mse_lr_grid)}}} whose '
          f'pilot (seed {config.pilot_seed}, no head) ends lowest after {r.epochs} epochs among '
          'those whose training loss falls every epoch')


def setting_001a(config) -> str:
  p, q = config.pretrain, config.probe
  evals = (f'{settings.number(p.evals.train_examples)} training images'
           if p.evals.train_examples else 'the training set')
  return (f'{settings.model(p)} pretrained on {settings.data(p)}: {settings.optimizer(p)}, '
          f'{settings.augmentation(p)}; losses {", ".join(config.losses)}; {_mse_rule(config)}; '
          f'{_supcon(config)}; {settings.seeds(config.seeds)}. Source NC1 of the transfer layer '
          f'(pre_head with a head, else penultimate) on {evals}, at the end and at '
          f'initialisation. Transfer: L-BFGS linear probe ({q.l2_grid_size} L2 values in '
          f'[{q.l2_min:g}, {q.l2_max:g}], {q.val_fraction:.0%} held out) of the frozen '
          f'transfer-layer features on each target: {targets(config)}.')


def setting_001b(config) -> str:
  return (setting_001a(config) + f' Classifier-side head layers '
          f'{tuple(config.head_depths)} for CE and MSE, {settings.seeds(config.seeds)}; '
          'SupCon: linear (1 layer) vs MLP (2 layers) projection (the runs of 001a).')


def setting_001c(config) -> str:
  deep = sweep.with_overrides(config.pretrain, sweep.dotted_overrides(config.deep))
  ladder = '; '.join(f'{k} {step}: ' + settings.augmentation(sweep.with_overrides(
      config.pretrain, aug_overrides(config, k))) for k, step in enumerate(config.aug_ladder))
  eps = ', '.join(f'{e * 255:g}/255' for e in config.adv_eps if e)
  return (setting_001a(config) + f' Augmentation ladder (level k adds one step): {ladder} '
          f'(level {config.base_aug} is the CE model); PGD training ({config.adv_steps} steps) '
          f'at eps {eps} (pixels in [0, 1]); one deep network, {settings.model(deep)}, probed '
          f'at every layer on {config.primary}. Every pretraining for '
          f'{settings.seeds(config.seeds)}; the pooled Pearson r reads every seed as a point.')


def setting_001d(config) -> str:
  f = config.finetune
  return (f'From the CE pretraining of each of {settings.seeds(config.ft_seeds)} (see '
          f'001a): the head-only SGD probe, layer FT and SCL FT (identity skip, equal '
          f'widths) of each of the blocks {", ".join(config.ft_blocks)}, and full FT, each on '
          f'{settings.data(f)}: {settings.optimizer(f)}; tested on '
          f'{settings.test_data(f)}. The baseline: the L-BFGS probe of the same frozen '
          'features on the same images (001a\'s transfer on the claims\' target).')
