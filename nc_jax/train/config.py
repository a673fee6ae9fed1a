"""The trainer's config, by concern: every key, its default, and validation.

A config is a tree of groups (the layout of big_vision's configs)::

  seed, batch_size, num_epochs, stop_at_train_loss, stop_after_epochs,
  on_config_change                     the run itself
  data        what is trained on        name, dir, options, splits, subset,
                                        label_map, label_noise, corruption,
                                        loader
  model       what is trained           name, kwargs (of the model class),
                                        compute_dtype
  init        where it starts           workdir (another run), epoch,
                                        finetune, finetune_block, new_head
  loss        the objective             name, kwargs (of the loss), cosine_reg
  optimizer   the update                name (an optax optimiser), kwargs,
                                        learning_rate, weight_decay,
                                        weight_decay_on, grad_clip_norm
  schedule    the learning rate         name, kwargs, warmup_epochs,
                                        warmup_init
  augment     training inputs           crop_padding, flip, noise, jitter, erase,
                                        adversarial_eps, adversarial_steps
  evals       collapse tracking         every, batch_size, train_examples,
                                        test_examples, track_collapse,
                                        numerical_rank, layers, label_sets,
                                        sets
  checkpoint  what is kept              every, init, epochs, keep
  log         what is shown, where      every_steps, progress_bar, plots, writers,
                                        profile_steps

An option of the loss, the optimiser or the schedule is a keyword argument of
the function the group names, checked against its signature: `loss`,
`optimizer` and `schedule` build a group with every keyword argument of that
function, so ``--config.optimizer.kwargs.nesterov=True`` overrides one from
the command line, and adding an option to a function adds no trainer key.

Resume safety, per group (`RESUME_SAFE`): a run may be resumed with another
``num_epochs``, ``stop_after_epochs``, ``on_config_change``, ``log``,
``checkpoint.every`` / ``keep``, ``evals.batch_size`` and ``data.loader``;
any other difference is refused (`nc_jax.train.resume.check_resume`).

`check_config` rejects undeclared keys at any depth (with a "did you mean"
hint) and invalid values, group by group. `read_config` reads a run's
``config.json`` back, mapping a run written before this layout
(`nc_jax.train.legacy`).
"""

from __future__ import annotations

import copy
import difflib
import json
import os
from collections.abc import Mapping
from typing import Any

import ml_collections

from nc_jax.train import legacy
from nc_jax.train import losses as losses_lib
from nc_jax.train import schedules as schedules_lib
from nc_jax.train.groups import (OPTIMIZER_OWN, check_kwargs, loss,  # pylint: disable=unused-import
                                 optimizer, optimizer_fn, schedule)

ConfigDict = ml_collections.ConfigDict

LOSSES = tuple(losses_lib.LOSSES)
SCHEDULES = tuple(schedules_lib.SCHEDULES)
FINETUNE = ('', 'linear_probe', 'layer', 'scl', 'full')
ON_CONFIG_CHANGE = ('error', 'restart', 'continue')
LOADERS = ('in_memory', 'grain')
COMPUTE_DTYPES = ('float32', 'bfloat16')
LABEL_SETS = ('clean', 'fine', 'coarse')
EVAL_SET_KEYS = ('dataset', 'split', 'label_map', 'corruption', 'severity',
                 'examples', 'like_train', 'options')
# Dotted keys (a group name: all of it) that may differ when a run is
# resumed: they change how long or how verbosely it runs, not what it
# computes up to the checkpoint.
RESUME_SAFE = ('num_epochs', 'stop_after_epochs', 'on_config_change', 'log',
               'checkpoint.every', 'checkpoint.keep', 'evals.batch_size',
               'data.loader')
def default_config() -> ConfigDict:
  """Every config key the trainer reads, with its default (see the module)."""
  c = ConfigDict()
  c.seed = 0  # Parameters, data order, subsets, augmentation.
  c.batch_size = 128  # Global batch (divisible by the number of devices).
  c.num_epochs = 100
  c.stop_at_train_loss = 0.0  # > 0: stop after the first epoch whose mean
  # training loss is below this (paper 002 Fig 4); the run then counts as done.
  c.stop_after_epochs = 0  # > 0: return after this many epochs of this call,
  # as if killed (no extra checkpoint, no summary): tests resume with it.
  # Rerunning into a workdir whose config.json differs (outside RESUME_SAFE):
  # 'error' (refuse, naming the keys), 'restart' (delete the old run's
  # outputs and start afresh), 'continue' (resume anyway).
  c.on_config_change = 'error'

  c.data = ConfigDict()  # `nc_jax.data.load`.
  c.data.name = 'digits'
  c.data.dir = ''  # '' = the data root ($NC_JAX_DATA_DIR or ../shared/data).
  # data.load kwargs, e.g. image_size=(224, 224); skip_damaged=True (image
  # folders: files that do not decode are left out, summary.json counts them).
  c.data.options = ConfigDict()
  c.data.train_split = 'train'
  c.data.test_split = 'test'
  c.data.examples_per_class = 0  # > 0: a class-balanced training subset.
  # The task's labels, on every split (the originals are kept for
  # evals.label_sets): '' | 'mod:<C~>' (y mod C~, originals -> 'fine') |
  # 'superclass:<map>' (data.SUPERCLASS_MAPS) | 'split:<b>' (each class split
  # at random into b, seeded by `seed`; originals -> 'coarse') |
  # 'classes:<i,j,..>' (keep those classes, relabelled 0..); chain with '|'.
  c.data.label_map = ''
  c.data.label_noise = 0.0  # Symmetric noise on the TRAINING labels only.
  # Corrupted inputs on every split of the task (data.corrupt: name
  # 'gaussian_noise' | 'gaussian_blur' | a domain shift 'invert' | 'rotate' |
  # 'cifar_background' (data.DOMAIN_SHIFT_LEVELS), severity 1-5, seeded); clean copies
  # can be evaluated through evals.sets (dict(like_train=True)).
  c.data.corruption = ConfigDict(dict(name='', severity=0))
  # 'in_memory' (decode whole splits, index arrays) | 'grain' (image folders
  # opened lazily; training batches stream through a grain DataLoader with
  # `workers` processes and `buffer` batches each, in the same order).
  c.data.loader = ConfigDict(dict(name='in_memory', workers=0, buffer=2))

  # `nc_jax.models.create_model`; in_features / in_channels / image_size are
  # filled from the data unless given in kwargs.
  # compute_dtype: what the forward and backward passes compute in
  # ('float32' | 'bfloat16', mixed precision on accelerators); parameters,
  # optimiser state, the loss and every collapse statistic stay float32.
  c.model = ConfigDict(dict(name='mlp', kwargs=ConfigDict(), compute_dtype='float32'))

  # Start from another run (a workdir of this trainer): its parameters and
  # batch statistics at `epoch` (0 = its latest checkpoint), its input
  # normalisation. `finetune` (paper 001 sec 3.3): '' (train every parameter
  # of the model as built) | 'linear_probe' | 'layer' | 'scl' | 'full';
  # 'layer' and 'scl' tune `finetune_block` (a feature name). A new head for
  # this data set's classes replaces the old one unless the class counts
  # match and new_head is False.
  c.init = ConfigDict(dict(workdir='', epoch=0, finetune='', finetune_block='',
                           new_head=True))

  c.loss = loss('ce')
  c.optimizer = optimizer('sgd', momentum=0.9)
  c.schedule = schedule('cosine')

  # On-device augmentation of uint8 images (training only): random crop
  # after zero-padding by crop_padding px, horizontal flip, Gaussian noise of
  # std `noise` on [0, 1] inputs, brightness / contrast jitter of strength
  # `jitter` (torchvision's ColorJitter(brightness=contrast=jitter)), random
  # erasing with probability `erase` (`input.augment`; paper 001's
  # augmentation ladder); adversarial training (paper 001 Fig 5) on
  # L-inf perturbations of radius adversarial_eps in [0, 1] pixel units, by
  # FGSM (adversarial_steps = 1) or PGD (> 1 steps of 2.5 eps / steps).
  c.augment = ConfigDict(dict(crop_padding=0, flip=False, noise=0.0, jitter=0.0,
                              erase=0.0, adversarial_eps=0.0, adversarial_steps=1))

  c.evals = ConfigDict()
  c.evals.every = 1  # Epochs; epoch 0 and the last epoch always.
  c.evals.batch_size = 1000
  c.evals.train_examples = 0  # > 0: evaluate a fixed random train subset,
  c.evals.test_examples = 0  # and test subset (image folders are sorted by
  # class, so a slice like 'test[:1000]' would hold one class).
  c.evals.track_collapse = True  # False: accuracy and loss only.
  # Per-class scatter at 'penultimate': adds numerical_rank, at C x p^2
  # memory and ~10x the pooled update every other layer uses (C = 10).
  c.evals.numerical_rank = False
  c.evals.layers = ()  # () = every layer of models.feature_names(model);
  # 'penultimate' is always added (summary.json and NC3/NC4 read it).
  # Collapse also against these label sets of the same features ('clean',
  # 'fine', 'coarse': data.Dataset fields), logged with "labels": <name>.
  c.evals.label_sets = ()
  # Extra evaluation sets tracked like train and test: name -> ConfigDict(
  # dataset='' (= data.name), split='test', label_map=None (= data's),
  # corruption='' | a data.corrupt kind, severity=0,
  # examples=0 (> 0: a fixed random subset), like_train=False (True: the
  # training images 'train' evaluates, same examples and labels, before the
  # corruption), options={} (data.load keywords over data.options, e.g.
  # dict(image_size=(20, 20), padding=4) for digits)).
  c.evals.sets = ConfigDict()

  # Saved every `every` epochs and at the last; `init`: also the
  # initialisation (epoch 0) and `epochs`: also these, both kept for good
  # (analyses read them back; orbax preservation policies); of the others,
  # the latest `keep`.
  c.checkpoint = ConfigDict(dict(every=1, init=False, epochs=(), keep=2))

  # Progress-bar refresh every `every_steps` steps (a host sync); `writers`:
  # where records go besides metrics.jsonl (`nc_jax.writers.WRITERS`:
  # 'tensorboard', 'wandb'); `profile_steps` > 0: a jax.profiler trace of that
  # many training steps (after the first, which compiles) and of the next
  # evaluation, under <workdir>/profile (XProf / TensorBoard).
  c.log = ConfigDict(dict(every_steps=50, progress_bar=True, plots=True, writers=(),
                          profile_steps=0))
  return c


# ---------------------------------------------------------------------------
# Validation.
# ---------------------------------------------------------------------------

# Dicts whose keys are not declared here (checked elsewhere or free).
_OPEN = ('data.options', 'model.kwargs', 'loss.kwargs', 'optimizer.kwargs',
         'schedule.kwargs', 'evals.sets')


def _is_group(x) -> bool:
  return isinstance(x, (Mapping, ConfigDict))


def _check_keys(config, ref, prefix: str = '') -> None:
  unknown = sorted(set(config.keys()) - set(ref.keys()))
  if unknown:
    def hint(k):
      h = [prefix + m for m in difflib.get_close_matches(k, list(ref.keys()),
                                                         n=1)]
      if not h and not prefix and k in legacy.KEYS:  # An old flat key.
        h = [legacy.KEYS[k]]
      return repr(prefix + k) + (f' (did you mean {h[0]!r}?)' if h else '')
    raise ValueError('unknown config keys: ' + ', '.join(map(hint, unknown)))
  missing = sorted(set(ref.keys()) - set(config.keys()))
  if missing:
    raise ValueError(f'config lacks keys {[prefix + k for k in missing]}; '
                     'start configs from nc_jax.train.default_config()')
  for k in ref.keys():
    path = prefix + k
    if _is_group(ref[k]) and path not in _OPEN:
      if not _is_group(config[k]):
        raise ValueError(f'config.{path} is a group; got {config[k]!r}')
      _check_keys(config[k], ref[k], path + '.')


def _choose(path: str, value, choices) -> None:
  if value not in choices:
    raise ValueError(f'config.{path}={value!r}; choose from {tuple(choices)}')


def _positive(group, path: str, keys, strict: bool = False) -> None:
  for k in keys:
    v = group[k]
    if (v <= 0) if strict else (v < 1):
      raise ValueError(f'config.{path}{k} must be '
                       f'{"> 0" if strict else ">= 1"}, got {v}')


def _check_run(c) -> None:
  _choose('on_config_change', c.on_config_change, ON_CONFIG_CHANGE)
  _positive(c, '', ('batch_size', 'num_epochs'))


def _check_data(d) -> None:
  _choose('data.loader.name', d.loader.name, LOADERS)
  if d.corruption.name and not 1 <= d.corruption.severity <= 5:
    raise ValueError('config.data.corruption needs severity in 1..5, got '
                     f'{d.corruption.severity}')
  for part in filter(None, d.label_map.split('|')):
    kind, _, arg = part.partition(':')
    if kind not in ('mod', 'table', 'superclass', 'split', 'classes') or not arg:
      raise ValueError(f'config.data.label_map={d.label_map!r}; use '
                       "'mod:<C>', 'table:<t0,t1,...>', 'superclass:<map>', 'split:<b>' or "
                       "'classes:<i,j,...>', chained with '|'")


def _check_model(m) -> None:
  _choose('model.compute_dtype', m.compute_dtype, COMPUTE_DTYPES)
  if 'dtype' in m.kwargs:
    raise ValueError('config.model.kwargs.dtype: set config.model.compute_dtype '
                     f'instead (one of {COMPUTE_DTYPES}); parameters stay float32')


def _check_init(i) -> None:
  _choose('init.finetune', i.finetune, FINETUNE)
  if i.finetune and not i.workdir:
    raise ValueError(f'config.init.finetune={i.finetune!r} needs '
                     "config.init.workdir (the pretrained run's workdir)")
  if i.finetune in ('layer', 'scl') and not i.finetune_block:
    raise ValueError(f'config.init.finetune={i.finetune!r} needs '
                     'config.init.finetune_block (a feature name, e.g. layer2)')


def _check_loss(c) -> None:
  l = c.loss
  _choose('loss.name', l.name, LOSSES)
  check_kwargs(f'config.loss.kwargs: loss {l.name!r}', losses_lib.LOSSES[l.name],
                l.kwargs)
  for k in ('temperature',):
    if k in l.kwargs and l.kwargs[k] <= 0:
      raise ValueError(f'config.loss.kwargs.{k} must be > 0, got '
                       f'{l.kwargs[k]}')
  if not 0 <= l.kwargs.get('label_smoothing', 0.0) < 1:
    raise ValueError('config.loss.kwargs.label_smoothing must be in [0, 1)')
  if l.name == 'supcon':
    a = c.augment
    if not (a.crop_padding or a.flip or a.noise or a.jitter or a.erase):
      raise ValueError("loss 'supcon' contrasts two augmented views: set "
                       'augment.crop_padding, flip, noise, jitter or erase (without them the '
                       'two views are identical)')
    if not c.model.kwargs.get('projection'):
      raise ValueError("loss 'supcon' needs a projection head: set "
                       "config.model.kwargs.projection = 'mlp' or 'linear'")


def _check_optimizer(o) -> None:
  check_kwargs(f'config.optimizer.kwargs: optax.{o.name}',
                optimizer_fn(o.name), o.kwargs, OPTIMIZER_OWN)
  _choose('optimizer.weight_decay_on', o.weight_decay_on, ('all', 'kernels'))
  _positive(o, 'optimizer.', ('learning_rate',), strict=True)


def _check_schedule(s) -> None:
  _choose('schedule.name', s.name, SCHEDULES)
  check_kwargs(f'config.schedule.kwargs: schedule {s.name!r}',
                schedules_lib.SCHEDULES[s.name], s.kwargs, schedules_lib.OWN)


def _check_augment(a) -> None:
  if a.adversarial_eps < 0 or a.adversarial_steps < 1:
    raise ValueError('config.augment.adversarial_eps must be >= 0 and '
                     'adversarial_steps >= 1')
  for k in ('crop_padding', 'noise', 'jitter'):
    if a[k] < 0:
      raise ValueError(f'config.augment.{k} must be >= 0, got {a[k]}')
  if not 0 <= a.erase <= 1:
    raise ValueError(f'config.augment.erase is a probability in [0, 1], got {a.erase}')


def _check_evals(e) -> None:
  _positive(e, 'evals.', ('every', 'batch_size'))
  unknown = sorted(set(e.label_sets) - set(LABEL_SETS))
  if unknown:
    raise ValueError(f'config.evals.label_sets {unknown}: choose from '
                     f'{LABEL_SETS}')
  for name, spec in e.sets.items():
    extra = sorted(set(spec.keys()) - set(EVAL_SET_KEYS))
    if extra:
      raise ValueError(f'config.evals.sets.{name}: unknown keys {extra}; '
                       f'known: {EVAL_SET_KEYS}')
    if name in ('train', 'test'):
      raise ValueError(f'config.evals.sets.{name}: train and test are always '
                       'evaluated; choose another name')


def _check_log(g) -> None:
  from nc_jax import writers  # pylint: disable=g-import-not-at-top
  _positive(g, 'log.', ('every_steps',))
  names = (g.writers,) if isinstance(g.writers, str) else tuple(g.writers)
  unknown = sorted(set(names) - set(writers.WRITERS))
  if unknown:
    raise ValueError(f'config.log.writers: unknown writers {unknown}; choose from '
                     f'{writers.WRITERS}')
  if not isinstance(g.profile_steps, int) or g.profile_steps < 0:
    raise ValueError(f'config.log.profile_steps must be an integer >= 0, got '
                     f'{g.profile_steps!r}')


def check_config(config: ConfigDict) -> None:
  """Raises ValueError for unknown or missing keys and invalid values."""
  if legacy.is_flat(config):
    raise ValueError(
        'this config has the flat layout of nc_jax before the config groups '
        f'(e.g. {sorted(set(config.keys()) & set(legacy.KEYS))[:4]}); build '
        'it from nc_jax.train.default_config(), or convert it with '
        'nc_jax.train.config_from_dict')
  _check_keys(config, default_config())
  _check_run(config)
  _check_data(config.data)
  _check_model(config.model)
  _check_init(config.init)
  _check_loss(config)
  _check_optimizer(config.optimizer)
  _check_schedule(config.schedule)
  _check_augment(config.augment)
  _check_evals(config.evals)
  _check_log(config.log)
  _positive(config.checkpoint, 'checkpoint.', ('keep',))


# ---------------------------------------------------------------------------
# Reading configs back, flat views.
# ---------------------------------------------------------------------------


def flatten(tree: Mapping[str, Any], prefix: str = '') -> dict[str, Any]:
  """``{'a.b.c': leaf}`` of a nested mapping (empty groups kept as {})."""
  out = {}
  for k, v in tree.items():
    if isinstance(v, Mapping) and v:
      out.update(flatten(v, f'{prefix}{k}.'))
    else:
      out[prefix + k] = v
  return out


def override(config: ConfigDict, flat: Mapping[str, Any]) -> ConfigDict:
  """A copy of ``config`` with dotted-key overrides ``{'optimizer.kwargs.b1': 0.95}``.

  Through `ConfigDict.update_from_flattened_dict` on a locked copy, so a
  key the config lacks is an error naming it; only the keyword-argument
  dicts (``*.kwargs``, ``data.options``, ``evals.sets``) take new keys.

  Raises:
    KeyError: an override of a key the config does not have.
  """
  was_locked = config.is_locked
  out = copy.deepcopy(config)  # Keeps placeholders (typed None fields).
  out.lock()
  for key, value in flat.items():
    *parents, leaf = key.split('.')
    node = out
    for i, p in enumerate(parents):
      if p not in node:
        raise KeyError(f'override {key!r}: the config has no key '
                       f'{".".join(parents[:i + 1])!r}')
      node = node[p]
    if parents and parents[-1] in ('kwargs', 'options', 'sets'):
      with node.unlocked():
        node[leaf] = value
    elif leaf not in node:
      hint = difflib.get_close_matches(leaf, list(node.keys()), n=1)
      raise KeyError(f'override {key!r}: the config has no key {key!r}' +
                     (f' (did you mean {".".join(parents + hint)!r}?)'
                      if hint else ''))
    else:
      out.update_from_flattened_dict({key: value})
  if not was_locked:  # As locked as it came.
    out.unlock()
  return out


def resume_safe(key: str) -> bool:
  """Whether dotted ``key`` may differ when a run is resumed (RESUME_SAFE)."""
  return any(key == k or key.startswith(k + '.') for k in RESUME_SAFE)


def _convert(v):
  if isinstance(v, Mapping):
    return ConfigDict({k: _convert(x) for k, x in v.items()})
  if isinstance(v, list):
    return tuple(_convert(x) for x in v)
  return v


def config_from_dict(raw: Mapping[str, Any]) -> ConfigDict:
  """A trainer config from a config.json dict (lists back to tuples).

  A dict in the flat layout of runs written before the config groups is
  mapped to the groups first (`legacy.to_groups`).
  """
  if legacy.is_flat(raw):
    raw = legacy.to_groups(raw)
  config = default_config()
  for group in ('loss', 'optimizer', 'schedule'):  # Other kwargs than ours.
    if group in raw and 'kwargs' in raw[group]:
      with config.unlocked():
        config[group].kwargs = ConfigDict()
  with config.unlocked():
    for key, value in flatten(raw).items():
      *parents, leaf = key.split('.')
      node = config
      for p in parents:
        if p not in node:
          node[p] = ConfigDict()
        node = node[p]
      node[leaf] = (_convert(value) if not isinstance(value, Mapping)
                    else ConfigDict())
  check_config(config)
  return config


def read_config(workdir: str) -> ConfigDict:
  """A trainer run's ``config.json`` as a trainer config."""
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path} does not exist: {workdir} is not a '
                            'trainer run')
  with open(path) as f:
    return config_from_dict(json.load(f))
