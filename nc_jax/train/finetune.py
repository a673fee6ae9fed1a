"""What a fine-tuning run trains: paper 001's variants as optimiser masks.

A run with ``config.init.workdir`` starts from another run's model, built by
`nc_jax.train.model.build` with the variant of ``config.init.finetune``:

- ``'linear_probe'``: a new head; only the head trains;
- ``'layer'``: the head and one block (``config.init.finetune_block``);
- ``'scl'``: the block, the head and a skip connection from the block's
  pooled features to the penultimate features (`SCLModel`, 001 Fig 7);
- ``'full'`` or ``''``: every parameter.

`trainable_paths` names what trains; the trainer freezes the rest with an
``optax.multi_transform`` whose frozen branch is ``optax.set_to_zero`` (frozen
parameters stay bit-identical, big_vision's way) and runs frozen modules in
eval mode (their BatchNorm statistics and dropout are frozen too).

The model factory and ``model.json`` (``build``, ``read_model_info``,
``normalizer``, ``normalization``, ``feature_dims``, ``SCLModel``,
``MODEL_INFO``) live in `nc_jax.train.model` and are re-exported here for
existing callers.

References:
  Paper 001 sec 3.3, Table 2, App A.3; SPEC.md "Transfer (000, 001)".
"""

from __future__ import annotations

from typing import Any

import jax
import optax
from flax import nnx

from nc_jax import models
# Re-exported: the model factory used to live here.
from nc_jax.train.model import (MODEL_INFO, SCLModel, build, feature_dims,  # pylint: disable=unused-import
                                normalization, normalizer, read_model_info)

VARIANTS = ('linear_probe', 'layer', 'scl', 'full')


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
