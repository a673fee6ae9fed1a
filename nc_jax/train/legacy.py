"""Configs of runs written before the config groups: the flat layout, mapped.

Until the config groups (`nc_jax.train.config`), a run's ``config.json`` was
one flat dict of 67 keys. `to_groups` maps such a dict onto the groups, so
that `read_config` reads old runs, fine-tuning starts from them and a run
started before the change resumes under its new-shape config (the mapping
gives the same optimiser, schedule and loss, so the checkpointed optimiser
state restores and the run continues as it would have).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nc_jax.train import groups

# Old flat key -> its dotted place in the groups (where one-to-one).
KEYS = {
    'dataset': 'data.name', 'data_dir': 'data.dir',
    'data_options': 'data.options', 'train_split': 'data.train_split',
    'test_split': 'data.test_split',
    'train_examples_per_class': 'data.examples_per_class',
    'label_map': 'data.label_map', 'label_noise': 'data.label_noise',
    'corruption': 'data.corruption.name',
    'corruption_severity': 'data.corruption.severity',
    'data_loader': 'data.loader.name', 'grain_workers': 'data.loader.workers',
    'grain_buffer': 'data.loader.buffer',
    'model_kwargs': 'model.kwargs',
    'init_from': 'init.workdir', 'init_epoch': 'init.epoch',
    'finetune': 'init.finetune', 'finetune_block': 'init.finetune_block',
    'finetune_new_head': 'init.new_head',
    'cosine_reg': 'loss.cosine_reg',
    'learning_rate': 'optimizer.learning_rate',
    'weight_decay': 'optimizer.weight_decay',
    'weight_decay_on': 'optimizer.weight_decay_on',
    'grad_clip_norm': 'optimizer.grad_clip_norm',
    'warmup_epochs': 'schedule.warmup_epochs',
    'warmup_init': 'schedule.warmup_init',
    'crop_padding': 'augment.crop_padding', 'flip': 'augment.flip',
    'augment_noise': 'augment.noise',
    'adversarial_eps': 'augment.adversarial_eps',
    'adversarial_steps': 'augment.adversarial_steps',
    'eval_every': 'evals.every', 'eval_batch_size': 'evals.batch_size',
    'eval_train_examples': 'evals.train_examples',
    'eval_test_examples': 'evals.test_examples',
    'track_collapse': 'evals.track_collapse',
    'numerical_rank': 'evals.numerical_rank',
    'tracked_layers': 'evals.layers', 'eval_label_sets': 'evals.label_sets',
    'eval_sets': 'evals.sets',
    'checkpoint_every': 'checkpoint.every', 'checkpoint_init': 'checkpoint.init',
    'checkpoint_epochs': 'checkpoint.epochs',
    'keep_checkpoints': 'checkpoint.keep',
    'log_every_steps': 'log.every_steps', 'progress_bar': 'log.progress_bar',
    'plots': 'log.plots',
    # The name keys of the groups (model, loss, optimizer, schedule were
    # strings) and the options of one choice, mapped in `to_groups`:
    'model': 'model.name', 'loss': 'loss.name', 'optimizer': 'optimizer.name',
    'schedule': 'schedule.name',
    'temperature': 'loss.kwargs.temperature',
    'label_smoothing': 'loss.kwargs.label_smoothing',
    'supcon_temperature': 'loss.kwargs.temperature',
    'momentum': 'optimizer.kwargs.momentum',
    'nesterov': 'optimizer.kwargs.nesterov',
    'adam_b1': 'optimizer.kwargs.b1', 'adam_b2': 'optimizer.kwargs.b2',
    'decay_rate': 'schedule.kwargs.decay_rate',
    'step_epochs': 'schedule.kwargs.epochs',
    'step_factor': 'schedule.kwargs.factor',
}
# Top-level keys that kept their name.
SAME = ('seed', 'batch_size', 'num_epochs', 'stop_at_train_loss',
        'stop_after_epochs', 'on_config_change')


def is_flat(raw: Mapping[str, Any]) -> bool:
  """Whether ``raw`` is a config in the flat layout (a string ``model``)."""
  return isinstance(raw.get('model'), str) or 'dataset' in raw


def to_groups(raw: Mapping[str, Any]) -> dict[str, Any]:
  """The grouped config dict of a flat one (keys it lacks keep defaults).

  Options of a choice the old run did not make are dropped: an Adam beta of
  an SGD run, the SupCon temperature of a CE run, the decay rate of a
  cosine schedule; SGD momentum 0 becomes None (no momentum buffer, as the
  old trainer built it).

  Raises:
    ValueError: a key the flat layout never had.
  """
  unknown = sorted(set(raw) - set(KEYS) - set(SAME))
  if unknown:
    raise ValueError(f'flat config with unknown keys {unknown}')
  raw = dict(raw)
  loss = raw.get('loss', 'ce')
  opt = raw.get('optimizer', 'sgd')
  sched = raw.get('schedule', 'cosine')
  keep = {  # option -> the choice it belongs to
      'temperature': loss == 'ce', 'label_smoothing': loss in ('ce', 'mse'),
      'supcon_temperature': loss == 'supcon',
      'momentum': opt == 'sgd', 'nesterov': opt == 'sgd',
      'adam_b1': opt == 'adamw', 'adam_b2': opt == 'adamw',
      'decay_rate': sched == 'exponential',
      'step_epochs': sched == 'step', 'step_factor': sched == 'step'}
  if opt == 'sgd' and not raw.get('momentum', 0.9):
    raw['momentum'] = None
  out: dict[str, Any] = {}
  for key, value in raw.items():
    if not keep.get(key, True):
      continue
    path = KEYS.get(key, key).split('.')
    node = out
    for p in path[:-1]:
      node = node.setdefault(p, {})
    node[path[-1]] = value
  # Options a flat config lacks: the old trainer's defaults, which are the
  # functions' own (plus SGD momentum 0.9, the old default_config's).
  built = dict(loss=groups.loss(loss),
               optimizer=groups.optimizer(opt, **(dict(momentum=0.9)
                                                   if opt == 'sgd' else {})),
               schedule=groups.schedule(sched))
  for group, defaults in built.items():
    kwargs = out.setdefault(group, {}).setdefault('kwargs', {})
    for k, v in defaults.kwargs.items():
      kwargs.setdefault(k, v)
  return out
