"""Vision Transformer / DeiT (Dosovitskiy et al. 2021; Touvron et al. 2021).

Pre-norm encoder: patch embedding (a conv with kernel = stride = patch),
optional class token, learned position embeddings, ``depth`` blocks of
``x + MHA(LN(x))``, ``x + MLP(LN(x))`` (GELU, hidden ``mlp_ratio * dim``),
final LayerNorm, linear classifier. No distillation token. DeiT-Tiny (dim
192, depth 12, 3 heads, patch 16, 224 px, 1000 classes) has 5,717,416
parameters.

Features: ``'block1' .. 'block{depth}'``, the readout of each block's output
(the class token for ``pool='cls'``, the mean of the patch tokens for
``pool='mean'``), then ``'penultimate'``, the same readout after the final
LayerNorm (the classifier input); all ``[B, dim]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from nc_jax.models.core import Features, NCModel

POOLS = ('cls', 'mean')

# Presets, merged under the keyword arguments given to `create_model`.
VIT_CIFAR = dict(image_size=32, patch_size=4, dim=192, depth=12, num_heads=3,
                 mlp_ratio=4.0)
DEIT_TINY = dict(image_size=224, patch_size=16, dim=192, depth=12, num_heads=3,
                 mlp_ratio=4.0, drop_path_rate=0.1)

_dense_init = nnx.initializers.xavier_uniform()
_embed_init = nnx.initializers.truncated_normal(stddev=0.02)


def vit_feature_names(depth: int) -> tuple[str, ...]:
  """Encoder feature keys of a ``VisionTransformer(depth=depth)``."""
  return tuple(f'block{l}' for l in range(1, depth + 1)) + ('penultimate',)


class DropPath(nnx.Module):
  """Stochastic depth: drops a whole residual branch per sample in training.

  Follows ``nnx.Dropout``: ``deterministic`` is toggled by ``model.train()``
  and ``model.eval()``; the keys come from the ``'dropout'`` stream.
  """

  def __init__(self, rate: float, *, rngs: nnx.Rngs | None = None):
    self.rate = rate
    self.deterministic = False
    self.rngs = rngs.dropout.fork() if rate > 0 and rngs is not None else None

  def __call__(self, x: jax.Array) -> jax.Array:
    """Scales ``x [B, ...]`` by ``mask / keep``, one Bernoulli per sample."""
    if self.rate == 0.0 or self.deterministic:
      return x
    keep = 1.0 - self.rate
    shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    mask = jax.random.bernoulli(self.rngs(), keep, shape)
    return jnp.where(mask, x / keep, jnp.zeros_like(x))


class EncoderBlock(nnx.Module):
  """Pre-norm transformer block on ``[B, N, dim]`` tokens."""

  def __init__(self, dim: int, num_heads: int, mlp_ratio: float, *,
               dropout_rate: float, attention_dropout_rate: float,
               drop_path_rate: float, dtype, rngs: nnx.Rngs):
    hidden = int(dim * mlp_ratio)
    drop_rngs = rngs if dropout_rate > 0 else None
    self.norm1 = nnx.LayerNorm(dim, epsilon=1e-6, dtype=dtype, rngs=rngs)
    self.attn = nnx.MultiHeadAttention(
        num_heads, dim, dropout_rate=attention_dropout_rate,
        deterministic=False, decode=False, kernel_init=_dense_init,
        dtype=dtype, rngs=rngs)
    self.norm2 = nnx.LayerNorm(dim, epsilon=1e-6, dtype=dtype, rngs=rngs)
    self.fc1 = nnx.Linear(dim, hidden, kernel_init=_dense_init, dtype=dtype,
                          rngs=rngs)
    self.fc2 = nnx.Linear(hidden, dim, kernel_init=_dense_init, dtype=dtype,
                          rngs=rngs)
    self.drop1 = nnx.Dropout(dropout_rate, rngs=drop_rngs)
    self.drop2 = nnx.Dropout(dropout_rate, rngs=drop_rngs)
    self.drop_path = DropPath(drop_path_rate, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    x = x + self.drop_path(self.drop1(self.attn(self.norm1(x))))
    y = nnx.gelu(self.fc1(self.norm2(x)), approximate=False)
    y = self.drop2(self.fc2(self.drop1(y)))
    return x + self.drop_path(y)


class VisionTransformer(NCModel):
  """ViT/DeiT classifier for ``[B, image_size, image_size, in_channels]``."""

  def __init__(
      self,
      *,
      num_classes: int,
      image_size: int = 32,
      patch_size: int = 4,
      in_channels: int = 3,
      dim: int = 192,
      depth: int = 12,
      num_heads: int = 3,
      mlp_ratio: float = 4.0,
      pool: str = 'cls',
      dropout_rate: float = 0.0,
      attention_dropout_rate: float = 0.0,
      drop_path_rate: float = 0.0,
      projection: str | None = None,
      projection_dim: int = 128,
      head_depth: int = 0,
      dtype: jnp.dtype | None = None,
      rngs: nnx.Rngs,
  ):
    """Builds the network.

    Args:
      num_classes: C.
      image_size: input height = width (must be a multiple of patch_size).
      patch_size: side of the square patches.
      in_channels: image channels.
      dim: token width.
      depth: number of transformer blocks.
      num_heads: attention heads (must divide dim).
      mlp_ratio: MLP hidden width / dim.
      pool: ``'cls'`` (class token, as DeiT) or ``'mean'`` (no class token;
        mean of the patch tokens), for the classifier and the block readouts.
      dropout_rate: dropout on the embeddings, attention output and MLP.
      attention_dropout_rate: dropout on the attention weights.
      drop_path_rate: stochastic depth, linearly increasing from 0 to this
        rate over the blocks (DeiT: 0.1).
      projection: optional projection head, ``'linear'`` or ``'mlp'``.
      projection_dim: width of the projection output.
      dtype: computation dtype (params stay float32).
      rngs: initialisation keys, and dropout keys when any rate is > 0.
    """
    if pool not in POOLS:
      raise ValueError(f'pool must be one of {POOLS}, got {pool!r}')
    if image_size % patch_size:
      raise ValueError(f'image_size {image_size} is not a multiple of '
                       f'patch_size {patch_size}')
    if dim % num_heads:
      raise ValueError(f'num_heads {num_heads} does not divide dim {dim}')
    self.pool = pool
    self.image_size = image_size
    self.patch_embed = nnx.Conv(
        in_channels, dim, (patch_size, patch_size),
        strides=(patch_size, patch_size), padding='VALID', dtype=dtype,
        rngs=rngs)
    num_tokens = (image_size // patch_size)**2 + (pool == 'cls')
    self.cls_token = (nnx.Param(_embed_init(rngs.params(), (1, 1, dim)))
                      if pool == 'cls' else None)
    self.pos_embed = nnx.Param(_embed_init(rngs.params(), (1, num_tokens, dim)))
    self.embed_drop = nnx.Dropout(
        dropout_rate, rngs=rngs if dropout_rate > 0 else None)
    self.blocks = nnx.List([
        EncoderBlock(
            dim, num_heads, mlp_ratio, dropout_rate=dropout_rate,
            attention_dropout_rate=attention_dropout_rate,
            drop_path_rate=drop_path_rate * i / max(depth - 1, 1),
            dtype=dtype, rngs=rngs)
        for i in range(depth)
    ])
    self.norm = nnx.LayerNorm(dim, epsilon=1e-6, dtype=dtype, rngs=rngs)
    self._init_outputs(
        vit_feature_names(depth), dim, num_classes=num_classes,
        projection=projection, projection_dim=projection_dim, head_depth=head_depth, dtype=dtype,
        rngs=rngs)

  def _readout(self, x: jax.Array) -> jax.Array:
    """``[B, N, dim] -> [B, dim]``: the class token or the mean token."""
    return x[:, 0] if self.pool == 'cls' else jnp.mean(x, axis=1)

  def _block(self, index: int, name: str) -> nnx.Module:
    # 'block{l}' -> encoder block l; 'penultimate' -> the final LayerNorm.
    return self.norm if name == 'penultimate' else self.blocks[index]

  def encode(self, x: jax.Array) -> Features:
    """Per-block readouts of ``x [B, H, W, C]``, each ``[B, dim]``."""
    if x.shape[1:3] != (self.image_size, self.image_size):
      raise ValueError(f'expected {self.image_size}x{self.image_size} images, '
                       f'got shape {x.shape}')
    x = self.patch_embed(x)
    x = x.reshape(x.shape[0], -1, x.shape[-1])
    if self.cls_token is not None:
      cls = jnp.broadcast_to(self.cls_token[...].astype(x.dtype),
                             (x.shape[0], 1, x.shape[-1]))
      x = jnp.concatenate([cls, x], axis=1)
    x = self.embed_drop(x + self.pos_embed[...].astype(x.dtype))
    names = self.encoder_keys
    features = {}
    for i, block in enumerate(self.blocks):
      x = block(x)
      features[names[i]] = self._readout(x)
    features['penultimate'] = self._readout(self.norm(x))
    return features
