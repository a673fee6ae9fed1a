r"""DeiT-Tiny on ImageNet-1K (paper 000 sec. 6.2, Fig. 5 and Fig. 6 right).

Paper 000's recipe for DeiT-T: AdamW (peak learning rate 1e-3 for batch
1,024, weight decay 0.05), a 5-epoch linear warm-up, cosine annealing, 300
epochs; the rest as DeiT (Touvron et al. 2021): label smoothing 0.1,
stochastic depth 0.1. Collapse of the final class-token readout and of every
block on a fixed 50,000-image train subset (as the paper) and the validation
set every 20 epochs (as the paper). Not implemented here, so not applied:
RandAugment, mixup / cutmix, random erasing and random-resized crops (images
are resized to 224 x 224; flips only); weight decay skips biases and norms
but, unlike DeiT, not the position embedding and class token.

Data: an ImageNet image folder ``<data root>/imagenet/{train,val}/<wnid>/``
(``--config.dataset=image_folder:/path/to/imagenet`` for another place), or
a prepared TFDS ``--config.dataset=tfds:imagenet2012`` (then
``--config.test_split=validation``). nc_jax.data decodes a split into memory
as uint8: 1.28M x 224 x 224 x 3 is about 190 GB of host RAM; with less, train
at a lower resolution (``--config.data_options.image_size="(112, 112)"`` with
``--config.model_kwargs.image_size=112``) or on a subset
(``--config.train_split="train[:300000]"``).

  python experiments/train.py --config=configs/deit_tiny_imagenet.py \
      --workdir=workdir/deit_tiny_imagenet

Run time: one GPU, about 1.1 days (an estimate, not measured: 7.7 GFLOP per
training example from XLA's cost analysis x 1.28M x 300 epochs at an assumed
30 TFLOP/s sustained; the data-parallel mesh divides it over 8 GPUs); a
2-core CPU: years (not feasible).

Quick local variant (a 2-block DeiT-T at 32 px, patch 4, on 1,000 images of
the CIFAR-10 JPEG copy, 2 epochs; about a minute on a 2-core CPU):

  python experiments/train.py --config=configs/deit_tiny_imagenet.py:runlocal \
      --workdir=workdir/deit_tiny_local
"""

import ml_collections

from configs import common
from nc_jax import train


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  """The config; ``arg='runlocal'`` gives the quick variant."""
  v = common.parse(arg)
  config = train.default_config()
  config.dataset = 'image_folder:imagenet'
  config.train_split = 'train'
  config.test_split = 'val'
  config.data_options = ml_collections.ConfigDict({'image_size': (224, 224)})
  config.model = 'deit_tiny'
  config.model_kwargs = ml_collections.ConfigDict({
      'image_size': 224, 'patch_size': 16, 'depth': 12,
      'drop_path_rate': 0.1})

  config.loss = 'ce'
  config.label_smoothing = 0.1
  config.optimizer = 'adamw'
  config.batch_size = 1024
  config.learning_rate = 1e-3
  config.adam_b1 = 0.9
  config.adam_b2 = 0.999
  config.weight_decay = 0.05
  config.weight_decay_on = 'kernels'
  config.schedule = 'cosine'
  config.warmup_epochs = 5.0
  config.num_epochs = 300
  config.flip = True

  config.eval_every = 20
  config.eval_batch_size = 1024
  config.eval_train_examples = 50_000
  config.checkpoint_every = 5
  config.log_every_steps = 100

  if v.runlocal:
    config.dataset = 'cifar10_jpeg'
    config.test_split = 'test'
    config.train_examples_per_class = 100
    config.eval_test_examples = 500
    config.data_options = ml_collections.ConfigDict()
    config.model_kwargs = ml_collections.ConfigDict({
        'image_size': 32, 'patch_size': 4, 'depth': 2, 'drop_path_rate': 0.1})
    config.batch_size = 100
    config.eval_batch_size = 500
    config.eval_train_examples = 0
    config.warmup_epochs = 0.5
    config.num_epochs = 2
    config.eval_every = 1
    config.checkpoint_every = 1
  return common.apply(config, v)
