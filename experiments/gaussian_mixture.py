r"""Gaussian-mixture toy of paper 004 App. B (MSDR vs sigma^2 and tau^2).

  python experiments/gaussian_mixture.py --config=configs/gaussian_mixture.py:runlocal \
      --workdir=runs/gaussian_mixture_local

Writes config.json, metrics.jsonl, summary.json and PNG plots to --workdir; the
config's docstring lists the parts and run times.
"""

from absl import app
from absl import flags
from ml_collections import config_flags

from nc_jax.sims import studies

_CONFIG = config_flags.DEFINE_config_file("config", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for the outputs.", required=True)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  studies.mixture_study(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
