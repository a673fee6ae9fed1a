r"""Paper 003 reproduced: progressive collapse through the layers, under label noise,
corruption and domain shift.

  python experiments/reproduce.py --config=configs/papers/p003_progressive.py \
      --workdir=runs/p003
  python experiments/reproduce.py --config=configs/papers/p003_progressive.py:runlocal \
      --workdir=runs/p003_local          # < 90 s, the test suite runs it
  python experiments/reproduce.py --config=configs/papers/p003_progressive.py:gpu \
      --workdir=runs/p003_gpu            # the paper's ResNet settings

Claims (nc_jax/studies/papers/p003_progressive/claims.py: `CLAIMS`, each with
its gates, checks and constants): 003a progressive CDNV / NC2 and probe accuracy
through the layers over a depth sweep; 003b label noise lifts the curves,
memorization ratio > 1 only late; 003c the same for corrupted inputs; 003d
domain shift: early layers agree, deep ones diverge, target collapse predicts
target probe accuracy. Every group (a depth, a noise rate, a severity, a
source) runs ``seeds`` (3 by default: each claim is about a difference, order
or trend, REPRODUCTIONS.md). Each claim's "what we ran" is computed from this
config.

Plain (CPU scale, real data from ../shared/data): 36 runs, about 12 minutes on
a 2-core CPU (an estimate: the first pass ran 15 of these runs, one seed per
group except label noise with two, in 4.8 min). MLPs of width 256 (ReLU,
BatchNorm) at depths 3, 6 and 9 on Fashion-MNIST (3,000 training images, 100
epochs); label noise 0 / 0.2 / 0.4 and Gaussian-noise inputs (severities 1, 3,
5) at depth 6; for the domain shift, depth-6 MLPs trained on MNIST clean, with
Gaussian noise (severity 3) and with blur (severity 2), the target MNIST
blurred at severity 4 (30 target images per class for the probes); 3 seeds
each. Each hidden layer is a "layer" here (the paper: ResNet blocks).

:runlocal: the same pipeline, tiny (11 runs, one seed: its seed gates fail and
its claims read inconclusive; the test suite checks the structure).

:gpu: ResNet-18/34/50 on CIFAR-10 (crop + flip, 200 epochs, every residual
block tracked), label noise and Gaussian-noise CIFAR-10-C-style inputs on
ResNet-18, 3 seeds each; CIFAR-10N / CIFAR-10-C / Office-Home need files a
user supplies (point ``--config.base.data.name`` at them). About 7 hours on one
GPU (an estimate: ~0.56-1.3 GFLOP per image x 3 x 50,000 x 200 epochs per
model at ~30 TFLOP/s, 36 runs of which 27 ResNets on CIFAR-10); not run here.
"""

import ml_collections

from configs import common
from nc_jax import train


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The study's config; ``arg`` as in the module docstring."""
  v = common.parse(arg, flags=('runlocal', 'gpu'))
  config = ml_collections.ConfigDict()
  config.study = 'p003_progressive'
  config.variant = 'runlocal' if v.runlocal else 'gpu' if v.gpu else 'cpu'
  config.only = ''
  config.seeds = (0, 1, 2)  # Every group: a depth, a noise rate, a severity, a source.

  # Cosine schedule, batch 128, evaluation batch 1000: the defaults.
  b = common.trainer(
      'fashion_mnist', 'mlp', epochs=100, model_kwargs=dict(width=256, depth=6, norm='batch'),
      optimizer=train.optimizer('sgd', learning_rate=0.05, momentum=0.9, weight_decay=5e-4),
      quiet=True, data__examples_per_class=300, evals__every=25,
      evals__test_examples=2000)
  config.base = b
  config.depths = (3, 6, 9)  # MLP depths
  config.depth_models = ()  # or model names of one family (the :gpu ResNets)
  config.noise_rates = (0.0, 0.2, 0.4)
  config.corruption = 'gaussian_noise'
  config.severities = (1, 3, 5)
  config.domain_dataset = 'mnist'
  config.sources = ml_collections.ConfigDict(dict(
      clean=dict(corruption='', corruption_severity=0),
      noise3=dict(corruption='gaussian_noise', corruption_severity=3),
      blur2=dict(corruption='gaussian_blur', corruption_severity=2)))
  # The target domain's data (never trained on: its probes and test images).
  t = train.default_config()
  t.data.name = 'mnist'
  t.data.examples_per_class = 30  # Little target data.
  t.data.test_split = 'test[:2000]'
  t.data.corruption.name, t.data.corruption.severity = 'gaussian_blur', 4
  config.target = t
  config.probe_examples = 2000
  config.probe_test_examples = 2000
  config.probe = ml_collections.ConfigDict(dict(
      l2_grid_size=5, l2_min=1e-4, l2_max=1e0, val_fraction=0.2, max_iters=200))

  if v.runlocal:
    config.seeds = (0,)
    b.data.examples_per_class, b.num_epochs, b.evals.every = 30, 3, 3
    b.model.kwargs.width = 32
    b.evals.test_examples = 200
    config.depths = (2, 3, 4)
    config.severities = (1, 5)
    t.data.examples_per_class = 10
    t.data.test_split = 'test[:300]'
    config.probe_examples, config.probe_test_examples = 300, 300
    config.probe.l2_grid_size, config.probe.max_iters = 2, 50
  elif v.gpu:
    b.data.name, b.data.examples_per_class = 'cifar10', 0
    b.model.name = 'resnet18'
    b.model.kwargs = ml_collections.ConfigDict(dict(width=64, stem='cifar'))
    b.augment.crop_padding, b.augment.flip = 4, True
    b.num_epochs, b.optimizer.learning_rate = 200, 0.1
    b.evals.every, b.evals.train_examples, b.evals.test_examples = 20, 10_000, 0
    config.depths, config.depth_models = (), ('resnet18', 'resnet34', 'resnet50')
  return common.apply(config, v)
