r"""Trains a model and tracks neural collapse on its train and test features.

  python experiments/train.py --config=configs/mlp_digits.py \
      --workdir=workdir/main
  python experiments/train.py --config=configs/resnet18_cifar10.py:runlocal \
      --workdir=workdir/r18_local --config.num_epochs=2 \
      --config.optimizer.learning_rate=0.05 \
      --config.optimizer.kwargs.nesterov=False

Writes config.json, metrics.jsonl, summary.json, PNG plots and orbax
checkpoints to --workdir; rerunning the same command resumes from the last
checkpoint (a changed config is refused, naming the keys). Each config's
docstring gives its command and run times; the keys, by group (data,
model, loss, optimizer, schedule, ...), are documented in
`nc_jax.train.default_config`, and a misspelt ``--config.<key>`` is an
error. On several hosts, start one process per host with --distributed
(calls jax.distributed.initialize()).
"""

from nc_jax import cli
from nc_jax import train

if __name__ == '__main__':
  cli.main(train.train_and_evaluate)
