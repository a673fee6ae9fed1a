"""ResNet-18/34/50 (He et al. 2016) with a CIFAR or an ImageNet stem.

Stems: ``'cifar'`` is a 3x3 stride-1 conv, BN, ReLU and no max-pool (the
usual CIFAR ResNet, 11,173,962 parameters for ResNet-18 with 10 classes);
``'imagenet'`` is torchvision's 7x7 stride-2 conv, BN, ReLU, 3x3 stride-2
max-pool (25,557,032 parameters for ResNet-50 with 1000 classes). Bottlenecks
stride in the 3x3 conv (torchvision's "v1.5"). Convs have no bias; padding is
PyTorch's (k // 2 on each side), so layouts match torchvision checkpoints.

Features: global average pooling of the stem output (after the max-pool for
the ImageNet stem) and of every residual block output, ``'stem'``, ``'layer1.0'``, ``'layer1.1'``, ... (stage s, block
b, torchvision names), where the last block is ``'penultimate'`` (its pooled
output is exactly the classifier input). Widths: stem ``w``, stage s
``w * 2**(s-1) * e`` with ``w = width`` (64) and expansion ``e`` (1 for
18/34, 4 for 50). ResNet-18 keys:
``stem, layer1.0, layer1.1, layer2.0, layer2.1, layer3.0, layer3.1,
layer4.0, penultimate``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from nc_jax.models.core import Features, NCModel, global_avg_pool

STEMS = ('cifar', 'imagenet')

_kaiming_out = nnx.initializers.variance_scaling(2.0, 'fan_out', 'normal')


def _conv(cin: int, cout: int, k: int, stride: int, *, dtype, rngs) -> nnx.Conv:
  pad = k // 2
  return nnx.Conv(cin, cout, (k, k), strides=(stride, stride),
                  padding=((pad, pad), (pad, pad)), use_bias=False,
                  kernel_init=_kaiming_out, dtype=dtype, rngs=rngs)


def _bn(c: int, *, momentum: float, zero: bool = False, dtype,
        rngs) -> nnx.BatchNorm:
  scale_init = (nnx.initializers.zeros_init() if zero
                else nnx.initializers.ones_init())
  return nnx.BatchNorm(c, momentum=momentum, epsilon=1e-5,
                       scale_init=scale_init, dtype=dtype, rngs=rngs)


class Shortcut(nnx.Module):
  """1x1 strided conv + BN projection for blocks that change shape."""

  def __init__(self, cin: int, cout: int, stride: int, *, bn_momentum: float,
               dtype, rngs: nnx.Rngs):
    self.conv = _conv(cin, cout, 1, stride, dtype=dtype, rngs=rngs)
    self.bn = _bn(cout, momentum=bn_momentum, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.bn(self.conv(x))


class BasicBlock(nnx.Module):
  """Two 3x3 convs with BN; ``[B, H, W, cin] -> [B, H/s, W/s, planes]``."""

  expansion = 1

  def __init__(self, cin: int, planes: int, stride: int, *,
               bn_momentum: float, zero_init_residual: bool, dtype,
               rngs: nnx.Rngs):
    cout = planes * self.expansion
    self.conv1 = _conv(cin, planes, 3, stride, dtype=dtype, rngs=rngs)
    self.bn1 = _bn(planes, momentum=bn_momentum, dtype=dtype, rngs=rngs)
    self.conv2 = _conv(planes, cout, 3, 1, dtype=dtype, rngs=rngs)
    self.bn2 = _bn(cout, momentum=bn_momentum, zero=zero_init_residual,
                   dtype=dtype, rngs=rngs)
    self.shortcut = (
        Shortcut(cin, cout, stride, bn_momentum=bn_momentum, dtype=dtype,
                 rngs=rngs) if stride != 1 or cin != cout else None)

  def __call__(self, x: jax.Array) -> jax.Array:
    y = nnx.relu(self.bn1(self.conv1(x)))
    y = self.bn2(self.conv2(y))
    skip = x if self.shortcut is None else self.shortcut(x)
    return nnx.relu(y + skip)


class Bottleneck(nnx.Module):
  """1x1 -> 3x3 (strided) -> 1x1 convs with BN; output ``4 * planes`` wide."""

  expansion = 4

  def __init__(self, cin: int, planes: int, stride: int, *,
               bn_momentum: float, zero_init_residual: bool, dtype,
               rngs: nnx.Rngs):
    cout = planes * self.expansion
    self.conv1 = _conv(cin, planes, 1, 1, dtype=dtype, rngs=rngs)
    self.bn1 = _bn(planes, momentum=bn_momentum, dtype=dtype, rngs=rngs)
    self.conv2 = _conv(planes, planes, 3, stride, dtype=dtype, rngs=rngs)
    self.bn2 = _bn(planes, momentum=bn_momentum, dtype=dtype, rngs=rngs)
    self.conv3 = _conv(planes, cout, 1, 1, dtype=dtype, rngs=rngs)
    self.bn3 = _bn(cout, momentum=bn_momentum, zero=zero_init_residual,
                   dtype=dtype, rngs=rngs)
    self.shortcut = (
        Shortcut(cin, cout, stride, bn_momentum=bn_momentum, dtype=dtype,
                 rngs=rngs) if stride != 1 or cin != cout else None)

  def __call__(self, x: jax.Array) -> jax.Array:
    y = nnx.relu(self.bn1(self.conv1(x)))
    y = nnx.relu(self.bn2(self.conv2(y)))
    y = self.bn3(self.conv3(y))
    skip = x if self.shortcut is None else self.shortcut(x)
    return nnx.relu(y + skip)


# depth -> (block type, blocks per stage)
RESNET_SPECS: dict[int, tuple[type[nnx.Module], tuple[int, ...]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
}


def resnet_feature_names(depth: int) -> tuple[str, ...]:
  """Encoder feature keys of ``ResNet(depth)``, input to output."""
  _, stages = RESNET_SPECS[depth]
  names = ['stem'] + [f'layer{s + 1}.{b}' for s, n in enumerate(stages)
                      for b in range(n)]
  return tuple(names[:-1]) + ('penultimate',)


class Stem(nnx.Module):
  """CIFAR (3x3/1) or ImageNet (7x7/2 + max-pool) input stem."""

  def __init__(self, in_channels: int, width: int, kind: str, *,
               bn_momentum: float, dtype, rngs: nnx.Rngs):
    if kind not in STEMS:
      raise ValueError(f'stem must be one of {STEMS}, got {kind!r}')
    self.kind = kind
    k, s = (3, 1) if kind == 'cifar' else (7, 2)
    self.conv = _conv(in_channels, width, k, s, dtype=dtype, rngs=rngs)
    self.bn = _bn(width, momentum=bn_momentum, dtype=dtype, rngs=rngs)

  def __call__(self, x: jax.Array) -> jax.Array:
    x = nnx.relu(self.bn(self.conv(x)))
    if self.kind == 'imagenet':
      x = nnx.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    return x


class ResNet(NCModel):
  """ResNet-18/34/50 for ``[B, H, W, in_channels]`` images."""

  def __init__(
      self,
      depth: int = 18,
      *,
      num_classes: int,
      stem: str = 'cifar',
      width: int = 64,
      in_channels: int = 3,
      bn_momentum: float = 0.9,
      zero_init_residual: bool = False,
      projection: str | None = None,
      projection_dim: int = 128,
      head_depth: int = 0,
      dtype: jnp.dtype | None = None,
      rngs: nnx.Rngs,
  ):
    """Builds the network.

    Args:
      depth: 18, 34 or 50.
      num_classes: C.
      stem: ``'cifar'`` (32 px inputs) or ``'imagenet'`` (224 px).
      width: stem / first-stage width (64 in the paper; small for tests).
      in_channels: image channels.
      bn_momentum: BatchNorm running-average decay (PyTorch's 0.1 = 0.9).
      zero_init_residual: zero the last BN scale of each block (Goyal et al.).
      projection: optional projection head, ``'linear'`` or ``'mlp'``.
      projection_dim: width of the projection output.
      dtype: computation dtype (params stay float32).
      rngs: parameter initialisation keys.
    """
    if depth not in RESNET_SPECS:
      raise ValueError(f'depth must be one of {sorted(RESNET_SPECS)}, '
                       f'got {depth}')
    block_cls, stages = RESNET_SPECS[depth]
    self.depth = depth
    self.stem = Stem(in_channels, width, stem, bn_momentum=bn_momentum,
                     dtype=dtype, rngs=rngs)
    blocks = []
    cin = width
    for s, n in enumerate(stages):
      planes = width * 2**s
      for b in range(n):
        stride = 2 if (s > 0 and b == 0) else 1
        blocks.append(block_cls(
            cin, planes, stride, bn_momentum=bn_momentum,
            zero_init_residual=zero_init_residual, dtype=dtype, rngs=rngs))
        cin = planes * block_cls.expansion
    self.blocks = nnx.List(blocks)
    self._init_outputs(
        resnet_feature_names(depth), cin, num_classes=num_classes,
        projection=projection, projection_dim=projection_dim, head_depth=head_depth, dtype=dtype,
        rngs=rngs)

  def _block(self, index: int, name: str) -> nnx.Module:
    # 'stem', then 'layerS.B' -> residual block; 'penultimate' -> the last.
    return self.stem if index == 0 else self.blocks[index - 1]

  def encode(self, x: jax.Array) -> Features:
    """Pooled stem and block outputs of ``x [B, H, W, C]``, each ``[B, d]``."""
    names = self.encoder_keys
    x = self.stem(x)
    features = {names[0]: global_avg_pool(x)}
    for i, block in enumerate(self.blocks):
      x = block(x)
      features[names[i + 1]] = global_avg_pool(x)
    return features
