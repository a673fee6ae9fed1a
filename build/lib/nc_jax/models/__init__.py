"""Flax NNX models that return the features neural-collapse studies read.

Quick use::

    from flax import nnx
    from nc_jax import models
    model = models.create_model('resnet18', num_classes=10, rngs=nnx.Rngs(0))
    logits, features = model(images)            # images [B, 32, 32, 3]
    models.feature_names(model)                  # ('stem', 'layer1.0', ...)
    h = features['penultimate']                  # [B, 512]
    W, b = models.classifier_params(model)       # [10, 512], [10]

Every model returns ``(logits [B, C], {name: [B, d_name]})``; see
`nc_jax.models.core` for the contract and each model module for its keys.
"""

from nc_jax.models.core import (
    Features, NCModel, classifier_params, count_params, feature_names,
    global_avg_pool)
from nc_jax.models.factory import MODEL_NAMES, create_model
from nc_jax.models.heads import PROJECTION_KINDS, ProjectionHead
from nc_jax.models.mlp import MLP, mlp_feature_names
from nc_jax.models.resnet import (
    BasicBlock, Bottleneck, ResNet, resnet_feature_names)
from nc_jax.models.vgg import VGG, vgg_feature_names
from nc_jax.models.vit import (
    DEIT_TINY, VIT_CIFAR, VisionTransformer, vit_feature_names)
