"""The model a config trains: built fresh, or from another run and fine-tuned.

`build(config, input_shape, num_classes)` is the trainer's one model factory:

- without ``config.init_from``: ``models.create_model(config.model, ...)``;
- with it: the pretrained run's model, its parameters and batch statistics
  restored (`checkpoints.restore_model`), then the fine-tuning variant of
  paper 001 sec 3.3 applied (``config.finetune``):

  - ``'linear_probe'``: a new head; only the head trains;
  - ``'layer'``: the head and one block (``config.finetune_block``);
  - ``'scl'``: the block, the head and a skip connection from the block's
    pooled features to the penultimate features (`SCLModel`, 001 Fig 7);
  - ``'full'`` or ``''``: every parameter.

`trainable_paths` names what trains; the trainer freezes the rest with an
``optax.multi_transform`` whose frozen branch is ``optax.set_to_zero`` (frozen
parameters stay bit-identical, big_vision's way) and runs frozen modules in
eval mode (their BatchNorm statistics and dropout are frozen too).

References:
  Paper 001 sec 3.3, Table 2, App A.3; SPEC.md "Transfer (000, 001)".
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from nc_jax import data
from nc_jax import models

VARIANTS = ('linear_probe', 'layer', 'scl', 'full')
MODEL_INFO = 'model.json'  # What a run's model is, written by the trainer.


class SCLModel(models.NCModel):
  """A pretrained encoder with a skip connection from one block (001 Fig 7).

  ``h = h_penultimate + S(h_block)``, ``logits = W h + b``. ``S`` is the
  identity when the widths match (the paper's ViT case; equal-width MLPs),
  else a linear map of the pooled block features followed by BatchNorm (the
  paper's adaptive pooling + 1x1 convolution + BN for ResNets: the block
  features are already pooled). ``features['penultimate']`` is the combined
  ``h`` (the classifier input), as the `NCModel` contract requires.
  """

  def __init__(self, base: models.NCModel, block: str, *, block_dim: int,
               penultimate_dim: int, num_classes: int, rngs: nnx.Rngs):
    self.base = base
    self.block_name = block
    self.identity = block_dim == penultimate_dim
    if self.identity:
      self.skip = self.skip_norm = None
    else:
      self.skip = nnx.Linear(block_dim, penultimate_dim, use_bias=False,
                             rngs=rngs)
      self.skip_norm = nnx.BatchNorm(penultimate_dim, momentum=0.9,
                                     epsilon=1e-5, rngs=rngs)
    # The base's encoder (its classifier-side head layers, if any, are not
    # used: SCL adds its skip to the encoder output).
    keys = base.encoder_keys
    self._init_outputs(keys, penultimate_dim, num_classes=num_classes,
                       projection=None, projection_dim=0, dtype=None, rngs=rngs)

  def _block(self, index: int, name: str) -> nnx.Module:
    return self.base.block(name)

  def encode(self, x: jax.Array) -> models.Features:
    feats = self.base.encode(x)
    skip = feats[self.block_name]
    if not self.identity:
      skip = self.skip_norm(self.skip(skip))
    feats['penultimate'] = feats['penultimate'] + skip
    return feats


def feature_dims(model: models.NCModel,
                 input_shape: Sequence[int]) -> dict[str, int]:
  """``{feature name: width}`` from an abstract forward pass."""
  graphdef, state = nnx.split(model)
  x = jax.ShapeDtypeStruct((1,) + tuple(input_shape), jnp.float32)
  out = jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x)[1], state, x)
  return {k: v.shape[-1] for k, v in out.items()}


def read_model_info(workdir: str) -> dict[str, Any]:
  """A run's ``model.json``: input_shape, num_classes, normalisation."""
  path = os.path.join(workdir, MODEL_INFO)
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path} does not exist: is {workdir} a finished '
                            'or started run of the nc_jax trainer?')
  with open(path) as f:
    return json.load(f)


def normalizer(mean, std) -> Callable[[jax.Array], jax.Array]:
  """``x -> (x - mean) / std`` on device."""
  mean, std = jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32)
  return lambda x: (x - mean) / std


def normalization(config, train_ds: data.Dataset) -> tuple[list, list]:
  """(mean, std) inputs are normalised with: the pretrained run's, or the data's."""
  if config.init_from:
    info = read_model_info(config.init_from)
    return info['mean'], info['std']
  mean, std = data.dataset_stats(train_ds)
  return np.asarray(mean).tolist(), np.asarray(std).tolist()


def build(config, input_shape: Sequence[int], num_classes: int, *,
          restore: bool = True) -> models.NCModel:
  """The model ``config`` trains (see the module docstring).

  Args:
    config: a trainer config.
    input_shape: one input's shape.
    num_classes: classes of this run's labels.
    restore: with ``init_from``, read the pretrained parameters (False:
      the structure only, for abstract restore templates).
  """
  rngs = nnx.Rngs(config.seed)
  if not config.init_from:
    return models.create_model(config.model, num_classes=num_classes,
                               rngs=rngs, input_shape=input_shape,
                               **config.model_kwargs.to_dict())
  from nc_jax.train import checkpoints  # pylint: disable=g-import-not-at-top
  info = read_model_info(config.init_from)
  if restore:
    base = checkpoints.restore_model(
        config.init_from, config.init_epoch or None,
        input_shape=info['input_shape'], num_classes=info['num_classes'])
    base.train()
  else:
    pconfig = checkpoints.read_config(config.init_from)
    base = build(pconfig, info['input_shape'], info['num_classes'],
                 restore=False)
  variant = config.finetune or 'full'
  if variant in ('layer', 'scl'):
    base.block(config.finetune_block)  # Validates the name.
  dims = feature_dims(base, input_shape)
  if variant == 'scl':
    return SCLModel(base, config.finetune_block,
                    block_dim=dims[config.finetune_block],
                    penultimate_dim=dims['penultimate'],
                    num_classes=num_classes, rngs=rngs)
  if config.finetune_new_head or num_classes != info['num_classes']:
    base.head = nnx.Linear(dims['penultimate'], num_classes, rngs=rngs)
  return base


# ---------------------------------------------------------------------------
# What trains.
# ---------------------------------------------------------------------------


def _module_path(root: nnx.Module, module: nnx.Module) -> tuple:
  for path, m in nnx.iter_modules(root):
    if m is module:
      return tuple(path)
  raise ValueError('module is not part of the model')


def trainable_paths(model: models.NCModel, variant: str,
                    block: str = '') -> tuple[tuple, ...] | None:
  """Module paths whose parameters ``variant`` trains (None: all)."""
  if variant in ('', 'full'):
    return None
  if variant not in VARIANTS:
    raise ValueError(f'variant must be one of {VARIANTS}; got {variant!r}')
  paths = [('head',)]
  if variant in ('layer', 'scl'):
    paths.append(_module_path(model, model.block(block)))
  if variant == 'scl' and not model.identity:
    paths += [('skip',), ('skip_norm',)]
  return tuple(paths)


def _key_name(k) -> Any:
  return getattr(k, 'key', getattr(k, 'idx', getattr(k, 'name', k)))


def param_labels(params: Any, paths: tuple[tuple, ...] | None) -> Any:
  """'train' / 'freeze' per parameter leaf (a pytree like ``params``)."""

  def label(path, _):
    names = tuple(_key_name(k) for k in path)
    if paths is None or any(names[:len(p)] == p for p in paths):
      return 'train'
    return 'freeze'

  return jax.tree_util.tree_map_with_path(label, params)


def freeze(tx: optax.GradientTransformation,
           labels: Any) -> optax.GradientTransformation:
  """``tx`` on the 'train' leaves; zero updates (bit-identical) elsewhere."""
  return optax.multi_transform({'train': tx, 'freeze': optax.set_to_zero()},
                               labels)


def set_modes(model: models.NCModel, paths: tuple[tuple, ...] | None) -> None:
  """Train mode on the trained modules, eval mode everywhere else."""
  if paths is None:
    model.train()
    return
  model.eval()
  modules = {tuple(p): m for p, m in nnx.iter_modules(model)}
  for p in paths:
    if p in modules:
      modules[p].train()
