r"""Fine-grained structure under coarse labels (paper 004): heat-maps, t-SNE, CLP.

  python experiments/fine_grained.py --config=configs/fine_grained_mnist.py \
      --workdir=runs/fine_grained_mnist

Writes config.json, summary.json and PNG plots to --workdir and the
coarse-label training run to --workdir/coarse; the config's docstring gives
the run time.
"""

from nc_jax import cli
from nc_jax.studies import fine_grained

if __name__ == '__main__':
  cli.main(fine_grained.fine_grained_study)
