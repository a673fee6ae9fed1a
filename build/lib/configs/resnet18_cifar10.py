r"""ResNet-18 on CIFAR-10 (paper 000 sec. 6.2, Fig. 3 / Fig. 6 left).

Paper 000's recipe: torchvision-style ResNet-18 (CIFAR stem), SGD with
Nesterov momentum 0.9, peak learning rate 0.1 x batch / 256 after a 10-epoch
linear warm-up, cosine annealing, weight decay 8e-5, random crop (padding 4)
and horizontal flip; collapse of the penultimate layer and of every residual
block on train and test every 10 epochs. The paper does not state the number
of epochs; 200 is used here.

  python experiments/train.py --config=configs/resnet18_cifar10.py \
      --workdir=workdir/resnet18_cifar10

needs the original CIFAR-10 ("python version" pickles) under the data root;
``--config.dataset=cifar10_jpeg`` trains on the JPEG copy in ../shared/data
(report its numbers as "CIFAR-10 (JPEG copy)"). Run time: one GPU, about 20
minutes (an estimate, not measured: 2.9 GFLOP per training example from
XLA's cost analysis x 50,000 x 200 epochs at an assumed 30 TFLOP/s
sustained, plus evaluation); a 2-core CPU, about 4 days (measured 31
training examples/s, 27 min per epoch, and 17 min per train + test
evaluation on an idle machine; up to 2x longer under load; see
benchmarks/results_train.md).

Quick local variant (2,000 training images of the JPEG copy, width-16
ResNet-18, 3 epochs; about 2 minutes on a 2-core CPU):

  python experiments/train.py --config=configs/resnet18_cifar10.py:runlocal \
      --workdir=workdir/resnet18_cifar10_local
"""

import ml_collections

from configs import common
from nc_jax import train


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; ``arg='runlocal'`` gives the quick variant."""
  v = common.parse(arg)
  config = train.default_config()
  config.dataset = 'cifar10'
  config.model = 'resnet18'
  config.model_kwargs = ml_collections.ConfigDict({'stem': 'cifar'})

  config.loss = 'ce'
  config.optimizer = 'sgd'
  config.batch_size = 256
  config.learning_rate = 0.1 * config.batch_size / 256
  config.momentum = 0.9
  config.nesterov = True
  config.weight_decay = 8e-5
  config.schedule = 'cosine'
  config.warmup_epochs = 10.0
  config.num_epochs = 200
  config.crop_padding = 4
  config.flip = True

  config.eval_every = 10
  config.eval_batch_size = 1000
  config.checkpoint_every = 10

  if v.runlocal:
    config.dataset = 'cifar10_jpeg'
    config.train_examples_per_class = 200
    config.eval_test_examples = 1000
    config.model_kwargs.width = 16
    config.batch_size = 100
    config.learning_rate = 0.1
    config.warmup_epochs = 0.0
    config.num_epochs = 3
    config.eval_every = 1
    config.eval_batch_size = 500
    config.checkpoint_every = 1
  return common.apply(config, v)
