"""VGG-11 with BatchNorm for 32x32 inputs (Simonyan & Zisserman 2014; 002).

The CIFAR-sized VGG: eight 3x3 convs (bias, BN, ReLU) in five stages each
closed by a 2x2 stride-2 max-pool, so a 32x32 image ends as a 1x1x512 map; a
single linear classifier on those 512 features (9,231,114 parameters with 10
classes). The pools pad like ``'SAME'`` (identical for even sizes), so
28x28 inputs (MNIST) also end at 1x1; larger inputs are average-pooled to
``[B, 512]``.

Features: ``'conv1' .. 'conv8'``, global average pooling of each conv layer's
output after BN and ReLU (``[B, 64], [B, 128], [B, 256] x2, [B, 512] x4`` at
width 64), then ``'penultimate'``, the pooled output of the last max-pool,
``[B, 512]``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from nc_jax.models.core import Features, NCModel, global_avg_pool

# Channels per conv at width 64; 'M' is a 2x2 max-pool.
VGG_CONFIGS: dict[str, tuple[int | str, ...]] = {
    'vgg11': (64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'),
}


def vgg_feature_names(config: str = 'vgg11') -> tuple[str, ...]:
  """Encoder feature keys of ``VGG(config)``, input to output."""
  n = sum(1 for c in VGG_CONFIGS[config] if c != 'M')
  return tuple(f'conv{i}' for i in range(1, n + 1)) + ('penultimate',)


class ConvBNReLU(nnx.Module):
  """3x3 conv (with bias, as torchvision) -> BatchNorm -> ReLU."""

  def __init__(self, cin: int, cout: int, *, bn_momentum: float, dtype,
               rngs: nnx.Rngs):
    self.conv = nnx.Conv(
        cin, cout, (3, 3), padding=((1, 1), (1, 1)),
        kernel_init=nnx.initializers.variance_scaling(2.0, 'fan_out', 'normal'),
        dtype=dtype, rngs=rngs)
    self.bn = nnx.BatchNorm(cout, momentum=bn_momentum, epsilon=1e-5,
                            dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return nnx.relu(self.bn(self.conv(x)))


class VGG(NCModel):
  """VGG with BatchNorm for ``[B, H, W, in_channels]`` images."""

  def __init__(
      self,
      config: str = 'vgg11',
      *,
      num_classes: int,
      width: int = 64,
      in_channels: int = 3,
      bn_momentum: float = 0.9,
      projection: str | None = None,
      projection_dim: int = 128,
      head_depth: int = 0,
      dtype: jnp.dtype | None = None,
      rngs: nnx.Rngs,
  ):
    """Builds the network.

    Args:
      config: a key of `VGG_CONFIGS`.
      num_classes: C.
      width: first-conv width (64 in the paper); all convs scale with it.
      in_channels: image channels.
      bn_momentum: BatchNorm running-average decay (PyTorch's 0.1 = 0.9).
      projection: optional projection head, ``'linear'`` or ``'mlp'``.
      projection_dim: width of the projection output.
      dtype: computation dtype (params stay float32).
      rngs: parameter initialisation keys.
    """
    if config not in VGG_CONFIGS:
      raise ValueError(f'config must be one of {sorted(VGG_CONFIGS)}, '
                       f'got {config!r}')
    convs = []
    pool_after = []
    cin = in_channels
    for c in VGG_CONFIGS[config]:
      if c == 'M':
        pool_after[-1] = True
        continue
      cout = c * width // 64
      convs.append(ConvBNReLU(cin, cout, bn_momentum=bn_momentum, dtype=dtype,
                              rngs=rngs))
      pool_after.append(False)
      cin = cout
    self.convs = nnx.List(convs)
    self.pool_after = tuple(pool_after)
    self._init_outputs(
        vgg_feature_names(config), cin, num_classes=num_classes,
        projection=projection, projection_dim=projection_dim, head_depth=head_depth, dtype=dtype,
        rngs=rngs)

  def _block(self, index: int, name: str) -> nnx.Module:
    return self.convs[min(index, len(self.convs) - 1)]  # conv+BN+ReLU unit.

  def encode(self, x: jax.Array) -> Features:
    """Pooled conv outputs of ``x [B, H, W, C]``, each ``[B, d]``."""
    names = self.encoder_keys
    features = {}
    for i, (conv, pool) in enumerate(zip(self.convs, self.pool_after)):
      x = conv(x)
      features[names[i]] = global_avg_pool(x)
      if pool:
        x = nnx.max_pool(x, (2, 2), strides=(2, 2), padding='SAME')
    # At 32x32 the map is 1x1 here, so this is torchvision's flatten.
    features['penultimate'] = global_avg_pool(x)
    return features
