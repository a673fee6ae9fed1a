r"""Transfer (papers 000, 001): MNIST-pretrained MLP -> Fashion-MNIST, CPU scale.

1. Pretrain an MLP (3 x 256) on MNIST with the nc_jax trainer (or reuse a
   trainer run: ``--config.pretrain_workdir=...``).
2. On Fashion-MNIST (500 images per class for training, the full test set):
   an L-BFGS linear probe on the frozen features of every layer, with the
   downstream NC1 of that layer and their rank correlation (001 Fig 4:
   more collapse on downstream data goes with better probes), and MLOG
   (000 eq 6) of the probe of the transfer layer (`transfer.transfer_layer`:
   the penultimate layer here).
3. The fine-tuning variants of 001 sec 3.3 with the trainer: linear probe
   (head only), layer FT and SCL FT of each block in ``blocks``, full FT.

  python experiments/transfer.py --config=configs/transfer.py \
      --workdir=runs/transfer_mnist_fashion

About 9 minutes on a shared 2-core CPU (measured: pretraining 1.5, probes
of three layers 3, six fine-tuning runs 4). Quick variant (1,000 pretraining images per class, 2 epochs, 200
downstream images per class, one block; a few minutes):

  python experiments/transfer.py --config=configs/transfer.py:runlocal \
      --workdir=runs/transfer_local

Outputs: layerwise.png, finetune.png, summary.json, config.json; every run
(pretrain, layerwise_probe, finetune_<variant>[_<block>], each a trainer run
with init.workdir = the pretraining run) in runs/<name>/ with its run.json, so a
killed study resumes, skipping finished runs. Needs the MNIST and
Fashion-MNIST IDX files under the data root (``../shared/data``).
"""

import ml_collections

from configs import common
from nc_jax import train


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """Returns the config; ``arg='runlocal'`` gives the quick variant."""
  v = common.parse(arg)
  p = common.trainer(
      "mnist", "mlp", epochs=5, model_kwargs=dict(width=256, depth=3),
      optimizer=train.optimizer("sgd", learning_rate=0.05, weight_decay=5e-4,
                                momentum=0.9),
      evals__train_examples=10_000, log__progress_bar=False)

  # Fine-tuning runs; the model comes from `pretrain`.
  d = common.trainer(
      "fashion_mnist", epochs=5,
      optimizer=train.optimizer("sgd", learning_rate=0.01, weight_decay=5e-4,
                                momentum=0.9),
      quiet=True, batch_size=64, data__examples_per_class=500,
      checkpoint__every=5)

  config = ml_collections.ConfigDict()
  config.pretrain = p
  config.pretrain_workdir = ""  # non-empty: reuse this trainer run, skip step 1
  config.downstream = d
  config.variants = ("linear_probe", "layer", "scl", "full")
  config.blocks = ("layer1", "layer2")  # tuned blocks of 'layer' and 'scl'

  # Frozen-feature probes (L-BFGS; L2 on a validation split, SPEC.md line 64).
  # The paper's grid is 97 values; 25 keeps the CPU run short.
  config.probe = ml_collections.ConfigDict()
  config.probe.l2_grid_size = 25
  config.probe.l2_min = 1e-6
  config.probe.l2_max = 1e6
  config.probe.val_fraction = 0.2
  config.probe.max_iters = 500

  if v.runlocal:
    p.data.examples_per_class = 1000
    p.num_epochs = 2
    p.evals.train_examples = 2000
    d.data.examples_per_class = 200
    d.num_epochs = 2
    d.checkpoint.every = 2
    config.blocks = ("layer1",)
    config.probe.l2_grid_size = 13
    config.probe.max_iters = 300
  return common.apply(config, v)
