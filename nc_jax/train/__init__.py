"""One trainer for every nc_jax study: train a model, track collapse, resume.

``train_and_evaluate(config, workdir)`` trains a `nc_jax.models` model on a
`nc_jax.data` data set with the objective and optimiser the config names
(`default_config` documents every key), and every ``eval_every`` epochs
measures accuracy, loss and the full SPEC.md collapse report on train and
test features at every tracked layer, streamed through `nc_jax.metrics`.

Outputs in ``workdir`` (the `nc_jax.workdir` convention):

- ``config.json``; ``checkpoints/<epoch>/`` (orbax);
- ``metrics.jsonl``: one record per (epoch, split, layer) of an evaluation,
  ``{"epoch", "step", "split": "train"|"test", "layer", "num_examples",
  "accuracy", "loss", <SPEC.md metric names>}`` (nc3_*/nc4_* at
  ``"penultimate"`` only: they need the classifier), and one record per
  epoch without ``"split"``: ``{"epoch", "step", "training_loss",
  "training_accuracy", "learning_rate", "l2_params", "l2_grads",
  "epoch_time_s", "eval_time_s"}``. Epoch 0 is the initialisation. Load with
  ``pandas.read_json(path, lines=True)``;
- ``summary.json``: the last evaluation (headline keys ``train_accuracy``,
  ``test_nc1``, ... for the penultimate layer; every layer under
  ``"layers"``) and ``terminal_phase_epoch``, the first evaluated epoch with
  100% train accuracy;
- ``collapse.png`` (overview), ``accuracy.png``, ``loss.png``,
  ``collapse_penultimate.png``, ``nc1_layers_{train,test}.png``.

Resume: a run started in a workdir with checkpoints continues from the latest
one, drops the records logged after it, and ends with the same records as an
uninterrupted run (the batch order depends only on (seed, epoch), the
augmentation key on the step, dropout keys live in the checkpointed state).

Devices: data parallel over a ``jax.make_mesh`` mesh of every device (all
hosts after ``jax.distributed.initialize()``): parameters replicated, batches
split on the ``'data'`` axis, collapse statistics reduced with
`metrics.accumulate_sharded`.

Modules: `config` (every key, validation), `input` (batches, mesh, on-device
augmentation), `losses` (CE with temperature, MSE, the within-class cosine
regulariser, SupCon), `tracking` (evaluation, summary, plots), `trainer`
(model, optimiser, update step, checkpoints, the loop).
"""

from nc_jax.train.config import (LOSSES, OPTIMIZERS, SCHEDULES, check_config,
                                 default_config)
from nc_jax.train.input import augment, load_data, make_mesh
from nc_jax.train.tracking import HEADLINE, Evaluator, summarize, write_plots
from nc_jax.train.trainer import (Setup, create_model, make_optimizer,
                                  objective, setup, train_and_evaluate,
                                  train_step)
