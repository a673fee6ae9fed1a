r"""Unconstrained-features model study (collapse, paper 000 Prop. 4.1, phase diagram).

  python experiments/ufm.py --config=configs/ufm.py:runlocal --workdir=runs/ufm_local

Writes config.json, metrics.jsonl, summary.json and PNG plots to --workdir; the
config's docstring lists the parts and run times.
"""

from nc_jax import cli
from nc_jax.studies import simulations

if __name__ == '__main__':
  cli.main(simulations.ufm_study)
