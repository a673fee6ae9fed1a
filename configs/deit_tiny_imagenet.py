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
(``--config.data.name=image_folder:/path/to/imagenet`` for another place), or
a prepared TFDS ``--config.data.name=tfds:imagenet2012`` (then
``--config.data.test_split=validation``). nc_jax.data decodes a split into
memory as uint8: 1.28M x 224 x 224 x 3 is about 190 GB of host RAM; with
less, train at a lower resolution
(``--config.data.options.image_size="(112, 112)"`` with
``--config.model.kwargs.image_size=112``) or on a subset
(``--config.data.train_split="train[:300000]"``).

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
  config = common.trainer(
      'image_folder:imagenet', 'deit_tiny', epochs=300,
      model_kwargs=dict(image_size=224, patch_size=16, depth=12,
                        drop_path_rate=0.1),
      optimizer=train.optimizer('adamw', learning_rate=1e-3,
                                weight_decay=0.05, weight_decay_on='kernels'),
      schedule=train.schedule('cosine', warmup_epochs=5.0),
      loss=train.loss('ce', label_smoothing=0.1),
      batch_size=1024)
  config.data.test_split = 'val'
  config.data.options = dict(image_size=(224, 224))
  config.augment.flip = True
  config.evals.update(every=20, batch_size=1024, train_examples=50_000)
  config.checkpoint.every = 5
  config.log.every_steps = 100

  if v.runlocal:
    config.data.update(name='cifar10_jpeg', test_split='test',
                       examples_per_class=100)
    config.data.options = {}
    config.model.kwargs.update(image_size=32, patch_size=4, depth=2)
    config.batch_size = 100
    config.schedule.warmup_epochs = 0.5
    config.num_epochs = 2
    config.evals.update(every=1, batch_size=500, train_examples=0,
                        test_examples=500)
    config.checkpoint.every = 1
  return common.apply(config, v)
