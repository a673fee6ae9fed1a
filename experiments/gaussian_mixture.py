r"""Gaussian-mixture toy of paper 004 App. B (MSDR vs sigma^2 and tau^2).

  python experiments/gaussian_mixture.py --config=configs/gaussian_mixture.py:runlocal \
      --workdir=runs/gaussian_mixture_local

Writes config.json, metrics.jsonl, summary.json and PNG plots to --workdir; the
config's docstring lists the parts and run times.
"""

from nc_jax import cli
from nc_jax.studies import simulations

if __name__ == '__main__':
  cli.main(simulations.mixture_study)
