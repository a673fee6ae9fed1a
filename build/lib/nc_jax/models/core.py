"""The interface every nc_jax model shares, and helpers that read it.

Every model is an ``nnx.Module`` whose call returns ``(logits, features)``:

- ``logits``: ``[B, C]``;
- ``features``: a dict ``name -> [B, d_name]`` of pooled representations,
  one per block/layer, whose keys are listed from input to output by
  ``feature_names(model)``. The input of the classifier is always
  ``features['penultimate']``; with a projection head its output is
  ``features['projection']`` (listed last; computed from ``'penultimate'``,
  not upstream of the classifier).

The key set is fixed when the model is built (static under ``jit``). JAX
returns dicts from transformations with their keys sorted, so read the
layer order from ``feature_names(model)``, never from dict order.

Train/eval mode is NNX's: ``model.train()`` (BatchNorm uses and updates batch
statistics, dropout and stochastic depth active) and ``model.eval()`` (running
averages, deterministic). Models are built in train mode.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from nc_jax.models.heads import ProjectionHead, make_projection

Features = dict[str, jax.Array]


class NCModel(nnx.Module):
  """Base class: an encoder returning pooled features, plus a linear head.

  Subclasses build their layers, call `_init_outputs`, and implement
  `encode`. Attributes:

  - ``head``: the classifier, ``nnx.Linear(p, C)`` (kernel ``[p, C]``);
  - ``projection``: a `ProjectionHead` or ``None``;
  - ``feature_keys``: the feature names, input to output (static).
  """

  head: nnx.Linear
  projection: ProjectionHead | None
  feature_keys: tuple[str, ...]

  def _init_outputs(
      self,
      encoder_keys: tuple[str, ...],
      penultimate_dim: int,
      *,
      num_classes: int,
      projection: str | None,
      projection_dim: int,
      dtype: jnp.dtype | None,
      rngs: nnx.Rngs,
      head_depth: int = 0,
  ) -> None:
    """Builds ``head`` and ``projection`` and fixes ``feature_keys``.

    Args:
      encoder_keys: names `encode` returns, input to output, ending in
        ``'penultimate'``.
      penultimate_dim: p, the width of ``'penultimate'``.
      num_classes: C.
      projection: ``None``, ``'linear'`` or ``'mlp'`` (see `ProjectionHead`).
      projection_dim: output width of the projection head.
      dtype: computation dtype (``None``: inferred from inputs/params).
      rngs: parameter initialisation keys.
      head_depth: L >= 0 hidden layers (width p, ReLU) between the encoder and
        the classifier (paper 001 sec 3.1's projection head for CE / MSE:
        the classifier sits on its output). With L > 0 the encoder's output
        is ``'pre_head'`` (the features transfer uses), the head layers are
        ``'head1'`` .. ``'head{L-1}'`` and ``'penultimate'`` (the classifier
        input).
    """
    if encoder_keys[-1] != 'penultimate':
      raise ValueError(
          f"last encoder key must be 'penultimate', got {encoder_keys}")
    if head_depth < 0:
      raise ValueError(f'head_depth must be >= 0, got {head_depth}')
    self.head = nnx.Linear(penultimate_dim, num_classes, dtype=dtype, rngs=rngs)
    self.projection = make_projection(
        projection, penultimate_dim, projection_dim, dtype=dtype, rngs=rngs)
    self.head_layers = nnx.List([
        nnx.Linear(penultimate_dim, penultimate_dim, dtype=dtype, rngs=rngs)
        for _ in range(head_depth)])
    self.encoder_keys = tuple(encoder_keys)  # What `encode` returns.
    self.num_encoder_keys = len(encoder_keys)
    keys = tuple(encoder_keys)
    if head_depth:
      keys = (keys[:-1] + ('pre_head',) +
              tuple(f'head{i}' for i in range(1, head_depth)) + ('penultimate',))
    extra = ('projection',) if self.projection is not None else ()
    self.feature_keys = keys + extra

  def block(self, name: str) -> nnx.Module:
    """The module whose output is the feature ``name`` (a fine-tuning unit).

    Args:
      name: a key of `feature_names` other than ``'projection'``.

    Raises:
      ValueError: ``name`` is not a feature of the model.
    """
    keys = tuple(k for k in self.feature_keys if k != 'projection')
    if name not in keys:
      raise ValueError(f'block {name!r} is not a layer of the model: {keys}')
    i = keys.index(name)
    last = self.num_encoder_keys - 1
    if i > last:  # A layer of the classifier-side head.
      return self.head_layers[i - last - 1]
    return self._block(i, 'penultimate' if i == last else name)

  def _block(self, index: int, name: str) -> nnx.Module:
    """`block` of the ``index``-th encoder feature (each model defines it)."""
    raise NotImplementedError

  def encode(self, x: jax.Array) -> Features:
    """Pooled encoder features, ``name -> [B, d]`` (no head, no projection).

    Abstract: each model (MLP, ResNet, VGG, ViT) defines its own encoder.
    """
    raise NotImplementedError

  def __call__(self, x: jax.Array) -> tuple[jax.Array, Features]:
    """Applies the model.

    Args:
      x: a batch of inputs, ``[B, ...]`` (images are NHWC ``[B, H, W, C]``).

    Returns:
      ``(logits [B, C], features)``, features keyed by ``feature_names``.
    """
    features = self.encode(x)
    if len(self.head_layers):
      h = features.pop('penultimate')
      features['pre_head'] = h
      for i, layer in enumerate(self.head_layers):
        h = nnx.relu(layer(h))
        last = i == len(self.head_layers) - 1
        features['penultimate' if last else f'head{i + 1}'] = h
    logits = self.head(features['penultimate'])
    if self.projection is not None:
      features['projection'] = self.projection(features['penultimate'])
    return logits, features


def feature_names(model: NCModel) -> tuple[str, ...]:
  """The keys of ``model(x)[1]``, ordered from input to output.

  Args:
    model: an `NCModel`.

  Returns:
    A tuple of names; ``'penultimate'`` (the classifier input) is last, or
    second to last followed by ``'projection'`` when the model has a
    projection head.
  """
  return model.feature_keys


def classifier_params(model: NCModel) -> tuple[jax.Array, jax.Array]:
  """The last-layer classifier as ``(W [C, p], b [C])``, logits = h W^T + b.

  Args:
    model: an `NCModel` (anything with an ``nnx.Linear`` ``head``).

  Returns:
    ``W`` ``[C, p]`` (the transposed ``nnx.Linear`` kernel) and ``b`` ``[C]``
    (zeros when the head has no bias).
  """
  kernel = model.head.kernel[...]
  if model.head.bias is None:
    bias = jnp.zeros(kernel.shape[1], kernel.dtype)
  else:
    bias = model.head.bias[...]
  return kernel.T, bias


def count_params(model: nnx.Module) -> int:
  """Number of trainable scalars (``nnx.Param``; batch statistics excluded).

  Works on abstract models too, e.g.
  ``count_params(nnx.eval_shape(lambda: create_model(...)))``.
  """
  leaves = jax.tree.leaves(nnx.state(model, nnx.Param))
  return sum(math.prod(leaf.shape) for leaf in leaves)


def global_avg_pool(x: jax.Array) -> jax.Array:
  """Mean over the spatial axes: ``[B, H, W, D] -> [B, D]``."""
  return jnp.mean(x, axis=(1, 2))
