"""``create_model(name, ...)``: every nc_jax model by name."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

from flax import nnx

from nc_jax.models.core import NCModel
from nc_jax.models.mlp import MLP
from nc_jax.models.resnet import ResNet
from nc_jax.models.vgg import VGG
from nc_jax.models.vit import DEIT_TINY, VIT_CIFAR, VisionTransformer


def _with_defaults(cls: Callable[..., NCModel], *args: Any,
                   **defaults: Any) -> Callable[..., NCModel]:
  """``cls(*args, **{**defaults, **kwargs})``: presets the caller overrides."""

  def build(**kwargs: Any) -> NCModel:
    return cls(*args, **{**defaults, **kwargs})

  return build


_BUILDERS: dict[str, Callable[..., NCModel]] = {
    'mlp': MLP,
    'resnet18': functools.partial(ResNet, 18),
    'resnet34': functools.partial(ResNet, 34),
    'resnet50': functools.partial(ResNet, 50),
    'vgg11_bn': functools.partial(VGG, 'vgg11'),
    'vit': _with_defaults(VisionTransformer, **VIT_CIFAR),
    'deit_tiny': _with_defaults(VisionTransformer, **DEIT_TINY),
}

MODEL_NAMES: tuple[str, ...] = tuple(_BUILDERS)


def create_model(name: str, *, num_classes: int, rngs: nnx.Rngs,
                 input_shape: Sequence[int] | None = None,
                 **kwargs: Any) -> NCModel:
  """Builds a model by name.

  Args:
    name: one of `MODEL_NAMES`: ``'mlp'`` (needs ``in_features``),
      ``'resnet18'``, ``'resnet34'``, ``'resnet50'`` (CIFAR stem unless
      ``stem='imagenet'``), ``'vgg11_bn'``, ``'vit'`` (CIFAR preset: 32 px,
      patch 4, dim 192, depth 12, 3 heads), ``'deit_tiny'`` (224 px, patch 16,
      dim 192, depth 12, 3 heads, drop path 0.1).
    num_classes: C, the classifier's output width.
    input_shape: one input's shape (``(40,)``, ``(28, 28, 1)``, ...); fills
      ``in_features`` (MLP: the flattened size), ``in_channels`` and
      ``image_size`` (ViT) unless given in ``kwargs``.
    rngs: initialisation keys (dropout keys are drawn from the same
      ``nnx.Rngs``: its ``'dropout'`` stream, else ``'default'``).
    **kwargs: keyword arguments of the model class (`MLP`, `ResNet`, `VGG`,
      `VisionTransformer`), overriding the presets, e.g. ``width=16``,
      ``projection='mlp'``, ``depth=6``.

  Returns:
    The model, in train mode.

  Raises:
    ValueError: for an unknown name.
  """
  if name not in _BUILDERS:
    raise ValueError(f'unknown model {name!r}; choose one of {MODEL_NAMES}')
  if input_shape is not None:
    shape = tuple(input_shape)
    if name == 'mlp':
      kwargs.setdefault('in_features', math.prod(shape))
    elif len(shape) == 3:
      kwargs.setdefault('in_channels', shape[-1])
      if name in ('vit', 'deit_tiny'):
        kwargs.setdefault('image_size', shape[0])
  return _BUILDERS[name](num_classes=num_classes, rngs=rngs, **kwargs)
