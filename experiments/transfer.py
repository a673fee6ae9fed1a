r"""Transfer (papers 000, 001): pretrain, then layer-wise probes and fine-tuning variants.

  python experiments/transfer.py --config=configs/transfer.py:runlocal \
      --workdir=runs/transfer_local

Writes config.json, metrics.jsonl, summary.json and PNG plots to --workdir, the
pretraining run to --workdir/pretrain and each fine-tuning run to
--workdir/finetune/<variant>_<block>; the config's docstring gives run times.
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from nc_jax.probes import studies

_CONFIG = config_flags.DEFINE_config_file("config", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for the outputs.", required=True)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  studies.transfer_study(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
