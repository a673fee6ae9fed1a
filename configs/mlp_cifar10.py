r"""A 12 x 3072 MLP with BatchNorm on CIFAR-10 (paper 001 sec. 3.2, Fig. 5, 9).

Paper 001's layer-wise study uses a 12-layer MLP of width 3,072 (affine +
BatchNorm + ReLU per layer, every layer the same width so layers compare
fairly) and reads NC1 at every layer. Its pre-training recipe: 200 epochs,
SGD (momentum 0.9, initial learning rate 0.1; SGDR in the paper, one cosine
cycle here), weight decay 5e-4, batch 128. No augmentation (an MLP is not
translation invariant; the paper does not say). Collapse at all 12 layers
every 10 epochs (pooled Sigma_W: 3,072^2 per layer).

  python experiments/train.py --config=configs/mlp_cifar10.py \
      --workdir=workdir/mlp_cifar10

needs the original CIFAR-10 pickles (``--config.data.name=cifar10_jpeg`` for
the JPEG copy). Run time: one GPU, about 10 minutes (an estimate, not
measured: ~0.68 GFLOP per training example (113M weights x 6) x 50,000 x 200
epochs at an assumed 30 TFLOP/s sustained); a 2-core CPU, about 12-17
hours (the measured 3 x 1024 MLP throughput, 120-165 GFLOP/s, scaled by
FLOPs, plus 20 evaluations with 12 tracked layers of width 3,072).

Quick local variant (2,000 images of the JPEG copy, 4 x 512, 3 epochs; about
a minute on a 2-core CPU):

  python experiments/train.py --config=configs/mlp_cifar10.py:runlocal \
      --workdir=workdir/mlp_cifar10_local
"""

import ml_collections

from configs import common
from nc_jax import train


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; ``arg='runlocal'`` gives the quick variant."""
  v = common.parse(arg)
  config = common.trainer(
      'cifar10', 'mlp', epochs=200,
      model_kwargs=dict(width=3072, depth=12, norm='batch'),
      optimizer=train.optimizer('sgd', learning_rate=0.1, momentum=0.9,
                                weight_decay=5e-4))
  config.evals.update(every=10, batch_size=500)
  config.checkpoint.every = 10

  if v.runlocal:
    config.data.update(name='cifar10_jpeg', examples_per_class=200)
    config.evals.test_examples = 1000
    config.model.kwargs.update(width=512, depth=4)
    config.num_epochs = 3
    config.evals.every = config.checkpoint.every = 1
  return common.apply(config, v)
