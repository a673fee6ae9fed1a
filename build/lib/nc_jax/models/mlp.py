"""Fully connected ReLU networks (001: 12 x 3072; 002: 3 x 1024).

Features of ``MLP(depth=L)``: ``'layer1' .. 'layer{L-1}'`` then
``'penultimate'`` (the L-th hidden layer), each ``[B, width]``: the output of
hidden layer l after its normalisation and ReLU (before dropout).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from nc_jax.models.core import Features, NCModel

NORMS = (None, 'batch', 'layer')


def mlp_feature_names(depth: int) -> tuple[str, ...]:
  """Encoder feature keys of an ``MLP(depth=depth)``, input to output."""
  return tuple(f'layer{l}' for l in range(1, depth)) + ('penultimate',)


class HiddenLayer(nnx.Module):
  """Linear -> optional BatchNorm/LayerNorm -> ReLU -> optional dropout."""

  def __init__(
      self,
      in_features: int,
      out_features: int,
      *,
      norm: str | None,
      dropout_rate: float,
      bn_momentum: float,
      dtype: jnp.dtype | None,
      rngs: nnx.Rngs,
  ):
    self.linear = nnx.Linear(
        in_features, out_features, kernel_init=nnx.initializers.he_normal(),
        dtype=dtype, rngs=rngs)
    if norm == 'batch':
      self.norm = nnx.BatchNorm(out_features, momentum=bn_momentum,
                                epsilon=1e-5, dtype=dtype, rngs=rngs)
    elif norm == 'layer':
      self.norm = nnx.LayerNorm(out_features, epsilon=1e-5, dtype=dtype,
                                rngs=rngs)
    else:
      self.norm = None
    self.dropout = nnx.Dropout(
        dropout_rate, rngs=rngs if dropout_rate > 0 else None)

  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Returns ``(next layer input, feature)``, both ``[B, out_features]``."""
    h = self.linear(x)
    if self.norm is not None:
      h = self.norm(h)
    h = nnx.relu(h)
    return self.dropout(h), h


class MLP(NCModel):
  """``depth`` hidden layers of ``width`` units, then a linear classifier.

  The input is flattened: ``[B, ...] -> [B, in_features]``. Hidden kernels use
  He-normal initialisation (variance preserving under ReLU, which a 12-layer
  net without normalisation needs to start training).
  """

  def __init__(
      self,
      *,
      in_features: int,
      num_classes: int,
      width: int = 1024,
      depth: int = 3,
      norm: str | None = None,
      dropout_rate: float = 0.0,
      bn_momentum: float = 0.9,
      projection: str | None = None,
      projection_dim: int = 128,
      head_depth: int = 0,
      dtype: jnp.dtype | None = None,
      rngs: nnx.Rngs,
  ):
    """Builds the MLP.

    Args:
      in_features: size of one flattened input (e.g. 3072 for CIFAR).
      num_classes: C.
      width: units per hidden layer (001: 3072; 002: 1024).
      depth: number of hidden layers L >= 1 (001: 12; 002: 3).
      norm: ``None``, ``'batch'`` or ``'layer'``, after each hidden Linear.
      dropout_rate: dropout between hidden layers (train mode only; not
        before the classifier, so 'penultimate' is exactly its input).
      bn_momentum: BatchNorm running-average decay (PyTorch's 0.1 = 0.9 here).
      projection: optional projection head, ``'linear'`` or ``'mlp'``.
      projection_dim: width of the projection output.
      dtype: computation dtype (params stay float32).
      rngs: initialisation keys (and dropout keys when ``dropout_rate > 0``).
    """
    if depth < 1:
      raise ValueError(f'depth must be >= 1, got {depth}')
    if norm not in NORMS:
      raise ValueError(f'norm must be one of {NORMS}, got {norm!r}')
    self.in_features = in_features
    dims = [in_features] + [width] * depth
    self.layers = nnx.List([
        HiddenLayer(dims[i], dims[i + 1], norm=norm,
                    dropout_rate=dropout_rate if i < depth - 1 else 0.0,
                    bn_momentum=bn_momentum, dtype=dtype, rngs=rngs)
        for i in range(depth)
    ])
    self._init_outputs(
        mlp_feature_names(depth), width, num_classes=num_classes,
        projection=projection, projection_dim=projection_dim, head_depth=head_depth, dtype=dtype,
        rngs=rngs)

  def _block(self, index: int, name: str) -> nnx.Module:
    return self.layers[index]  # 'layer{l}' / 'penultimate': hidden layer l.

  def encode(self, x: jax.Array) -> Features:
    """Hidden-layer features of ``x [B, ...]`` (flattened), ``[B, width]``."""
    x = x.reshape(x.shape[0], -1)
    if x.shape[1] != self.in_features:
      raise ValueError(
          f'flattened input has {x.shape[1]} features, expected '
          f'{self.in_features}')
    names = self.encoder_keys
    features = {}
    for i, layer in enumerate(self.layers):
      x, h = layer(x)
      features[names[i]] = h
    return features
