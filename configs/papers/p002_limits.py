r"""Paper 002 reproduced: where neural collapse fails to explain generalization.

  python experiments/reproduce.py --config=configs/papers/p002_limits.py --workdir=runs/p002
  python experiments/reproduce.py --config=configs/papers/p002_limits.py:runlocal \
      --workdir=runs/p002_local          # minutes; the test suite runs it
  python experiments/reproduce.py --config=configs/papers/p002_limits.py:gpu \
      --workdir=runs/p002_gpu            # the paper's settings

Claims (the package nc_jax/studies/papers/p002_limits holds the criteria):
  002a  train collapse without test collapse (train, strong and weak test
        variance over training, around the final model's means);
  002b  more training data: weaker train collapse, stronger test collapse
        (every size seeing as many training images);
  002c  super-class (parity) pretraining: checkpoints with more collapse
        transfer worse to the 10 classes after full fine-tuning;
  002d  cascading collapse: the last hidden layer first and furthest.

Every claim presupposes train collapse. A pre-study (below: `CANDIDATES`,
the rule, the choice) picks, by the train variance alone, the setting every
run uses; each claim is gated on the collapse happening in its runs.

Plain (CPU scale, real MNIST / Fashion-MNIST from ../shared/data), 84 runs:
the 6 pre-study runs, 3 seeds of the cascade, 3 seeds per training-set size,
3 parity pretraining chains of 20 fine-tuning runs each (every claim's seeds
gate asks for >= 3). Measured: 79 minutes of run time on this 2-core CPU (the
runs' `seconds` in results.json: the pre-study 21, the rest 58; tests shared
the CPU for part of it). The paper's 3 x 1024 MLP on 1,000 MNIST images
for 002a/002d and the parity pretraining, 256 epochs (1,792 iterations; the
paper: 80k-100k at lr 0.001) in the chosen setting (lr 0.1, weight decay
5e-3, BatchNorm); a 3 x 512 MLP on Fashion-MNIST subsets of 500-4,000 images
for 002b (the paper: VGG-11-BN and ResNet-18 to a training loss of 1e-6).
Each claim's "what we ran" sentence is computed from the variant's config
(nc_jax/studies/papers/p002_limits/setting.py).

:gpu (the paper's lengths and data, in the setting the CPU pre-study chose;
the pre-study reruns at the paper's length, and the claims' gate checks its
choice holds there): 80k / 100k iterations for the MNIST MLPs; VGG-11-BN on
Fashion-MNIST subsets (6k-60k), each seeing 80k x 128 images; the CIFAR-10
objects-vs-animals transfer with ResNet-18 (8 classes, deer and dog dropped;
19,000 pretraining images from the first 25,000, fine-tuning on 10,000 of the
next, weight decay 5e-4), needs CIFAR-10 under the data root; 3 seeds per
group, 3 pretraining chains per transfer group (225 runs). Run time on one
modern GPU: about 14 hours (an estimate, not run: the first pass's estimate
of about 13 hours for 219 runs, plus the pre-study's 6 MLP runs of 80k steps
at ~1 ms; the MLP runs are bound by per-step overhead; VGG-11-BN ~0.3 GFLOP
per 28x28 image; each CIFAR ResNet-18 pretraining 100k steps of batch 128 at
0.56 GFLOP per image).
"""

import ml_collections

from configs import common
from nc_jax import train
from nc_jax.studies import sweep
from nc_jax.studies.papers.p002_limits import runs

# The pre-study (issue 24): every claim of paper 002 presupposes train
# collapse, which the first pass (lr 0.01, no weight decay, no normalisation)
# never reached. Candidate settings within the paper's protocol (SGD momentum
# 0.9, batch 128, cosine, cross-entropy, no augmentation; the weight decay it
# leaves unstated as in Papyan et al., 5e-4; BatchNorm as in its VGG-11-BN;
# its two learning rates, 0.01 for VGG and 0.1 for ResNets), listed nearest
# the first pass first. Each is run once on the cascade's data and length at
# `PRESTUDY_SEED` (not a study seed). The rule, fixed before any ran: among
# the candidates whose run fits its training set (final train accuracy >=
# 0.99) and does not diverge, the one of smallest final train variance at the
# last hidden layer (ties: the earlier). Nothing else is read: no test number.
# The chosen candidate then sets learning rate, weight decay and normalisation
# for every run of the study (cascade, sizes, parity pretraining and its
# fine-tuning); the claims' `setting_chosen_by_rule` gate recomputes the rule
# from the pre-study runs in results.json.
CANDIDATES = {
    'first_pass': dict(learning_rate=0.01, weight_decay=0.0, norm=''),
    'wd': dict(learning_rate=0.01, weight_decay=5e-4, norm=''),
    'wd_lr01': dict(learning_rate=0.1, weight_decay=5e-4, norm=''),
    'bn_wd': dict(learning_rate=0.01, weight_decay=5e-4, norm='batch'),
    'bn_wd_lr01': dict(learning_rate=0.1, weight_decay=5e-4, norm='batch'),
    'bn_wd5e3_lr01': dict(learning_rate=0.1, weight_decay=5e-3, norm='batch'),
}
PRESTUDY_SEED = 100
# The rule's choice from the pre-study's runs (run 2026-12-02, before any other
# run of this pass; their records are the `prestudy` evidence in results.json):
# final train variance 1.42 / 1.37 / 0.238 / 2.92 / 1.02 / 0.00064 in the order
# above, every one fitted (train accuracy 1.0).
CHOSEN = 'bn_wd5e3_lr01'

# Every MNIST run of 1,000 images (cascade, parity pretraining) is 256 epochs
# of batch 128 (1,792 iterations; the paper: 80k-100k at lr 0.001, 40x beyond
# a CPU hour); the size sweep sees as many images at every size.
EPOCHS = 256
LOG_EPOCHS = (1, 2, 4, 8, 16, 32, 64, 128, 256)  # Checkpoints, log-spaced.


def _run(dataset: str, model: str, model_kwargs: dict, lr: float, epochs: int, *,
         plots: bool = True, weight_decay: float = 0.0,
         **groups) -> ml_collections.ConfigDict:
  """A run of the study: SGD (momentum 0.9), cosine schedule, batch 128 (the
  defaults); quiet (checkpoints at the end and at ``checkpoint.epochs``
  only), with the run's plots unless ``plots=False``. ``groups`` as in
  `common.trainer` (``data__examples_per_class=100``)."""
  return common.trainer(
      dataset, model, epochs=epochs, model_kwargs=model_kwargs,
      optimizer=train.optimizer('sgd', learning_rate=lr, momentum=0.9,
                                weight_decay=weight_decay),
      quiet=True, log__plots=plots, **groups)


def _mlp(dataset: str, width: int, lr: float, epochs: int,
         **kwargs) -> ml_collections.ConfigDict:
  """`_run` of the paper's MLP: 3 hidden layers of ``width``."""
  return _run(dataset, 'mlp', dict(width=width, depth=3), lr, epochs, **kwargs)


def _chosen(base: ml_collections.ConfigDict, name: str) -> ml_collections.ConfigDict:
  """``base`` in the setting of candidate ``name``."""
  return sweep.with_overrides(base, runs.setting_overrides(CANDIDATES[name]))


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

  # 002a / 002d: the 3 x 1024 MLP on 1,000 MNIST images, checkpointed at
  # log-spaced epochs (kept for good), evaluated (every layer, current class
  # means) every 4 epochs: the finer curve 002d and the gates read.
  epochs = EPOCHS
  base = _mlp('mnist', 1024, 0.01, epochs, data__examples_per_class=100,
              evals__every=4, evals__test_examples=1000, checkpoint__init=True,
              checkpoint__epochs=LOG_EPOCHS)
  config.prestudy = ml_collections.ConfigDict(dict(
      base=base, seed=PRESTUDY_SEED, chosen=CHOSEN, order=tuple(CANDIDATES),
      candidates=ml_collections.ConfigDict(CANDIDATES)))
  config.cascade = _chosen(base, CHOSEN)
  config.cascade.evals.test_examples = 2000
  config.cascade_layers = ('layer1', 'layer2', 'penultimate')

  # 002b: train-set sizes, every run 2,000 iterations (the epochs follow the
  # size), the chosen setting on the narrower MLP and Fashion-MNIST.
  s = _chosen(_mlp('fashion_mnist', 512, 0.01, 1, evals__test_examples=5000), CHOSEN)
  config.size = s
  config.size_images_seen = epochs * 1000  # A size-n run: this // n epochs.
  config.sizes = (500, 1000, 2000, 4000)

  # 002c: parity pretraining (the first 1,000 images, as the paper), then
  # full fine-tuning of its log-spaced checkpoints over the paper's
  # learning-rate range (same optimiser, weight decay and normalisation), and
  # beside it a linear-probe readout of each checkpoint's features.
  p = _chosen(_mlp('mnist', 1024, 0.01, epochs,
                   data__train_split='train[:1000]',
                   data__test_split='test[:200]', data__label_map='superclass:mnist_parity',
                   evals__every=4, checkpoint__epochs=(1, 4, 16, 64, 256)), CHOSEN)
  # 50 epochs (150 iterations) of 500 images: the 002c gate asks every chosen
  # run to have fitted them (train accuracy >= 0.99), i.e. to have converged.
  f = _chosen(_mlp('mnist', 1024, 0.01, 50,
                   data__train_split='train[1000:1500]',  # 500 new images.
                   init__finetune='full', evals__track_collapse=False, plots=False,
                   evals__sets__val=dict(split='train[1500:1600]'),
                   # Only the final numbers are read.
                   evals__every=50), CHOSEN)
  config.transfer = ml_collections.ConfigDict()
  config.transfer.mnist = ml_collections.ConfigDict(dict(
      pretrain=p, finetune=f, epochs=(1, 4, 16, 64, 256),
      lrs=(0.0005, 0.005, 0.05, 0.25),
      seeds=(0, 1, 2)))  # Pretraining seeds (each chain fine-tuned with its seed).
  # The linear-probe readout of each checkpoint (paper 000 sec 6.3's probe, a
  # coarser L2 grid).
  config.probe = ml_collections.ConfigDict(dict(
      l2_grid_size=25, l2_min=1e-6, l2_max=1e6, val_fraction=0.2, max_iters=300,
      grid_batch=1))

  c = config.cascade
  if v.runlocal:  # One seed per group: the claims' seeds gates fail (structure only).
    config.cascade_seeds = config.size_seeds = (0,)
    config.transfer.mnist.seeds = (0,)
    config.kmeans_restarts = 2
    config.prestudy.order = ('first_pass', CHOSEN)
    config.prestudy.candidates = ml_collections.ConfigDict(
        {k: CANDIDATES[k] for k in config.prestudy.order})
    for t in (base, c):
      t.data.examples_per_class, t.num_epochs, t.evals.every = 20, 6, 2
      t.model.kwargs.width = 64
      t.evals.test_examples = 200
      t.checkpoint.epochs = (2, 4, 6)
    s.model.kwargs.width = 64
    s.evals.test_examples = 200
    config.sizes = (200, 400, 800)
    config.size_images_seen = 1600
    p.data.train_split, p.num_epochs, p.evals.every = 'train[:300]', 4, 2
    p.model.kwargs.width = 64
    p.checkpoint.epochs = (1, 2, 4)
    f.model.kwargs.width = 64
    f.data.train_split, f.num_epochs = 'train[1000:1200]', 2
    f.data.test_split = 'test[:500]'
    config.transfer.mnist.epochs = (1, 2, 4)
    config.transfer.mnist.lrs = (0.005, 0.05)
    config.probe.l2_grid_size, config.probe.max_iters = 3, 50
  elif v.gpu:  # The paper's lengths; the pre-study reruns at them.
    gpu_epochs = (1, 10, 100, 500, 1000, 2000, 4000, 8000, 11_429)
    for t in (base, c):
      t.num_epochs, t.evals.every = 11_429, 50  # 80k iterations
      t.checkpoint.epochs = gpu_epochs
    c.evals.test_examples = 0
    s.model.name = 'vgg11_bn'
    s.model.kwargs = ml_collections.ConfigDict(dict(width=64))
    config.size_images_seen = 80_000 * 128
    config.sizes = (6000, 12000, 30000, 60000)
    p.num_epochs = 14_286  # 100k iterations
    p.checkpoint.epochs = (10, 100, 1000, 3000, 7000, 14_286)
    config.transfer.mnist.epochs = p.checkpoint.epochs
    config.transfer.mnist.lrs = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25)
    resnet = dict(width=64, stem='cifar')
    cp = _run('cifar10', 'resnet18', resnet, 0.1, 640,  # 100k iterations of 156 steps
              weight_decay=5e-4,
              data__label_map='classes:0,1,2,3,6,7,8,9|superclass:cifar10_animals8',
              data__train_split='train[:25000]',  # disjoint from the fine-tuning images
              data__examples_per_class=9_500,  # 2 super-classes x 9,500 = 19,000 images
              checkpoint__epochs=(5, 20, 80, 200, 400, 640))
    cf = _run('cifar10', 'resnet18', resnet, 0.01, 100, plots=False, weight_decay=5e-4,
              data__label_map='classes:0,1,2,3,6,7,8,9',
              data__train_split='train[25000:35000]', init__finetune='full',
              evals__track_collapse=False,
              evals__sets__val=dict(split='train[35000:37000]'), evals__every=50)
    config.transfer.cifar = ml_collections.ConfigDict(dict(
        pretrain=cp, finetune=cf, epochs=cp.checkpoint.epochs,
        lrs=(0.0005, 0.005, 0.05, 0.25), seeds=(0, 1, 2)))
  return common.apply(config, v)
