r"""Paper 000 reproduced: VCI, its theorem, and VCI as the collapse metric that tracks transfer.

  python experiments/reproduce.py --config=configs/papers/p000_vci.py --workdir=runs/p000
  python experiments/reproduce.py --config=configs/papers/p000_vci.py:runlocal \
      --workdir=runs/p000_local          # < 90 s, the test suite runs it
  python experiments/reproduce.py --config=configs/papers/p000_vci.py:gpu \
      --workdir=runs/p000_gpu            # the paper's settings

Claims (the package nc_jax/studies/papers/p000_vci/ holds the gates, checks
and their constants): 000a Thm 5.1 on real features; 000b invariance of VCI
(Obs 4.2); 000c VCI and fuzziness fall over training under three schedules,
squared distance and cosine need not; 000d within_vb falls, within_vb_perp
does not (and the UFM without injected noise); 000e VCI tracks transfer
across a temperature sweep and a cosine-regulariser sweep, the other metrics
do not consistently. Each claim's "what we ran" is computed from this config.

Plain (CPU scale, real data from ../shared/data): 41 runs, about 20 minutes
on a 2-core CPU (an estimate: the first pass's 25 runs measured 12.6 min in
results.json; this plan adds 2 seeds to each of the 3 schedules, ~12 s a
run, and a third seed to the 10 sweep points, ~35 s a run, for the gates'
>= 3 seeds). Pretraining: a 3 x 512 MLP (BatchNorm) on Fashion-MNIST classes
0-6 (T-shirt .. shirt; 700 images per class), Nesterov SGD lr 0.05
(= 0.1 x 128/256) with the paper's warm-up from 1e-5 and wd 8e-5, 30 epochs.
Downstream tasks (frozen penultimate features, L-BFGS probes): the held-out
Fashion-MNIST classes 7-9 (sneaker, bag, ankle boot), MNIST (a different
data set, same format), and Fashion-MNIST with Gaussian blur (severity 3, all
10 classes). Sweeps: tau in {0.1, 0.2, 0.4, 0.6, 1.0} and lambda in {2.5,
3.75, 5, 7.5, 10}; seeds 0-2 for the sweeps (``seeds``) and for each
schedule (``schedule_seeds``).

:runlocal: one seed, 3 epochs, tiny data (~1 minute); its gates fail (one
seed, no collapse), by design: the test suite checks its structure only.

:gpu: ResNet-18 on CIFAR-10 (crop + flip, 200 epochs) for 000c/000d, and
ResNet-50 on the data set a user supplies for the sweeps (set
``--config.pretrain.data.name`` and the downstream tasks; ImageNet-scale data
needs the streaming loader); about 6 hours on one GPU for the CIFAR-10 part
with 3 seeds per schedule (an estimate from FLOPs: 0.56 GFLOP per image x 3 x
50,000 x 200 epochs x 3 schedules x 3 seeds at ~30 TFLOP/s), days for
ImageNet sweeps; not run here.
"""

import ml_collections

from configs import common
from nc_jax import train


def _pretrain() -> ml_collections.ConfigDict:
  return common.trainer(
      'fashion_mnist', 'mlp', epochs=30,
      model_kwargs=dict(width=512, depth=3, norm='batch'),
      optimizer=train.optimizer('sgd', learning_rate=0.05,  # 0.1 x batch / 256
                                weight_decay=8e-5, momentum=0.9, nesterov=True),
      schedule=train.schedule('cosine', warmup_epochs=3.0, warmup_init=1e-5),
      quiet=True, batch_size=128,
      data__label_map='classes:0,1,2,3,4,5,6',  # 7-9 are held out for transfer.
      data__examples_per_class=700, evals__every=1, evals__train_examples=2000,
      evals__test_examples=3000, evals__batch_size=1000)


def _task(dataset: str, label_map: str, per_class: int, corruption: str = '',
          severity: int = 0) -> ml_collections.ConfigDict:
  """A downstream task as a trainer config: the probes read its data group."""
  d = train.default_config()
  d.data.name, d.data.label_map, d.data.examples_per_class = dataset, label_map, per_class
  d.data.corruption.name, d.data.corruption.severity = corruption, severity
  return d


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The study's config; ``arg`` as in the module docstring."""
  v = common.parse(arg, flags=('runlocal', 'gpu'))
  config = ml_collections.ConfigDict()
  config.study = 'p000_vci'
  config.variant = 'runlocal' if v.runlocal else 'gpu' if v.gpu else 'cpu'
  config.only = ''
  config.seeds = (0, 1, 2)  # 000e: seeds per sweep point.
  config.schedule_seeds = (0, 1, 2)  # 000c / 000d: seeds per schedule.
  config.pretrain = p = _pretrain()

  # 000c / 000d: three schedules (the paper's Fig 3), as changes to the
  # pretraining's config (`sweep.dotted_overrides`).
  config.schedules = ml_collections.ConfigDict(dict(
      exponential=dict(schedule=dict(name='exponential', kwargs=dict(decay_rate=0.975))),
      cosine=dict(schedule=dict(name='cosine')),
      cosine_nowd=dict(schedule=dict(name='cosine', warmup_epochs=0.0),
                       optimizer=dict(weight_decay=0.0))))
  config.vb_schedule = 'cosine_nowd'

  # 000e: the sweeps and the downstream tasks.
  config.temperatures = (0.1, 0.2, 0.4, 0.6, 1.0)
  config.cosine_regs = (2.5, 3.75, 5.0, 7.5, 10.0)
  config.downstream = ml_collections.ConfigDict(dict(
      fmnist_heldout=_task('fashion_mnist', 'classes:7,8,9', 300),
      mnist=_task('mnist', '', 100),
      fmnist_blur=_task('fashion_mnist', '', 100, 'gaussian_blur', 3)))
  config.probe = ml_collections.ConfigDict(dict(
      l2_grid_size=9, l2_min=1e-6, l2_max=1e2, val_fraction=0.2, max_iters=300))

  # 000a / 000b.
  # The source of 000a / 000b: the temperature sweep's run at this tau, first seed.
  config.theorem_temperature = 1.0
  config.theorem_examples = 2000
  config.theorem_layers = ('layer1', 'layer2', 'penultimate')
  config.num_maps = 5
  # 000d, UFM part: lambda_H = 0, no injected noise.
  config.ufm = ml_collections.ConfigDict(dict(
      num_classes=4, samples_per_class=20, dim=16, loss='mse', num_steps=4000,
      log_every=200, learning_rate=0.5, lambda_w=5e-4))

  if v.runlocal:
    config.seeds = config.schedule_seeds = (0,)
    p.data.examples_per_class, p.num_epochs, p.schedule.warmup_epochs = 40, 3, 1
    p.model.kwargs.width = 32
    p.evals.train_examples, p.evals.test_examples = 200, 200
    config.temperatures = (0.2, 0.6, 1.0)
    config.cosine_regs = (2.5, 5.0, 10.0)
    for d in config.downstream.values():
      d.data.examples_per_class = 20
      d.data.test_split = 'test[:500]'
    config.probe.l2_grid_size, config.probe.max_iters = 3, 100
    config.theorem_examples = 200
    config.num_maps = 2
    config.ufm.num_steps, config.ufm.log_every = 400, 100
  elif v.gpu:
    p.data.name, p.data.label_map, p.data.examples_per_class = 'cifar10', '', 0
    p.model.name = 'resnet18'
    p.model.kwargs = ml_collections.ConfigDict(dict(width=64, stem='cifar'))
    p.optimizer.learning_rate, p.num_epochs, p.schedule.warmup_epochs = 0.05, 200, 10
    p.augment.crop_padding, p.augment.flip = 4, True
    p.evals.every = 5
    p.evals.train_examples, p.evals.test_examples = 10_000, 0
  return common.apply(config, v)
