r"""A 3 x 1024 MLP on 1,000 MNIST images: cascading collapse (paper 002 sec. 5).

Paper 002's setting: a fully connected ReLU network with 3 hidden layers of
1,024 units, trained on 1,000 MNIST training images (100 per class) with
cross-entropy, SGD (momentum 0.9, learning rate 0.001, cosine decay) for
80,000 iterations (batch 128: 7 steps per epoch, 11,429 epochs). Collapse is
tracked at all three hidden layers on the 1,000 training images and the full
test set (the paper uses 200 test images) every 200 epochs, showing the last
layer collapsing first and most. Weight decay is not stated; 0 here.

  python experiments/train.py --config=configs/mlp_mnist.py \
      --workdir=workdir/mlp_mnist

Run time: about 35 minutes on a 2-core CPU (measured: the 300-epoch
``:runlocal`` variant takes 52 s, ~0.17 s per 7-step epoch, plus ~57
evaluations of 11,000 images at ~2 s); about 5 minutes on one GPU (an
estimate: 16 MFLOP per training example (XLA's cost analysis) x 10.2M
examples is 0.16 PFLOP, seconds of GPU compute: the run is bound by per-step
and per-epoch overhead, ~80,000 steps and 11,429 epochs).

Quick local variant (300 epochs at learning rate 0.01, about a minute on a
2-core CPU):

  python experiments/train.py --config=configs/mlp_mnist.py:runlocal \
      --workdir=workdir/mlp_mnist_local
"""

import ml_collections
from ml_collections import config_dict

from configs import common
from nc_jax import train


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; ``arg='runlocal'`` gives the quick variant."""
  v = common.parse(arg)
  config = common.trainer(
      'mnist', 'mlp', epochs=11_429,  # 80,000 iterations, 7 per epoch.
      model_kwargs=dict(width=1024, depth=3,
                        norm=config_dict.placeholder(str)),  # None | 'batch'
      optimizer=train.optimizer('sgd', learning_rate=0.001, momentum=0.9,
                                weight_decay=0.0))
  config.data.examples_per_class = 100
  config.evals.every = 200
  config.checkpoint.every = 1000
  config.log.every_steps = 100

  if v.runlocal:
    config.optimizer.learning_rate = 0.01
    config.num_epochs = 300
    config.evals.every = 30
    config.checkpoint.every = 100
  return common.apply(config, v)
