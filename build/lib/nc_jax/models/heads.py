"""Projection heads for SupCon-style training (001 sec 3.1, Khosla et al. 2020).

The head maps the penultimate features ``h`` to ``z``; a model built with one
returns ``z`` as ``features['projection']`` next to its logits. ``z`` is not
normalised: contrastive losses normalise it themselves, and the collapse
metrics see the raw vectors.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

PROJECTION_KINDS = ('linear', 'mlp')


class ProjectionHead(nnx.Module):
  """``'linear'``: z = A h + a; ``'mlp'``: z = A2 relu(A1 h + a1) + a2.

  The MLP is SupCon's (Khosla et al. 2020): hidden width = input width unless
  given, ReLU, no normalisation.
  """

  def __init__(
      self,
      in_features: int,
      out_features: int = 128,
      *,
      kind: str = 'mlp',
      hidden_features: int | None = None,
      dtype: jnp.dtype | None = None,
      rngs: nnx.Rngs,
  ):
    """Builds the head.

    Args:
      in_features: p, width of the penultimate features.
      out_features: width of z.
      kind: ``'linear'`` or ``'mlp'``.
      hidden_features: hidden width of the MLP (default ``in_features``).
      dtype: computation dtype.
      rngs: parameter initialisation keys.
    """
    if kind not in PROJECTION_KINDS:
      raise ValueError(f'kind must be one of {PROJECTION_KINDS}, got {kind!r}')
    self.kind = kind
    if kind == 'linear':
      self.fc1 = nnx.Linear(in_features, out_features, dtype=dtype, rngs=rngs)
      self.fc2 = None
    else:
      hidden = in_features if hidden_features is None else hidden_features
      self.fc1 = nnx.Linear(in_features, hidden, dtype=dtype, rngs=rngs)
      self.fc2 = nnx.Linear(hidden, out_features, dtype=dtype, rngs=rngs)

  def __call__(self, h: jax.Array) -> jax.Array:
    """Maps ``h [B, p]`` to ``z [B, out_features]``."""
    z = self.fc1(h)
    if self.fc2 is not None:
      z = self.fc2(nnx.relu(z))
    return z


def make_projection(
    kind: str | None,
    in_features: int,
    out_features: int,
    *,
    dtype: jnp.dtype | None = None,
    rngs: nnx.Rngs,
) -> ProjectionHead | None:
  """A `ProjectionHead` of the given kind, or ``None`` when kind is ``None``."""
  if kind is None:
    return None
  return ProjectionHead(in_features, out_features, kind=kind, dtype=dtype,
                        rngs=rngs)
