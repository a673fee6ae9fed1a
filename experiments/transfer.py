r"""Transfer (papers 000, 001): pretrain, then layer-wise probes and fine-tuning variants.

  python experiments/transfer.py --config=configs/transfer.py:runlocal \
      --workdir=runs/transfer_local

Writes config.json, summary.json and PNG plots to --workdir, and each run
(pretrain, layerwise_probe, finetune_<variant>[_<block>]) to
--workdir/runs/<name>; a killed study resumes, skipping finished runs.
"""

from nc_jax import cli
from nc_jax.studies import transfer

if __name__ == '__main__':
  cli.main(transfer.transfer_study)
