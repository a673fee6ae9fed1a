r"""Paper 001 reproduced: which representations transfer (losses, heads, layers, fine-tuning).

  python experiments/reproduce.py --config=configs/papers/p001_transfer.py --workdir=runs/p001
  python experiments/reproduce.py --config=configs/papers/p001_transfer.py:runlocal \
      --workdir=runs/p001_local          # < 90 s, the test suite runs it
  python experiments/reproduce.py --config=configs/papers/p001_transfer.py:gpu \
      --workdir=runs/p001_gpu            # the paper's settings

Claims (nc_jax/studies/papers/p001_transfer.py holds the criteria, gates and
checks): 001a the loss table (MSE / CE / SupCon-linear / SupCon-MLP: source
NC1 and transfer); 001b classifier-side head layers raise pre-head NC1 and
transfer; 001c downstream NC1 against transfer across augmentation strengths,
FGSM-training strengths and the layers of a deep MLP; 001d SCL >= layer FT >>
linear probe. Every group runs for each of ``seeds`` (3 in the plain and
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

  p = train.default_config()
  p.dataset = 'fashion_mnist'
  p.train_examples_per_class = 1000
  p.model = 'mlp'
  p.model_kwargs = ml_collections.ConfigDict(dict(width=512, depth=3, norm='batch'))
  p.optimizer, p.learning_rate, p.momentum, p.weight_decay = 'sgd', 0.05, 0.9, 5e-4
  p.schedule, p.batch_size, p.num_epochs = 'cosine', 128, 20
  config.base_aug = 2
  config.noise_per_strength = 0.05
  p.crop_padding, p.augment_noise = config.base_aug, config.noise_per_strength * config.base_aug
  p.eval_every = 20
  p.eval_train_examples, p.eval_test_examples = 2000, 2000
  p.eval_batch_size = 1000
  p.checkpoint_every = 0
  p.progress_bar, p.plots = False, False
  config.pretrain = p
  config.losses = ml_collections.ConfigDict(dict(
      mse=dict(loss='mse'), ce=dict(loss='ce'),
      supcon_linear=dict(loss='supcon', model_kwargs=dict(width=512, depth=3, norm='batch',
                                                          projection='linear')),
      supcon_mlp=dict(loss='supcon', model_kwargs=dict(width=512, depth=3, norm='batch',
                                                       projection='mlp'))))
  config.head_depths = (0, 1, 2)
  config.aug_strengths = (0, 1, 2, 3)
  config.adv_eps = (0.0, 0.02, 0.05, 0.1)
  config.deep = ml_collections.ConfigDict(dict(
      model='mlp', model_kwargs=dict(width=512, depth=8, norm='batch')))

  d = train.default_config()
  d.dataset = 'mnist'
  d.train_examples_per_class = 200
  d.test_split = 'test[:2000]'
  d.eval_batch_size = 1000
  config.downstream = d
  config.probe = ml_collections.ConfigDict(dict(
      l2_grid_size=9, l2_min=1e-6, l2_max=1e2, val_fraction=0.2, max_iters=300))

  f = train.default_config()
  f.dataset, f.train_examples_per_class, f.test_split = 'mnist', 200, 'test[:2000]'
  f.learning_rate, f.momentum, f.weight_decay = 0.01, 0.9, 5e-4
  f.batch_size, f.num_epochs = 64, 30
  f.track_collapse, f.plots, f.progress_bar = False, False, False
  f.eval_every, f.checkpoint_every = 30, 0
  config.finetune = f
  config.variants = ('linear_probe', 'layer', 'scl', 'full')
  config.ft_block = 'layer2'
  if v.runlocal:
    config.seeds = (0,)
    p.train_examples_per_class, p.num_epochs, p.eval_every = 30, 2, 2
    p.model_kwargs.width = 32
    for over in config.losses.values():
      if 'model_kwargs' in over:
        over.model_kwargs.width = 32
    p.eval_train_examples, p.eval_test_examples = 200, 200
    config.head_depths = (0, 1)
    config.aug_strengths = (0, 2)
    config.adv_eps = (0.0, 0.05)
    config.deep.model_kwargs.width, config.deep.model_kwargs.depth = 32, 4
    d.train_examples_per_class, d.test_split = 20, 'test[:300]'
    f.train_examples_per_class, f.test_split, f.num_epochs = 20, 'test[:300]', 2
    config.probe.l2_grid_size, config.probe.max_iters = 2, 50
  elif v.gpu:
    p.dataset, p.train_examples_per_class = 'cifar100', 0
    p.model = 'resnet18'
    p.model_kwargs = ml_collections.ConfigDict(dict(width=64, stem='cifar'))
    for over in config.losses.values():
      if 'model_kwargs' in over:
        over.model_kwargs = dict(width=64, stem='cifar', projection=over.model_kwargs.projection)
    config.deep.model_kwargs = dict(width=3072, depth=12, norm='batch')
    p.crop_padding, p.flip, p.augment_noise, p.num_epochs, p.learning_rate = 4, True, 0.0, 200, 0.1
    config.base_aug, config.noise_per_strength = 4, 0.0
    config.aug_strengths = (0, 2, 4, 6)
    d.dataset, d.train_examples_per_class, d.test_split = 'cifar10', 0, 'test'
    f.dataset, f.train_examples_per_class, f.test_split = 'cifar10', 0, 'test'
    config.ft_block = 'layer4.0'
  return common.apply(config, v)
