"""One trainer for every nc_jax study: train a model, track collapse, resume.

``train_and_evaluate(config, workdir)`` trains a `nc_jax.models` model on a
`nc_jax.data` data set with the objective and optimiser the config names
(`default_config` documents every key), and every ``evals.every`` epochs
measures accuracy, loss and the full SPEC.md collapse report on train and
test features at every tracked layer, streamed through `nc_jax.metrics`.

Outputs in ``workdir`` (the `nc_jax.workdir` convention):

- ``config.json``; ``model.json`` (input shape, classes, feature widths,
  input normalisation: what `restore_model` and fine-tuning runs read);
  ``checkpoints/<epoch>/`` (orbax); ``run.lock`` while a run holds the
  workdir (a second run into it is refused, naming the holder);
- ``metrics.jsonl``: one record per (epoch, split, layer) of an evaluation,
  ``{"epoch", "step", "split": "train"|"test"|<evals.sets name>, "layer",
  "num_examples", "accuracy", "loss", <SPEC.md metric names>}`` (nc3_*/nc4_*
  at ``"penultimate"`` only: they need the classifier); with
  ``evals.label_sets``, also records with ``"labels": "clean" | "fine" |
  "coarse"``: the collapse report of the same features against those labels.
  And one record per epoch without ``"split"``: ``{"epoch", "step",
  "running_loss", "running_accuracy", "learning_rate", "l2_params",
  "l2_grads", "epoch_time_s", "eval_time_s"}`` (running_*: the mean over the
  epoch's training batches, in train mode with augmentation; the ``accuracy``
  of ``split="train"`` is the eval-mode pass). Epoch 0 is the
  initialisation. Read a run with `nc_jax.rundir.RunDir` (selection:
  `nc_jax.records`), or ``pandas.read_json(path, lines=True)``;
- ``summary.json``: the last evaluation (headline keys ``train_accuracy``,
  ``test_nc1``, ... for the penultimate layer; every layer under
  ``"layers"``) and ``terminal_phase_epoch``, the first evaluated epoch with
  100% train accuracy;
- ``collapse.png`` (overview), ``accuracy.png``, ``loss.png``,
  ``collapse_penultimate.png``, ``nc1_layers_{train,test}.png``.

Resume: a run started in a workdir with checkpoints continues from the latest
one that restores (a damaged one is reported in one line and skipped), drops
the records logged after it (and a last record cut short by a crash), and
ends with the same records as an uninterrupted run; a rerun under a different
config is refused (`check_resume`) (the batch order depends only on (seed,
epoch), the augmentation key on the step, dropout keys live in the
checkpointed state). Only one process runs in a workdir at a time
(`nc_jax.workdir.Workdir.lock`; a second one raises `WorkdirInUse`).

Devices: data parallel over a ``jax.make_mesh`` mesh of every device (all
hosts after ``jax.distributed.initialize()``): parameters replicated, batches
split on the ``'data'`` axis, collapse statistics reduced with
`metrics.accumulate_sharded`.

One loop serves every study: pretraining, fine-tuning (``init.workdir`` +
``init.finetune``: parameters restored from another run, the rest frozen through
optax), super-class and fine-label training (``data.label_map``), label noise
(training split only), extra evaluation sets and label sets.

Modules: `config` (every key by group, validation, `read_config`;
`legacy`: runs written in the flat layout), `schedules` (learning rates), `step` (the optimiser and the
compiled update step), `input` (data,
label maps, batches, mesh, on-device augmentation), `losses` (CE with
temperature, MSE, the within-class cosine regulariser, SupCon), `tracking`
(evaluation), `model` (the model a config builds, ``model.json``, a run's
model `restore_model` = `model.from_run`, `extract_features`), `finetune`
(what fine-tuning variants train), `checkpoints` (orbax: save, list,
restore), `trainer` (setup, resume, the loop). Records and
summary.json: `nc_jax.records`; plots: `nc_jax.plots`.
"""

from nc_jax.records import HEADLINE, summarize
from nc_jax.train import checkpoints
from nc_jax.train import finetune
from nc_jax.train import model
from nc_jax.train.checkpoints import CheckpointError
from nc_jax.train.config import (LOSSES, RESUME_SAFE, SCHEDULES, check_config,
                                 config_from_dict, default_config, loss,
                                 optimizer, read_config, schedule)
from nc_jax.train.input import augment, eval_sets, load_data, make_mesh
from nc_jax.train.losses import adversarial, objective
from nc_jax.train.model import extract_features
from nc_jax.train.model import from_run as restore_model
from nc_jax.train.resume import check_resume
from nc_jax.train.tracking import Evaluator
from nc_jax.train.step import (TrainSpec, hyperparameters, make_optimizer,
                               train_step)
from nc_jax.train.trainer import (Setup, create_model, setup,
                                  train_and_evaluate)
from nc_jax.workdir import WorkdirInUse
