r"""ResNet-50 on CIFAR-100 (paper 001 sec. 3, Table 1 and Fig. 1).

Paper 001's pre-training: ResNet-50 (CIFAR stem), 200 epochs, SGD (momentum
0.9, initial learning rate 0.1, weight decay 5e-4), batch 128, random crop
(padding 4) and flip; collapse (NC1, CDNV, numerical rank) of the penultimate
layer and of every residual block on train and test every 10 epochs. The
paper anneals with SGDR (warm restarts, minimum 1e-4); this config uses one
cosine cycle. Per-class Sigma_W at 2,048 dims x 100 classes would need 1.7 GB
per statistic, so every layer uses the pooled layout and numerical_rank is
off.

Variants (``:arg``, comma-separated): ``supcon`` (SupCon with an MLP
projection head, temperature 0.1, two augmented views per image and an
online linear probe for accuracy; 001 Table 1), ``mse`` (one-hot square
loss), ``runlocal``; e.g. ``--config=configs/resnet50_cifar100.py:supcon``.

  python experiments/train.py --config=configs/resnet50_cifar100.py \
      --workdir=workdir/resnet50_cifar100

needs CIFAR-100 ("python version" pickles, cifar-100-python/) under the data
root. Run time: one GPU, about 45 minutes (an estimate, not measured: 7.4
GFLOP per training example from XLA's cost analysis x 50,000 x 200 epochs at
an assumed 30 TFLOP/s sustained, plus evaluation); a 2-core CPU, about
10-14 days (the measured ResNet-18 CPU throughput scaled by FLOPs).

Quick local variant (1,000 images of the CIFAR-10 JPEG copy, width-8
ResNet-50, 2 epochs; about 2 minutes on a 2-core CPU):

  python experiments/train.py --config=configs/resnet50_cifar100.py:runlocal \
      --workdir=workdir/resnet50_local
"""

import ml_collections
from ml_collections import config_dict

from configs import common
from nc_jax import train


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; ``arg`` is a comma-separated list of variants (docstring)."""
  v = common.parse(arg, flags=('runlocal', 'supcon', 'mse'))
  config = common.trainer(
      'cifar100', 'resnet50', epochs=200,
      model_kwargs=dict(stem='cifar', projection=config_dict.placeholder(str),
                        projection_dim=128),
      optimizer=train.optimizer('sgd', learning_rate=0.1, momentum=0.9,
                                weight_decay=5e-4))
  config.augment.update(crop_padding=4, flip=True)
  config.evals.update(every=10, batch_size=500)
  config.checkpoint.every = 10

  if v.supcon:
    config.loss = train.loss('supcon', temperature=0.1)
    config.model.kwargs.projection = 'mlp'
  if v.mse:
    config.loss = train.loss('mse')
  if v.runlocal:
    config.data.update(name='cifar10_jpeg', examples_per_class=100)
    config.evals.test_examples = 500
    with config.model.kwargs.unlocked():  # A key the default lacks.
      config.model.kwargs.width = 8
    config.batch_size = 100
    config.num_epochs = 2
    config.evals.every = config.checkpoint.every = 1
  return common.apply(config, v)
