r"""Reproduces a paper's findings: one config per paper (../shared/REPRODUCTIONS.md).

  python experiments/reproduce.py --config=configs/papers/p004_fine_grained.py \
      --workdir=runs/p004
  python experiments/reproduce.py --config=configs/papers/p004_fine_grained.py:runlocal \
      --workdir=runs/p004_local
  python experiments/reproduce.py --config=configs/papers/p004_fine_grained.py \
      --workdir=runs/p004 --config.only=coarse_mlp_seed0

Writes results.json, report.md and the figures to --workdir, and each run to
--workdir/runs/<name>; a killed study resumes, skipping finished runs.
"""

from nc_jax import cli
from nc_jax.studies import reproduce

if __name__ == '__main__':
  cli.main(lambda config, workdir: reproduce.reproduce(
      config, workdir, command=cli.command_line()))
