"""The trainer's config: every key, its default, and validation.

Study configs (``configs/*.py``) start from `default_config` and override;
`check_config` rejects keys that are not declared here (typos) and values out
of range, so a misspelt key fails at start-up rather than being ignored.
"""

from __future__ import annotations

import difflib

import ml_collections

LOSSES = ('ce', 'mse', 'supcon')
OPTIMIZERS = ('sgd', 'adamw')
SCHEDULES = ('cosine', 'step', 'constant')


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
  c.label_noise = 0.0  # Symmetric label noise on the training labels.

  # Model (`nc_jax.models.create_model`; in_features / in_channels /
  # image_size are filled from the data unless given).
  c.model = 'mlp'
  c.model_kwargs = ml_collections.ConfigDict()
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
  c.schedule = 'cosine'  # 'cosine' (to 0) | 'step' | 'constant'.
  c.warmup_epochs = 0.0  # Linear warm-up from 0, then the schedule.
  c.step_epochs = ()  # 'step': epochs at which the rate is multiplied by
  c.step_factor = 0.1  # step_factor.
  c.batch_size = 128  # Global batch (divisible by the number of devices).
  c.num_epochs = 100

  # On-device augmentation of uint8 images (train only).
  c.crop_padding = 0  # > 0: random crop after zero-padding by this many px.
  c.flip = False  # Random horizontal flip.

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
  c.keep_checkpoints = 2
  c.log_every_steps = 50  # Progress-bar refresh (a host sync).
  c.progress_bar = True
  c.plots = True
  c.stop_after_epochs = 0  # > 0: return after this many epochs of this call,
  # as if killed (no extra checkpoint, no summary): tests resume with it.
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
                       ('schedule', SCHEDULES),
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
  if config.loss == 'supcon' and not config.model_kwargs.get('projection'):
    raise ValueError("loss='supcon' needs a projection head: set "
                     "config.model_kwargs.projection = 'mlp' or 'linear'")

