r"""ResNet-18 on MNIST or Fashion-MNIST: the terminal phase (Papyan et al. 2020).

The recipe of Papyan, Han & Donoho (2020), the reference setting of the
neural-collapse papers (001 and 003 build on it): ResNet-18 (CIFAR stem, one
input channel), cross-entropy, SGD (momentum 0.9, weight decay 5e-4), batch
128, 350 epochs, learning rate 0.05 divided by 10 at epochs 117 and 233, no
augmentation; collapse of the penultimate layer and of every residual block
on train and test every 10 epochs, well past 100% train accuracy.

  python experiments/train.py --config=configs/resnet18_papyan.py \
      --workdir=workdir/resnet18_mnist
  python experiments/train.py --config=configs/resnet18_papyan.py:fashion_mnist \
      --workdir=workdir/resnet18_fashion_mnist

Run time: one GPU, about 30 minutes (an estimate, not measured: ~2.2 GFLOP
per training example at 28 x 28 x 1 (XLA's cost analysis of the 32 x 32 x 3
step, scaled by pixels) x 60,000 x 350 epochs at an assumed 30 TFLOP/s
sustained, plus evaluation); a 2-core CPU, about 6-9 days (the measured
CPU ResNet-18 throughput, 23-31 examples/s at 32 x 32 x 3 depending on the
load, scaled by pixels; see benchmarks/results_train.md).

Quick local variant (2,000 training images, width-16 ResNet-18, 3 epochs;
about 2 minutes on a 2-core CPU):

  python experiments/train.py --config=configs/resnet18_papyan.py:runlocal \
      --workdir=workdir/resnet18_mnist_local

Variants (``:ARG``, comma-separated): ``mnist`` (default) or
``fashion_mnist``; ``runlocal``; ``key=value`` overrides.
"""

import ml_collections

from configs import common
from nc_jax import train


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; ``arg`` as in the module docstring."""
  v = common.parse(arg, choices={'dataset': ('mnist', 'fashion_mnist')})
  config = common.trainer(
      v.choice('dataset', 'mnist'), 'resnet18', epochs=350,
      model_kwargs=dict(stem='cifar'),
      optimizer=train.optimizer('sgd', learning_rate=0.05, momentum=0.9,
                                weight_decay=5e-4),
      schedule=train.schedule('step', epochs=(117, 233), factor=0.1))
  config.evals.every = config.checkpoint.every = 10

  if v.runlocal:
    config.data.update(train_split='train[:2000]', test_split='test[:1000]')
    with config.model.kwargs.unlocked():  # A key the default lacks.
      config.model.kwargs.width = 16
    config.batch_size = 100
    config.num_epochs = 3
    config.schedule.kwargs.epochs = (2,)
    config.evals.update(every=1, batch_size=500)
    config.checkpoint.every = 1
  return common.apply(config, v)
