r"""The main job: an MLP on scikit-learn digits, into the terminal phase.

Needs no download (the 1,797 8x8 digits ship with scikit-learn; a stratified
1,347 / 450 train / test split). A 4 x 256 ReLU MLP with BatchNorm, SGD
(momentum 0.9, learning rate 0.1, 5-epoch warm-up, cosine decay, weight decay
1e-3), cross-entropy, batch 128, 300 epochs. It reaches 100% train accuracy
within 10 epochs and then keeps collapsing: every 10 epochs the full
collapse report is taken on the train and test features of all four hidden
layers (numerical_rank included at the penultimate layer), showing train vs
test collapse and collapse that cascades from the last layer backwards
(paper 002 sec. 5, paper 001 Fig. 9). Twice the weight decay collapses ten
times further (train NC1 ~ 3e-4) but with a loss spike near epoch 110
(BatchNorm networks at a large learning rate x weight decay).

  scripts/main.sh     # = python3 -m venv .venv; pip install ...; then:
  .venv/bin/python experiments/train.py --config=configs/mlp_digits.py \
      --workdir=workdir/main

Run time: about 2 minutes on a 2-core CPU (measured: scripts/main.sh took
1:50 and 2:53 wall, pip included, on a 2-core machine shared with other jobs;
12 s of it training, 31 evaluations of 0.15 s each when the CPU is idle, up
to 6 s each when another process holds a core); under a minute on one GPU
(an estimate: 300 epochs x 1,347 examples x ~1.3 MFLOP is 0.5 TFLOP, so
compilation and per-step overhead dominate).

Ends with 100% train accuracy from epoch 10 on, 98.9% test accuracy, train
NC1 0.0022 (test 0.042), NC2 0.082, NC3 0.056, NC4 0 (test 0.0022), and NC1
falling from 0.45 at the first hidden layer to 0.0022 at the last
(bit-identical across runs).

Quick local variant (30 epochs, about 20 s):

  .venv/bin/python experiments/train.py --config=configs/mlp_digits.py:runlocal \
      --workdir=workdir/main_local
"""

import ml_collections

from configs import common
from nc_jax import train


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; ``arg='runlocal'`` gives the quick variant."""
  v = common.parse(arg)
  config = common.trainer(
      'digits', 'mlp', epochs=300,
      model_kwargs=dict(width=256, depth=4, norm='batch'),
      optimizer=train.optimizer('sgd', learning_rate=0.1, momentum=0.9,
                                weight_decay=1e-3),
      schedule=train.schedule('cosine', warmup_epochs=5.0))
  config.evals.update(every=10, numerical_rank=True)
  config.checkpoint.every = 50
  config.log.every_steps = 10

  if v.runlocal:
    config.num_epochs = 30
    config.evals.every = 5
    config.checkpoint.every = 10
  return common.apply(config, v)
