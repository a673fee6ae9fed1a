"""The training loop: setup, evaluation, checkpoints, resume.

The optimiser and the compiled update step: `nc_jax.train.step`.

See the package docstring (`nc_jax.train`) for the outputs and guarantees.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
import tqdm
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from nc_jax import data
from nc_jax import models
from nc_jax import plots
from nc_jax import records as records_lib
from nc_jax import writers as writers_lib
from nc_jax.train import checkpoints
from nc_jax.train import finetune
from nc_jax.train import input as input_lib
from nc_jax.train import model as model_lib
from nc_jax.train import resume
from nc_jax.train import step as step_lib
from nc_jax.train import tracking
from nc_jax.train import schedules as schedules_lib
from nc_jax.train.config import check_config
from nc_jax.workdir import Workdir

# ---------------------------------------------------------------------------
# Model, optimiser, objective.
# ---------------------------------------------------------------------------


def create_model(config, train_ds: data.Dataset) -> models.NCModel:
  """The model ``config`` trains on ``train_ds`` (`model.build`)."""
  return model_lib.build(config, train_ds.images.shape[1:],
                        train_ds.num_classes)


# ---------------------------------------------------------------------------
# The training loop.
# ---------------------------------------------------------------------------


class Setup(NamedTuple):
  """What `setup` builds: the initial state and the compiled steps."""

  state: dict[str, Any]  # step, params, rest (batch stats, RNGs), opt_state.
  # (state, running, images, labels, step) -> (state, running); step: the
  # index of this update (its rate is rates[step]).
  train_step: Callable
  rates: np.ndarray  # [num_epochs * steps_per_epoch] the rate of each step.
  evaluate: tracking.Evaluator
  schedule: optax.Schedule
  layers: tuple[str, ...]
  num_params: int  # Trained scalars (frozen ones excluded).
  steps_per_epoch: int
  model_info: dict[str, Any]  # model.json: input_shape, num_classes, mean, std.


ModelFn = Callable[[ml_collections.ConfigDict, data.Dataset], models.NCModel]


def setup(config, train_ds: data.Dataset, mesh: jax.sharding.Mesh, *,
          model_fn: ModelFn | None = None) -> Setup:
  """Builds the model, optimiser state and the jitted train/eval steps.

  Args:
    config: a trainer config.
    train_ds: the training data.
    mesh: a ``'data'`` mesh.
    model_fn: ``(config, train_ds) -> model`` instead of `create_model`
      (e.g. model surgery); it must be deterministic in ``config.seed`` for
      resume to be exact.
  """
  augment = config.augment
  if (augment.crop_padding or augment.flip or augment.jitter
      or augment.erase) and train_ds.images.ndim != 4:
    raise ValueError('augment.crop_padding / flip / jitter / erase need NHWC images; '
                     f'{config.data.name} has shape {train_ds.images.shape}')
  steps_per_epoch = len(train_ds) // config.batch_size
  if not steps_per_epoch:
    raise ValueError(f'batch_size {config.batch_size} > {len(train_ds)} '
                     'training examples')
  num_classes = train_ds.num_classes
  mean, std = model_lib.normalization(config, train_ds)
  normalize = model_lib.normalizer(mean, std)

  model = (model_fn or create_model)(config, train_ds)
  names = models.feature_names(model)
  # 'penultimate' is always tracked: summary.json and NC3/NC4 read it.
  layers = tuple(config.evals.layers) or names
  layers += ('penultimate',) * ('penultimate' not in layers)
  if set(layers) - set(names):
    raise ValueError(f'evals.layers {sorted(set(layers) - set(names))} are '
                     f'not layers of the model: {names}')
  init = config.init
  paths = (finetune.trainable_paths(model, init.finetune, init.finetune_block)
           if init.workdir else None)
  finetune.set_modes(model, paths)
  train_def, params, rest = nnx.split(model, nnx.Param, ...)
  model.eval()
  eval_def, _, _ = nnx.split(model, nnx.Param, ...)
  input_shape = tuple(train_ds.images.shape[1:])
  dims = model_lib.feature_dims(model, input_shape)
  tx, schedule = step_lib.make_optimizer(config, steps_per_epoch, paths=paths)
  rates = schedules_lib.table(schedule, config.num_epochs * steps_per_epoch)
  replicated = NamedSharding(mesh, P())
  state = jax.device_put(
      dict(step=jnp.zeros((), jnp.int32), params=params, rest=rest,
           opt_state=tx.init(params)), replicated)
  spec = step_lib.TrainSpec.of(config, train_def, tx, mesh, num_classes)
  hyper = jax.device_put(step_lib.hyperparameters(config), replicated)

  def step_fn(state, running, images, labels, step: int):
    # ``step``: the host's count (reading state['step'] would sync).
    rate = rates[min(step, len(rates) - 1)]
    return step_lib.train_step(state, running, images, labels, rate, hyper,
                               normalize, spec=spec)

  evaluate = tracking.Evaluator(config, eval_def, normalize, mesh, layers,
                                dims, num_classes)
  labels = finetune.param_labels(params, paths)
  trained = sum(int(np.prod(x.shape)) for x, l in zip(
      jax.tree.leaves(params), jax.tree.leaves(labels)) if l == 'train')
  info = dict(model=type(model).__name__, input_shape=list(input_shape),
              num_classes=num_classes, feature_dims=dims, mean=mean, std=std,
              dataset=train_ds.name, class_names=list(train_ds.class_names))
  return Setup(state, step_fn, rates, evaluate, schedule, layers, trained,
               steps_per_epoch, info)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str, *,
                       mesh: jax.sharding.Mesh | None = None,
                       model_fn: ModelFn | None = None) -> dict[str, Any]:
  """Trains, evaluates collapse every ``evals.every`` epochs, checkpoints.

  Args:
    config: a config built from `default_config` (see there for the keys).
    workdir: output folder; a run with checkpoints there is resumed (under
      the same config: see `resume.check_resume`).
    mesh: a 1-D mesh with axis ``'data'`` (default `input.make_mesh()`:
      every device of every host).
    model_fn: ``(config, train_ds) -> model`` instead of the config's model.

  Returns:
    The summary (also written to ``summary.json``); empty when the run stopped
    early through ``stop_after_epochs``, and on processes other than 0
    (process 0 writes the workdir's files; every process saves its shards
    of the checkpoints).

  Raises:
    ValueError: invalid config, or a workdir holding another config's run.
    nc_jax.workdir.WorkdirInUse: another process is running in ``workdir``
      (the message names its pid, host and start time).
    FloatingPointError: the training loss became NaN/Inf (the last good
      checkpoint is kept).
    checkpoints.CheckpointError: checkpoints exist but none restores.
  """
  t_start = time.perf_counter()
  check_config(config)
  mesh = input_lib.make_mesh() if mesh is None else mesh
  for key, value in (('batch_size', config.batch_size),
                     ('evals.batch_size', config.evals.batch_size)):
    if value % mesh.size:
      raise ValueError(f'config.{key}={value} is not divisible by the '
                       f'{mesh.size} devices of the mesh')
  # One process per workdir: process 0 holds its lock (released by the OS if
  # the process dies), so a second run into it stops here.
  is_main = jax.process_index() == 0
  with Workdir(workdir).lock() if is_main else contextlib.nullcontext():
    return _train(config, workdir, mesh, model_fn, t_start=t_start)


class _Profile:
  """``log.profile_steps``: a jax.profiler trace of that many training steps, from the
  second step this process runs (the first compiles), then one of the next evaluation,
  under ``<workdir>/profile`` (one folder per trace, for XProf / TensorBoard)."""

  def __init__(self, workdir: str, steps: int):
    self.dir = os.path.join(workdir, 'profile')
    self.steps = steps
    self.seen = 0  # Training steps this process has started.
    self.active = False
    self.eval_pending = False

  def before_step(self, state) -> None:
    self.seen += 1
    if self.steps and self.seen in (2, 2 + self.steps):
      jax.block_until_ready(state)
      if self.seen == 2:
        jax.profiler.start_trace(self.dir)
        self.active = True
      else:
        self.stop()
        self.eval_pending = True

  def start_eval(self) -> bool:
    if not self.eval_pending:
      return False
    jax.profiler.start_trace(self.dir)
    self.active, self.eval_pending = True, False
    return True

  def stop(self) -> None:
    if self.active:
      jax.profiler.stop_trace()
      self.active = False


def _train(config, workdir: str, mesh: jax.sharding.Mesh,
           model_fn: ModelFn | None, *, t_start: float) -> dict[str, Any]:
  """`train_and_evaluate` after its checks, the workdir held."""
  replicated = NamedSharding(mesh, P())
  is_main = jax.process_index() == 0
  if is_main:
    resume.check_resume(config, workdir)

  # ---- Input, model, optimiser, steps.
  train_ds, test_ds = input_lib.load_data(config)
  run = setup(config, train_ds, mesh, model_fn=model_fn)
  wd = Workdir(workdir) if is_main else None
  if wd:
    wd.write_config(config)
    model_lib.write_model_info(wd, run.model_info)
  state, steps_per_epoch = run.state, run.steps_per_epoch
  total_steps = steps_per_epoch * config.num_epochs
  eval_sets = input_lib.eval_sets(config, train_ds, test_ds)

  # ---- Checkpoints and resume.
  ckpt = config.checkpoint  # `init` and `epochs` are kept for good.
  mngr = checkpoints.manager(workdir, keep=ckpt.keep, keep_epochs=tuple(
      ckpt.epochs) + (0,) * bool(ckpt.init))
  try:
    start_epoch, restored = checkpoints.restore_state(mngr, state)
  except checkpoints.CheckpointError as err:
    mngr.close()
    raise checkpoints.CheckpointError(str(err)) from None
  if start_epoch:
    state = restored
    logging.info('Resuming from the checkpoint of epoch %d.', start_epoch)
  if wd:  # A fresh run starts a fresh file; a resumed one drops the records
    # logged after its checkpoint, which the loop logs again.
    wd.truncate_metrics(
        lambda r: start_epoch > 0 and r.get('epoch', 0) <= start_epoch)
  stopped = start_epoch > 0 and resume.reached_train_loss(config, wd, start_epoch)
  # Writers beside metrics.jsonl (process 0 only); a resumed run's TensorBoard
  # curves drop what followed its checkpoint, as metrics.jsonl does.
  out = (writers_lib.create(tuple(config.log.writers), workdir, config=config.to_dict(),
                            resume_step=start_epoch * steps_per_epoch)
         if wd else writers_lib.Writers())

  def log(record: dict[str, Any]) -> None:
    wd.log(record)
    out.write(record)

  profile = _Profile(workdir, config.log.profile_steps) if wd else None

  # ---- Loop.
  bar = tqdm.tqdm(total=total_steps, initial=start_epoch * steps_per_epoch,
                  desc='train', unit='step', dynamic_ncols=True,
                  disable=not (config.log.progress_bar and is_main))
  # Above the progress bar when there is one; in the log otherwise.
  say = (functools.partial(bar.write, file=sys.stderr) if not bar.disable
         else logging.info)

  def run_eval(epoch: int) -> float:
    t = time.perf_counter()
    tracing = profile is not None and profile.start_eval()
    for split, ds in eval_sets.items():
      by_set = run.evaluate(state, ds)
      if wd:
        for label_set, records in by_set.items():
          extra = {} if label_set == 'task' else {'labels': label_set}
          for layer, record in records.items():
            log(dict(epoch=epoch, step=int(state['step']), split=split,
                     layer=layer, **extra, **record))
      pen = by_set['task']['penultimate']
      say(f"epoch {epoch:4d} {split:5s}: accuracy {pen['accuracy']:.4f} "
          f"loss {pen['loss']:.4g}" +
          ''.join(f' {k} {pen[k]:.3g}' for k in ('nc1', 'vci', 'nc2_etf')
                  if k in pen))
    if tracing:
      profile.stop()
    return time.perf_counter() - t

  loader = config.data.loader
  if loader.name == 'grain':
    from nc_jax.train import grain_input  # pylint: disable=g-import-not-at-top
    stream = grain_input.train_batches(
        train_ds, batch_size=config.batch_size, seed=config.seed,
        start_epoch=start_epoch, num_epochs=config.num_epochs,
        worker_count=loader.workers, worker_buffer_size=loader.buffer)
    epoch_input = lambda epoch: itertools.islice(stream, steps_per_epoch)
  else:
    epoch_input = lambda epoch: (
        (train_ds.images[idx], train_ds.labels[idx])
        for idx in input_lib.train_indices(len(train_ds), config.batch_size,
                                           config.seed, epoch))

  every = config.log.every_steps
  try:
    if start_epoch == 0:
      run_eval(0)
      if config.checkpoint.init and 0 not in mngr.all_steps():
        mngr.save(0, args=ocp.args.StandardSave(state))
    for epoch in range(start_epoch, 0 if stopped else config.num_epochs):
      t_epoch = time.perf_counter()
      running = jax.device_put(step_lib.zero_running(), replicated)
      for i, (host_images, host_labels) in enumerate(epoch_input(epoch)):
        images, labels = input_lib.global_batch(mesh, host_images, host_labels)
        if profile is not None:
          profile.before_step(state)
        state, running = run.train_step(state, running, images, labels,
                                        epoch * steps_per_epoch + i)
        if (i + 1) % every == 0:
          r = jax.device_get(running)
          if r['nonfinite']:
            raise resume.nonfinite_error(epoch, int(state['step']), mngr)
          bar.set_postfix(epoch=epoch + 1, loss=f"{r['loss'] / r['count']:.4f}",
                          acc=f"{r['correct'] / r['count']:.4f}")
          bar.update(every)
      r = jax.device_get(running)
      if r['nonfinite']:  # Checked before anything of this epoch is saved.
        raise resume.nonfinite_error(epoch, int(state['step']), mngr)
      bar.update(steps_per_epoch % every)
      epoch_time = time.perf_counter() - t_epoch
      done = epoch + 1
      loss = r['loss'] / r['count']
      stopped = bool(config.stop_at_train_loss and
                     loss < config.stop_at_train_loss)
      last = done == config.num_epochs or stopped
      evaluate_now = last or done % config.evals.every == 0
      eval_time = run_eval(done) if evaluate_now else 0.0
      step = int(state['step'])
      if wd:
        log(dict(epoch=done, step=step, running_loss=loss,
                 running_accuracy=r['correct'] / r['count'],
                 learning_rate=float(run.rates[step - 1]),
                 l2_params=r['l2_params'], l2_grads=r['l2_grads'],
                 epoch_time_s=epoch_time, eval_time_s=eval_time))
        out.flush()
      if last or done in ckpt.epochs or (ckpt.every and
                                         done % ckpt.every == 0):
        mngr.save(done, args=ocp.args.StandardSave(state))
      if stopped:
        say(f'training loss {loss:.3g} < stop_at_train_loss '
            f'{config.stop_at_train_loss:g} at epoch {done}: stopping')
        break
      if (config.stop_after_epochs and not last and
          done - start_epoch >= config.stop_after_epochs):
        return {}  # A simulated kill: no summary.
  finally:
    bar.close()
    if profile is not None:
      profile.stop()
    out.close()
    mngr.wait_until_finished()
    mngr.close()

  # ---- Summary and plots (from metrics.jsonl, so they cover resumed runs).
  if not wd:
    return {}
  records = wd.read_metrics()
  summary = records_lib.summarize(records)
  summary.update(num_params=run.num_params, num_devices=mesh.size,
                 wall_time_s=time.perf_counter() - t_start,
                 stopped_at_train_loss=bool(stopped))
  if config.data.options.get('skip_damaged'):  # {data set: images left out}.
    sets = dict(eval_sets, train=train_ds, test=test_ds)
    summary['skipped_images'] = {k: len(ds.skipped) for k, ds in sorted(sets.items())}
  wd.write_summary(summary)
  if config.log.plots:
    plots.training_plots(wd, records, run.layers)
  return summary
