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
``--config.data.name=cifar10_jpeg`` trains on the JPEG copy in ../shared/data
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
  batch_size = 256
  config = common.trainer(
      'cifar10', 'resnet18', epochs=200, model_kwargs=dict(stem='cifar'),
      optimizer=train.optimizer('sgd', learning_rate=0.1 * batch_size / 256,
                                momentum=0.9, nesterov=True,
                                weight_decay=8e-5),
      schedule=train.schedule('cosine', warmup_epochs=10.0),
      batch_size=batch_size)
  config.augment.update(crop_padding=4, flip=True)
  config.evals.every = config.checkpoint.every = 10

  if v.runlocal:
    config.data.update(name='cifar10_jpeg', examples_per_class=200)
    with config.model.kwargs.unlocked():  # A key the default lacks.
      config.model.kwargs.width = 16
    config.batch_size = 100
    config.optimizer.learning_rate = 0.1
    config.schedule.warmup_epochs = 0.0
    config.num_epochs = 3
    config.evals.update(every=1, batch_size=500, test_examples=1000)
    config.checkpoint.every = 1
  return common.apply(config, v)
