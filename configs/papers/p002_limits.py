r"""Paper 002 reproduced: where neural collapse fails to explain generalization.

  python experiments/reproduce.py --config=configs/papers/p002_limits.py --workdir=runs/p002
  python experiments/reproduce.py --config=configs/papers/p002_limits.py:runlocal \
      --workdir=runs/p002_local          # < 90 s, the test suite runs it
  python experiments/reproduce.py --config=configs/papers/p002_limits.py:gpu \
      --workdir=runs/p002_gpu            # the paper's settings

Claims (the package nc_jax/studies/papers/p002_limits holds the criteria):
  002a  train collapse without test collapse (train, strong and weak test
        variance over training);
  002b  more training data: weaker train collapse, stronger test collapse
        (each size trained to a fixed training loss);
  002c  super-class (parity) pretraining: checkpoints with more collapse
        transfer worse to the 10 classes after full fine-tuning;
  002d  cascading collapse: the last hidden layer first and furthest.

Plain (CPU scale, real MNIST / Fashion-MNIST from ../shared/data), 90 runs:
3 seeds of the cascade, 3 seeds per training-set size, 3 parity pretraining
chains of 24 fine-tuning runs each (every claim's seeds gate asks for >= 3).
About 30 minutes on a 2-core CPU: an estimate from the first pass (35 runs:
2 seeds, 1 pretraining chain; its runs' `seconds` in results.json sum to 20.9
min), plus one cascade run (~3 min), 4 size runs (~2 min) and 2 pretrainings
(~4 min); the 72 fine-tuning runs cost about what the first pass's 24 did,
since they now evaluate every 50 epochs instead of every epoch (their final
numbers are unchanged: evaluation does not touch training). To be measured
by the rerun. The paper's 3 x 1024 MLP on 1,000 MNIST images for
002a/002d and for the parity pretraining (lr 0.01 instead of 0.001, 1,000 and
700 epochs = 7,000 and 4,900 iterations instead of 80k and 100k, to fit the
CPU); a 3 x 512 MLP on Fashion-MNIST subsets of 1k-8k images trained to a
running training loss < 1e-3 for 002b (the paper: VGG-11-BN and ResNet-18 to
1e-6). Each claim's "what we ran" sentence is computed from the variant's
config (nc_jax/studies/papers/p002_limits/setting.py).

:gpu (the paper's settings): lr 0.001, 80k / 100k iterations for the MNIST
MLPs; VGG-11-BN on Fashion-MNIST subsets (6k-60k) to loss 1e-6; the CIFAR-10
objects-vs-animals transfer with ResNet-18 (8 classes, deer and dog dropped;
19,000 pretraining images from the first 25,000, fine-tuning on 10,000 of the
next), needs CIFAR-10 under the data root; 3 seeds per group, 3 pretraining
chains per transfer group (219 runs). Run time on one modern GPU: about 13
hours (an estimate, not run: the first pass's estimate of about 5 hours for 2
seeds and one pretraining chain per group, scaled by the seeds; the MLP runs
are bound by per-step overhead, ~80-100k steps each at ~1 ms; VGG-11-BN ~0.3
GFLOP per 28x28 image x 3 x 60k x ~100 epochs per size; each CIFAR ResNet-18
pretraining 100k steps of batch 128 at 0.56 GFLOP per image).
"""

import ml_collections

from configs import common
from nc_jax import train


def _run(dataset: str, model: str, model_kwargs: dict, lr: float, epochs: int, *,
         plots: bool = True, **groups) -> ml_collections.ConfigDict:
  """A run of the study: SGD (momentum 0.9, no weight decay), cosine schedule,
  batch 128 (the defaults); quiet (checkpoints at the end and at
  ``checkpoint.epochs`` only), with the run's plots unless ``plots=False``.
  ``groups`` as in `common.trainer` (``data__examples_per_class=100``)."""
  return common.trainer(
      dataset, model, epochs=epochs, model_kwargs=model_kwargs,
      optimizer=train.optimizer('sgd', learning_rate=lr, momentum=0.9, weight_decay=0.0),
      quiet=True, log__plots=plots, **groups)


def _mlp(dataset: str, width: int, lr: float, epochs: int,
         **kwargs) -> ml_collections.ConfigDict:
  """`_run` of the paper's MLP: 3 hidden layers of ``width``."""
  return _run(dataset, 'mlp', dict(width=width, depth=3), lr, epochs, **kwargs)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The study's config; ``arg`` as in the module docstring."""
  v = common.parse(arg, flags=('runlocal', 'gpu'))
  config = ml_collections.ConfigDict()
  config.study = 'p002_limits'
  config.variant = 'runlocal' if v.runlocal else 'gpu' if v.gpu else 'cpu'
  config.only = ''
  # Seeds per group: every claim is about a difference, an order or a trend,
  # which REPRODUCTIONS.md judges on >= 3 seeds (the claims' `seeds` gates).
  config.cascade_seeds = (0, 1, 2)  # 002a, 002d
  config.size_seeds = (0, 1, 2)  # 002b: per training-set size
  config.kmeans_restarts = 10

  # 002a / 002d: the 3 x 1024 MLP on 1,000 MNIST images, checkpointed (the
  # checkpoints of checkpoint.epochs are kept for good).
  c = _mlp('mnist', 1024, 0.01, 1000, data__examples_per_class=100,
           evals__every=50, evals__test_examples=2000, checkpoint__init=True,
           checkpoint__epochs=(10, 30, 100, 200, 300, 500, 700, 1000))
  config.cascade = c
  config.cascade_layers = ('layer1', 'layer2', 'penultimate')

  # 002b: train-size sweep, each run stopped at a training loss.
  s = _mlp('fashion_mnist', 512, 0.01, 400, stop_at_train_loss=1e-3,
           evals__every=20, evals__test_examples=5000)
  config.size = s
  config.sizes = (1000, 2000, 4000, 8000)

  # 002c: parity pretraining, then full fine-tuning of its checkpoints.
  p = _mlp('mnist', 1024, 0.01, 700,
           data__train_split='train[:1000]',  # The first 1,000 images, as the paper.
           data__test_split='test[:200]', data__label_map='superclass:mnist_parity',
           evals__every=50, checkpoint__epochs=(1, 10, 30, 100, 300, 700))
  f = _mlp('mnist', 1024, 0.01, 100,
           data__train_split='train[1000:1500]',  # 500 new images.
           init__finetune='full', evals__track_collapse=False, plots=False,
           evals__sets__val=dict(split='train[1500:1600]'),
           # Only the final numbers are read: evaluating the 10,600 images every
           # epoch was most of a fine-tuning run's time (evaluation does not
           # change training).
           evals__every=50)
  config.transfer = ml_collections.ConfigDict()
  config.transfer.mnist = ml_collections.ConfigDict(dict(
      pretrain=p, finetune=f, epochs=(1, 10, 30, 100, 300, 700),
      lrs=(0.0005, 0.005, 0.05, 0.25),
      seeds=(0, 1, 2)))  # Pretraining seeds (each chain fine-tuned with its seed).

  if v.runlocal:  # One seed per group: the claims' seeds gates fail (structure only).
    config.cascade_seeds = config.size_seeds = (0,)
    config.transfer.mnist.seeds = (0,)
    config.kmeans_restarts = 2
    c.data.examples_per_class, c.num_epochs, c.evals.every = 20, 6, 3
    c.model.kwargs.width = 64
    c.evals.test_examples = 200
    c.checkpoint.epochs = (2, 4, 6)
    s.model.kwargs.width, s.num_epochs, s.evals.every = 64, 4, 2
    s.evals.test_examples = 200
    config.sizes = (200, 400, 800)
    p.data.train_split, p.num_epochs, p.evals.every = 'train[:300]', 4, 2
    p.model.kwargs.width = 64
    p.checkpoint.epochs = (1, 2, 4)
    f.model.kwargs.width = 64
    f.data.train_split, f.num_epochs = 'train[1000:1200]', 2
    f.data.test_split = 'test[:500]'
    config.transfer.mnist.epochs = (1, 2, 4)
    config.transfer.mnist.lrs = (0.005, 0.05)
  elif v.gpu:
    c.optimizer.learning_rate, c.num_epochs, c.evals.every = 0.001, 11_429, 200  # 80k iterations
    c.checkpoint.epochs = (10, 100, 500, 1000, 2000, 4000, 6000, 8000, 11_429)
    c.evals.test_examples = 0
    s.model.name = 'vgg11_bn'
    s.model.kwargs = ml_collections.ConfigDict(dict(width=64))
    s.stop_at_train_loss, s.num_epochs = 1e-6, 2000
    config.sizes = (6000, 12000, 30000, 60000)
    p.optimizer.learning_rate, p.num_epochs = 0.001, 14_286  # 100k iterations
    p.checkpoint.epochs = (10, 100, 1000, 3000, 7000, 14_286)
    config.transfer.mnist.epochs = p.checkpoint.epochs
    config.transfer.mnist.lrs = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25)
    resnet = dict(width=64, stem='cifar')
    cp = _run('cifar10', 'resnet18', resnet, 0.1, 640,  # 100k iterations of 156 steps
              data__label_map='classes:0,1,2,3,6,7,8,9|superclass:cifar10_animals8',
              data__train_split='train[:25000]',  # disjoint from the fine-tuning images
              data__examples_per_class=9_500,  # 2 super-classes x 9,500 = 19,000 images
              checkpoint__epochs=(5, 20, 80, 200, 400, 640))
    cf = _run('cifar10', 'resnet18', resnet, 0.01, 100, plots=False,
              data__label_map='classes:0,1,2,3,6,7,8,9',
              data__train_split='train[25000:35000]', init__finetune='full',
              evals__track_collapse=False,
              evals__sets__val=dict(split='train[35000:37000]'), evals__every=50)
    config.transfer.cifar = ml_collections.ConfigDict(dict(
        pretrain=cp, finetune=cf, epochs=cp.checkpoint.epochs,
        lrs=(0.0005, 0.005, 0.05, 0.25), seeds=(0, 1, 2)))
  return common.apply(config, v)
