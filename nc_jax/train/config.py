"""The trainer's config: every key, its default, and validation.

Study configs (``configs/*.py``) start from `default_config` and override;
`check_config` rejects keys that are not declared here (typos) and values out
of range, so a misspelt key fails at start-up rather than being ignored.
`read_config` reads a run's ``config.json`` back as such a config.
"""

from __future__ import annotations

import difflib
import json
import os
from collections.abc import Mapping
from typing import Any

import ml_collections

LOSSES = ('ce', 'mse', 'supcon')
OPTIMIZERS = ('sgd', 'adamw')
SCHEDULES = ('cosine', 'step', 'constant', 'exponential')
FINETUNE = ('', 'linear_probe', 'layer', 'scl', 'full')
ON_CONFIG_CHANGE = ('error', 'restart', 'continue')
# Keys that may differ when a run is resumed: they change how long or how
# verbosely it runs, not what it computes up to the checkpoint.
RESUME_SAFE_KEYS = ('num_epochs', 'stop_after_epochs', 'progress_bar',
                    'log_every_steps', 'plots', 'keep_checkpoints',
                    'checkpoint_every', 'eval_batch_size', 'on_config_change',
                    'data_loader', 'grain_workers', 'grain_buffer')


LABEL_SETS = ('clean', 'fine', 'coarse')
EVAL_SET_KEYS = ('dataset', 'split', 'label_map', 'corruption', 'severity',
                 'examples', 'like_train')


def default_config() -> ml_collections.ConfigDict:
  """Every config key the trainer reads, with its default.

  Study configs start from this and override; `check_config` rejects keys
  that are not here (typos) and values out of range.
  """
  c = ml_collections.ConfigDict()
  c.seed = 0  # Parameters, data order, subsets, augmentation.

  # Data (`nc_jax.data.load`).
  c.dataset = 'digits'
  c.data_dir = ''  # '' = the data root ($NC_JAX_DATA_DIR or ../shared/data).
  c.data_options = ml_collections.ConfigDict()  # e.g. image_size=(224, 224).
  c.train_split = 'train'
  c.test_split = 'test'
  c.train_examples_per_class = 0  # > 0: a class-balanced subset.
  # 'in_memory' (decode whole splits, index arrays) | 'grain' (image folders
  # are opened lazily and decoded on access; training batches stream through
  # a grain DataLoader with grain_workers processes, in the same order).
  c.data_loader = 'in_memory'
  c.grain_workers = 0
  c.grain_buffer = 2
  # The task's labels, on every split (the originals are kept for
  # `eval_label_sets`): '' | 'mod:<C~>' (y mod C~, originals -> 'fine') |
  # 'superclass:<map>' (data.SUPERCLASS_MAPS) | 'split:<b>' (each class split
  # at random into b, seeded by `seed`; originals -> 'coarse') |
  # 'classes:<i,j,..>' (keep those classes, relabelled 0..); chain with '|'.
  c.label_map = ''
  c.label_noise = 0.0  # Symmetric noise on the TRAINING labels only.
  # Corrupted inputs on every split of the task (data.corrupt: 'gaussian_noise'
  # | 'gaussian_blur', severity 1-5, seeded); clean copies can be evaluated
  # through eval_sets (e.g. dict(like_train=True) is the training set clean).
  c.corruption = ''
  c.corruption_severity = 0
  # Collapse is also measured against these label sets of the same features
  # ('clean', 'fine', 'coarse': data.Dataset fields), logged with
  # "labels": <name>; the default records have "labels": "task".
  c.eval_label_sets = ()
  # Extra evaluation sets tracked like train and test: name -> ConfigDict(
  # dataset='' (= config.dataset), split='test', label_map=None (= config's),
  # corruption='' | 'gaussian_noise' | 'gaussian_blur', severity=0,
  # examples=0 (> 0: a fixed random subset), like_train=False (True: the
  # training set itself, same examples and labels, before `corruption`)).
  c.eval_sets = ml_collections.ConfigDict()

  # Model (`nc_jax.models.create_model`; in_features / in_channels /
  # image_size are filled from the data unless given).
  c.model = 'mlp'
  c.model_kwargs = ml_collections.ConfigDict()
  # Initialise the parameters from another run (a workdir of this trainer):
  # parameters and batch statistics only, no optimiser state. 0 = its latest
  # checkpoint. Inputs are then normalised with that run's statistics.
  c.init_from = ''
  c.init_epoch = 0
  # Fine-tuning (`train.finetune`, paper 001 sec 3.3), with init_from: ''
  # (train every parameter of the model as built) | 'linear_probe' | 'layer'
  # | 'scl' | 'full'; 'layer' and 'scl' tune `finetune_block` (a feature
  # name). A new head for this data set's classes replaces the old one
  # unless the class counts match and finetune_new_head is False.
  c.finetune = ''
  c.finetune_block = ''
  c.finetune_new_head = True
  c.tracked_layers = ()  # () = every layer of models.feature_names(model);
  # 'penultimate' is always added (summary.json and NC3/NC4 read it).

  # Objective.
  c.loss = 'ce'  # 'ce' | 'mse' (one-hot) | 'supcon' (+ online linear probe).
  c.temperature = 1.0  # Softmax temperature tau of 'ce' (paper 000 sec. 6.3).
  c.label_smoothing = 0.0  # Smoothed targets of 'ce' and 'mse'.
  c.cosine_reg = 0.0  # lambda of the within-class cosine term (000 sec. 6.3).
  c.supcon_temperature = 0.1

  # Optimisation.
  c.optimizer = 'sgd'  # 'sgd' (coupled L2, as PyTorch) | 'adamw' (decoupled).
  c.learning_rate = 0.1  # Peak learning rate.
  c.momentum = 0.9  # SGD; 0 = plain SGD.
  c.nesterov = False
  c.adam_b1 = 0.9
  c.adam_b2 = 0.999
  c.weight_decay = 5e-4
  c.weight_decay_on = 'all'  # 'all' | 'kernels' (parameters with ndim >= 2).
  c.grad_clip_norm = 0.0  # > 0: clip the global gradient norm.
  c.schedule = 'cosine'  # 'cosine' (to 0) | 'step' | 'constant' | 'exponential'.
  c.warmup_epochs = 0.0  # Linear warm-up from warmup_init, then the schedule.
  c.warmup_init = 0.0  # Learning rate at the start of the warm-up.
  c.decay_rate = 0.975  # 'exponential': x decay_rate per epoch (000 Fig 3).
  c.step_epochs = ()  # 'step': epochs at which the rate is multiplied by
  c.step_factor = 0.1  # step_factor.
  c.batch_size = 128  # Global batch (divisible by the number of devices).
  c.num_epochs = 100
  c.stop_at_train_loss = 0.0  # > 0: stop after the first epoch whose mean
  # training loss is below this (paper 002 Fig 4); the run then counts as done.

  # On-device augmentation of uint8 images (train only).
  c.crop_padding = 0  # > 0: random crop after zero-padding by this many px.
  c.flip = False  # Random horizontal flip.
  c.augment_noise = 0.0  # > 0: Gaussian noise of this std on [0, 1] inputs.
  # Adversarial training (paper 001 Fig 5): train on L-inf perturbations of
  # radius adversarial_eps in [0, 1] pixel units, by FGSM (adversarial_steps
  # = 1) or PGD (> 1 steps of 2.5 eps / steps, from a random start).
  c.adversarial_eps = 0.0
  c.adversarial_steps = 1

  # Evaluation and collapse tracking.
  c.eval_every = 1  # Epochs; epoch 0 and the last epoch are always evaluated.
  c.eval_batch_size = 1000
  c.eval_train_examples = 0  # > 0: evaluate a fixed random train subset,
  c.eval_test_examples = 0  # and test subset (image folders are sorted by
  # class, so a slice like 'test[:1000]' would hold one class).
  c.track_collapse = True  # False: accuracy and loss only.
  # Per-class scatter at 'penultimate': adds numerical_rank, at C x p^2
  # memory and ~10x the pooled update every other layer uses (C = 10).
  c.numerical_rank = False

  # Checkpoints, logging.
  c.checkpoint_every = 1  # Epochs; the last epoch is always saved.
  c.checkpoint_init = False  # Also save the initialisation (epoch 0).
  c.checkpoint_epochs = ()  # Also save these epochs (analyses read them back;
  # raise keep_checkpoints so that they are kept).
  c.keep_checkpoints = 2
  c.log_every_steps = 50  # Progress-bar refresh (a host sync).
  c.progress_bar = True
  c.plots = True
  c.stop_after_epochs = 0  # > 0: return after this many epochs of this call,
  # as if killed (no extra checkpoint, no summary): tests resume with it.
  # Rerunning into a workdir whose config.json differs (other than
  # RESUME_SAFE_KEYS): 'error' (refuse, naming the keys), 'restart' (delete
  # the old run's outputs and start afresh), 'continue' (resume anyway).
  c.on_config_change = 'error'
  return c


def check_config(config: ml_collections.ConfigDict) -> None:
  """Raises ValueError for unknown or missing keys and invalid values."""
  ref = default_config()
  unknown = sorted(set(config.keys()) - set(ref.keys()))
  if unknown:
    hints = {k: difflib.get_close_matches(k, ref.keys(), n=1) for k in unknown}
    hints = ', '.join(f'{k!r}' + (f' (did you mean {h[0]!r}?)' if h else '')
                      for k, h in hints.items())
    raise ValueError(f'unknown config keys: {hints}')
  missing = sorted(set(ref.keys()) - set(config.keys()))
  if missing:
    raise ValueError(f'config lacks keys {missing}; start configs from '
                     'nc_jax.train.default_config()')
  for key, choices in (('loss', LOSSES), ('optimizer', OPTIMIZERS),
                       ('schedule', SCHEDULES), ('finetune', FINETUNE),
                       ('on_config_change', ON_CONFIG_CHANGE),
                       ('data_loader', ('in_memory', 'grain')),
                       ('weight_decay_on', ('all', 'kernels'))):
    if config[key] not in choices:
      raise ValueError(f'config.{key}={config[key]!r}; choose from {choices}')
  for key in ('batch_size', 'num_epochs', 'eval_every', 'eval_batch_size',
              'log_every_steps', 'keep_checkpoints'):
    if config[key] < 1:
      raise ValueError(f'config.{key} must be >= 1, got {config[key]}')
  for key in ('temperature', 'learning_rate', 'supcon_temperature'):
    if config[key] <= 0:
      raise ValueError(f'config.{key} must be > 0, got {config[key]}')
  if not 0 <= config.label_smoothing < 1:
    raise ValueError('config.label_smoothing must be in [0, 1)')
  if config.finetune and not config.init_from:
    raise ValueError(f'config.finetune={config.finetune!r} needs '
                     'config.init_from (the pretrained run\'s workdir)')
  if config.finetune in ('layer', 'scl') and not config.finetune_block:
    raise ValueError(f'config.finetune={config.finetune!r} needs '
                     'config.finetune_block (a feature name, e.g. layer2)')
  if config.corruption and not 1 <= config.corruption_severity <= 5:
    raise ValueError('config.corruption needs corruption_severity in 1..5, got '
                     f'{config.corruption_severity}')
  unknown = sorted(set(config.eval_label_sets) - set(LABEL_SETS))
  if unknown:
    raise ValueError(f'config.eval_label_sets {unknown}: choose from '
                     f'{LABEL_SETS}')
  for name, spec in config.eval_sets.items():
    extra = sorted(set(spec.keys()) - set(EVAL_SET_KEYS))
    if extra:
      raise ValueError(f'config.eval_sets.{name}: unknown keys {extra}; '
                       f'known: {EVAL_SET_KEYS}')
    if name in ('train', 'test'):
      raise ValueError(f'config.eval_sets.{name}: train and test are always '
                       'evaluated; choose another name')
  for part in filter(None, config.label_map.split('|')):
    kind, _, arg = part.partition(':')
    if kind not in ('mod', 'superclass', 'split', 'classes') or not arg:
      raise ValueError(f'config.label_map={config.label_map!r}; use '
                       "'mod:<C>', 'superclass:<map>', 'split:<b>' or "
                       "'classes:<i,j,...>', chained with '|'")
  if config.loss == 'supcon' and not (config.crop_padding or config.flip or
                                      config.augment_noise):
    raise ValueError("loss='supcon' contrasts two augmented views: set "
                     'crop_padding, flip or augment_noise (without them the two '
                     'views are identical)')
  if config.adversarial_eps < 0 or config.adversarial_steps < 1:
    raise ValueError('config.adversarial_eps must be >= 0 and adversarial_steps '
                     '>= 1')
  if config.loss == 'supcon' and not config.model_kwargs.get('projection'):
    raise ValueError("loss='supcon' needs a projection head: set "
                     "config.model_kwargs.projection = 'mlp' or 'linear'")


def config_from_dict(raw: Mapping[str, Any]) -> ml_collections.ConfigDict:
  """A trainer config from a config.json dict (lists back to tuples)."""

  def convert(v):
    if isinstance(v, Mapping):
      return ml_collections.ConfigDict({k: convert(x) for k, x in v.items()})
    if isinstance(v, list):
      return tuple(convert(x) for x in v)
    return v

  config = default_config()
  with config.unlocked():
    for key, value in raw.items():
      if key in config and isinstance(config[key], ml_collections.ConfigDict):
        config[key] = convert(value) if value else ml_collections.ConfigDict()
      else:
        config[key] = convert(value)
  check_config(config)
  return config


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """A trainer run's ``config.json`` as a trainer config."""
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path} does not exist: {workdir} is not a '
                            'trainer run')
  with open(path) as f:
    return config_from_dict(json.load(f))
