r"""Fine-grained structure under coarse labels (paper 004): heat-maps, t-SNE, CLP.

  python experiments/fine_grained.py --config=configs/fine_grained_mnist.py \
      --workdir=runs/fine_grained_mnist

Writes config.json, metrics.jsonl, summary.json and PNG plots to --workdir and
the coarse-label training run to --workdir/coarse; the config's docstring
gives the run time.
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
  studies.fine_grained_study(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
