r"""Trains a model and tracks neural collapse on its train and test features.

  python experiments/train.py --config=configs/mlp_digits.py \
      --workdir=workdir/main
  python experiments/train.py --config=configs/resnet18_cifar10.py:runlocal \
      --workdir=workdir/r18_local --config.num_epochs=2

Writes config.json, metrics.jsonl, summary.json, PNG plots and orbax
checkpoints to --workdir; rerunning the same command resumes from the last
checkpoint. Each config's docstring gives its command and run times; the keys
are documented in `nc_jax.train.default_config`. On several hosts, start one
process per host with --distributed (calls jax.distributed.initialize()).
"""

import logging as std_logging

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from nc_jax import train

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Training config file.', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output directory.',
                               required=True)
_DISTRIBUTED = flags.DEFINE_bool(
    'distributed', False, 'Multi-host: call jax.distributed.initialize().')
flags.mark_flags_as_required(['config'])


def _quiet_orbax(record: std_logging.LogRecord) -> bool:
  """Drops orbax's per-save INFO lines (a dozen per checkpoint)."""
  return record.levelno >= std_logging.WARNING or 'orbax' not in record.pathname


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  logging.get_absl_handler().addFilter(_quiet_orbax)
  if _DISTRIBUTED.value:
    jax.distributed.initialize()
  logging.info('JAX devices: %s (process %d of %d)', jax.devices(),
               jax.process_index(), jax.process_count())
  train.train_and_evaluate(_CONFIG.value, _WORKDIR.value)


if __name__ == '__main__':
  app.run(main)
