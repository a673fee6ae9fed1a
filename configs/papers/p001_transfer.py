r"""Paper 001 reproduced: which representations transfer (losses, heads, layers, fine-tuning).

  python experiments/reproduce.py --config=configs/papers/p001_transfer.py --workdir=runs/p001
  python experiments/reproduce.py --config=configs/papers/p001_transfer.py:runlocal \
      --workdir=runs/p001_local          # < 90 s, the test suite runs it
  python experiments/reproduce.py --config=configs/papers/p001_transfer.py:gpu \
      --workdir=runs/p001_gpu            # the paper's settings

Claims (the package nc_jax/studies/papers/p001_transfer/ holds the criteria,
gates and checks): 001a the loss table (MSE / CE / SupCon-linear / SupCon-MLP:
source NC1 and transfer); 001b classifier-side head layers raise pre-head NC1
and transfer; 001c downstream NC1 against transfer across augmentation
strengths, FGSM-training strengths and the layers of a deep MLP; 001d SCL >=
layer FT >> linear probe. Every group runs for each of ``seeds`` (3 in the plain and
:gpu variants; the claims compare groups); :runlocal has one seed, so its
seeds gates fail (it checks the pipeline, not the verdicts).

Plain (CPU scale, real data from ../shared/data): about 27 minutes on a
2-core CPU (an estimate: the committed first pass measured 12.0 min with 2
seeds for the losses and fine-tuning and 1 for the heads, sweeps and the deep
MLP; its per-run seconds x 3 seeds for every group sum to 27 min). Source:
Fashion-MNIST (10,000 training images), downstream: MNIST (2,000 training
images, 2,000 test): different data sets of the same format and different
label sets, as CIFAR-100 -> CIFAR-10 is in the paper (no CIFAR-100 here).
MLPs 3 x 512 (BatchNorm) instead of ResNet-18.

:gpu (the paper's): ResNet-18 on CIFAR-100 (crop + flip, 200 epochs, cosine
as the documented approximation of SGDR), downstream CIFAR-10; needs
CIFAR-100 and CIFAR-10 under the data root. About 13 hours on one GPU (an
estimate: ~0.56 GFLOP per image x 3 x 50,000 x 200 epochs per pretraining,
45 pretrainings (SupCon and adversarial ones 2-3x), at ~30 TFLOP/s); not
run here.
"""

import ml_collections

from configs import common
from nc_jax import train


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The study's config; ``arg`` as in the module docstring."""
  v = common.parse(arg, flags=('runlocal', 'gpu'))
  config = ml_collections.ConfigDict()
  config.study = 'p001_transfer'
  config.variant = 'runlocal' if v.runlocal else 'gpu' if v.gpu else 'cpu'
  config.only = ''
  # Every group (losses, heads, augmentation and FGSM sweeps, the deep MLP,
  # fine-tuning) runs for each seed: its claims compare groups (>= 3 seeds).
  config.seeds = (0, 1, 2)

  config.base_aug = 2
  config.noise_per_strength = 0.05
  config.pretrain = p = common.trainer(
      'fashion_mnist', 'mlp', epochs=20,
      model_kwargs=dict(width=512, depth=3, norm='batch'),
      optimizer=train.optimizer('sgd', learning_rate=0.05, weight_decay=5e-4,
                                momentum=0.9),
      schedule=train.schedule('cosine'), quiet=True, batch_size=128,
      data__examples_per_class=1000,
      augment__crop_padding=config.base_aug,
      augment__noise=config.noise_per_strength * config.base_aug,
      evals__every=20, evals__train_examples=2000, evals__test_examples=2000,
      evals__batch_size=1000)
  # What each run changes in `pretrain` (`sweep.dotted_overrides`): the
  # loss table (001a; SupCon adds a projection head to the same MLP), the
  # deep MLP (001c).
  config.losses = ml_collections.ConfigDict(dict(
      mse=dict(loss=train.loss('mse')), ce=dict(loss=train.loss('ce')),
      supcon_linear=dict(loss=train.loss('supcon'),
                         model=dict(kwargs=dict(projection='linear'))),
      supcon_mlp=dict(loss=train.loss('supcon'),
                      model=dict(kwargs=dict(projection='mlp')))))
  config.head_depths = (0, 1, 2)
  config.aug_strengths = (0, 1, 2, 3)
  config.adv_eps = (0.0, 0.02, 0.05, 0.1)
  config.deep = ml_collections.ConfigDict(dict(
      model=dict(name='mlp', kwargs=dict(width=512, depth=8, norm='batch'))))

  # The probes' downstream data (001a-c) and the fine-tuning runs (001d).
  d = train.default_config()
  d.data.name, d.data.examples_per_class = 'mnist', 200
  d.data.test_split = 'test[:2000]'
  d.evals.batch_size = 1000
  config.downstream = d
  config.probe = ml_collections.ConfigDict(dict(
      l2_grid_size=9, l2_min=1e-6, l2_max=1e2, val_fraction=0.2, max_iters=300))

  config.finetune = f = common.trainer(
      'mnist', epochs=30,
      optimizer=train.optimizer('sgd', learning_rate=0.01, weight_decay=5e-4,
                                momentum=0.9),
      quiet=True, batch_size=64, data__examples_per_class=200,
      data__test_split='test[:2000]', evals__every=30,
      evals__track_collapse=False)
  config.variants = ('linear_probe', 'layer', 'scl', 'full')
  config.ft_block = 'layer2'
  if v.runlocal:
    config.seeds = (0,)
    p.data.examples_per_class, p.num_epochs, p.evals.every = 30, 2, 2
    p.model.kwargs.width = 32
    p.evals.train_examples, p.evals.test_examples = 200, 200
    config.head_depths = (0, 1)
    config.aug_strengths = (0, 2)
    config.adv_eps = (0.0, 0.05)
    config.deep.model.kwargs.width, config.deep.model.kwargs.depth = 32, 4
    d.data.examples_per_class, d.data.test_split = 20, 'test[:300]'
    f.data.examples_per_class, f.data.test_split, f.num_epochs = 20, 'test[:300]', 2
    config.probe.l2_grid_size, config.probe.max_iters = 2, 50
  elif v.gpu:
    p.data.name, p.data.examples_per_class = 'cifar100', 0
    p.model.name = 'resnet18'
    p.model.kwargs = ml_collections.ConfigDict(dict(width=64, stem='cifar'))
    config.deep.model.kwargs = dict(width=3072, depth=12, norm='batch')
    p.augment.crop_padding, p.augment.flip, p.augment.noise = 4, True, 0.0
    p.num_epochs, p.optimizer.learning_rate = 200, 0.1
    config.base_aug, config.noise_per_strength = 4, 0.0
    config.aug_strengths = (0, 2, 4, 6)
    d.data.name, d.data.examples_per_class, d.data.test_split = 'cifar10', 0, 'test'
    f.data.name, f.data.examples_per_class, f.data.test_split = 'cifar10', 0, 'test'
    config.ft_block = 'layer4.0'
  return common.apply(config, v)
