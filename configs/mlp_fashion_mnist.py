r"""A 6 x 1024 MLP with BatchNorm on Fashion-MNIST: layer-wise collapse.

Paper 001 Fig. 9 follows NC1 through the layers of MLPs trained on MNIST,
Fashion-MNIST and CIFAR-10 (log NC1 decaying roughly linearly with depth, He
& Su 2022) but gives no hyper-parameters for them; this config is this
project's choice in 001's style (every layer the same width, affine + BN +
ReLU): 6 hidden layers of 1,024 units, cross-entropy, SGD (momentum 0.9,
learning rate 0.05, weight decay 5e-4, cosine decay after a 2-epoch warm-up),
batch 128, 100 epochs; collapse at all six layers every 5 epochs.

  python experiments/train.py --config=configs/mlp_fashion_mnist.py \
      --workdir=workdir/mlp_fashion_mnist

Run time: about 30-40 minutes on a 2-core CPU (scaled from the measured
3 x 1024 MLP throughput by FLOPs, plus evaluation); a few minutes on one GPU
(an estimate: ~36 MFLOP per training example x 6M examples is 0.2 PFLOP;
the run is bound by per-step overhead).

Quick local variant (5,000 images, 5 epochs; under a minute on a 2-core CPU):

  python experiments/train.py --config=configs/mlp_fashion_mnist.py:runlocal \
      --workdir=workdir/mlp_fashion_mnist_local
"""

import ml_collections

from configs import common
from nc_jax import train


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; ``arg='runlocal'`` gives the quick variant."""
  v = common.parse(arg)
  config = common.trainer(
      'fashion_mnist', 'mlp', epochs=100,
      model_kwargs=dict(width=1024, depth=6, norm='batch'),
      optimizer=train.optimizer('sgd', learning_rate=0.05, momentum=0.9,
                                weight_decay=5e-4),
      schedule=train.schedule('cosine', warmup_epochs=2.0))
  config.evals.every = config.checkpoint.every = 5

  if v.runlocal:
    config.data.update(train_split='train[:5000]', test_split='test[:2000]')
    config.model.kwargs.width = 256
    config.num_epochs = 5
    config.schedule.warmup_epochs = 0.0
    config.evals.every = config.checkpoint.every = 1
  return common.apply(config, v)
