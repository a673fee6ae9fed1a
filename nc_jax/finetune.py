"""Fine-tuning variants of paper 001 sec 3.3 on the nc_jax trainer.

A pretrained `nc_jax.models` model gets a new classifier for the downstream
classes and is trained with the trainer's step (`nc_jax.train.train_step`:
objective, augmentation, NaN checks), optimiser, evaluator, checkpoint layout
and outputs, with all parameters outside the variant's set frozen:

- ``'linear_probe'``: the head only (fixed-feature transfer);
- ``'layer'``: one chosen block plus the head (layer FT);
- ``'scl'``: the block, the head and a skip connection from the block's pooled
  features, mapped by a linear map (a 1x1 convolution after pooling) and
  BatchNorm to the penultimate width and added to the penultimate features
  (SCL FT, 001 Fig 7 and App A.3);
- ``'full'``: every parameter.

Freezing is an ``optax.multi_transform`` whose frozen branch is
``optax.set_to_zero``, so frozen parameters stay bit-identical; frozen
modules run in eval mode, so their BatchNorm statistics and dropout are
frozen too. A "block" is named by the feature key it outputs
(``models.feature_names``: ``'layer2'`` of an MLP, ``'layer3.0'`` of a
ResNet, ``'block6'`` of a ViT).

References:
  Paper 001 sec 3.3, Table 2, App A.3 (layer and SCL fine-tuning); SPEC.md
  "Transfer (000, 001)".
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from nc_jax import data
from nc_jax import models
from nc_jax import train
from nc_jax.train import input as input_lib
from nc_jax.workdir import Workdir

VARIANTS = ('linear_probe', 'layer', 'scl', 'full')


# ---------------------------------------------------------------------------
# Blocks, the SCL model, trainable sets.
# ---------------------------------------------------------------------------


def block_module(model: models.NCModel, name: str) -> nnx.Module:
  """The module whose output is the feature ``name`` (a fine-tuning unit).

  Args:
    model: an `MLP`, `ResNet`, `VGG` or `VisionTransformer`.
    name: a key of ``models.feature_names(model)`` other than 'projection'.

  Returns:
    MLP ``'layer{l}'`` -> hidden layer l; ResNet ``'stem'`` / ``'layerS.B'``
    -> the stem / residual block; VGG -> the conv(+BN+ReLU) unit;
    ViT ``'block{l}'`` -> encoder block l, ``'penultimate'`` -> the final
    LayerNorm. ``'penultimate'`` is otherwise the last block.
  """
  keys = tuple(k for k in models.feature_names(model) if k != 'projection')
  if name not in keys:
    raise ValueError(f'block {name!r} is not a layer of the model: {keys}')
  i = keys.index(name)
  if isinstance(model, models.MLP):
    return model.layers[i]
  if isinstance(model, models.ResNet):
    return model.stem if i == 0 else model.blocks[i - 1]
  if isinstance(model, models.VGG):
    return model.convs[min(i, len(model.convs) - 1)]
  if isinstance(model, models.VisionTransformer):
    return model.norm if name == 'penultimate' else model.blocks[i]
  raise TypeError(f'no block map for {type(model).__name__}')


def _module_path(root: nnx.Module, module: nnx.Module) -> tuple:
  for path, m in nnx.iter_modules(root):
    if m is module:
      return tuple(path)
  raise ValueError('module is not part of the model')


class SCLModel(models.NCModel):
  """A pretrained encoder with a skip connection from one block (001 Fig 7).

  h = h_penultimate + BN(A pool(h_block)), logits = W h + b. The pooled
  block features are the model's features[block]; A (no bias) on pooled
  features is the paper's 1x1 convolution after adaptive average pooling.
  ``features['penultimate']`` is the combined h (the classifier input), as
  the `NCModel` contract requires.
  """

  def __init__(self, base: models.NCModel, block: str, *, block_dim: int,
               penultimate_dim: int, num_classes: int, rngs: nnx.Rngs):
    """Wraps ``base`` (its own head and projection are left unused).

    Args:
      base: the pretrained model.
      block: the feature key of the tuned block.
      block_dim: width of ``features[block]``.
      penultimate_dim: width of ``features['penultimate']``.
      num_classes: downstream classes.
      rngs: initialisation keys of the skip map and the new head.
    """
    self.base = base
    self.block = block
    self.skip = nnx.Linear(block_dim, penultimate_dim, use_bias=False, rngs=rngs)
    self.skip_norm = nnx.BatchNorm(penultimate_dim, momentum=0.9, epsilon=1e-5,
                                   rngs=rngs)
    keys = tuple(k for k in models.feature_names(base) if k != 'projection')
    self._init_outputs(keys, penultimate_dim, num_classes=num_classes,
                       projection=None, projection_dim=0, dtype=None, rngs=rngs)

  def encode(self, x: jax.Array) -> models.Features:
    feats = self.base.encode(x)
    feats['penultimate'] = feats['penultimate'] + self.skip_norm(
        self.skip(feats[self.block]))
    return feats


def feature_dims(model: models.NCModel, input_shape: tuple[int, ...]) -> dict[str, int]:
  """``{feature name: width}`` from an abstract forward pass on ``[1, *input_shape]``."""
  graphdef, state = nnx.split(model)
  x = jax.ShapeDtypeStruct((1,) + tuple(input_shape), jnp.float32)
  out = jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x)[1], state, x)
  return {k: v.shape[-1] for k, v in out.items()}


def build_model(pretrained: models.NCModel, *, variant: str, block: str | None,
                num_classes: int, input_shape: tuple[int, ...],
                rngs: nnx.Rngs) -> models.NCModel:
  """The model a variant trains: the pretrained one with a fresh head (SCL: wrapped).

  Args:
    pretrained: restored model (modified in place for non-SCL variants).
    variant: one of `VARIANTS`.
    block: the tuned block for ``'layer'`` and ``'scl'``.
    num_classes: downstream classes.
    input_shape: one input's shape (for the feature widths).
    rngs: initialisation keys of the new parts.
  """
  if variant not in VARIANTS:
    raise ValueError(f'variant must be one of {VARIANTS}; got {variant!r}')
  if variant in ('layer', 'scl'):
    block_module(pretrained, block or '')  # validates the name
  dims = feature_dims(pretrained, input_shape)
  if variant == 'scl':
    return SCLModel(pretrained, block, block_dim=dims[block],
                    penultimate_dim=dims['penultimate'], num_classes=num_classes,
                    rngs=rngs)
  pretrained.head = nnx.Linear(dims['penultimate'], num_classes, rngs=rngs)
  return pretrained


def trainable_paths(model: models.NCModel, *, variant: str,
                    block: str | None = None) -> tuple[tuple, ...] | None:
  """Module paths whose parameters a variant trains (None: all)."""
  if variant == 'full':
    return None
  paths = [('head',)]
  if variant in ('layer', 'scl'):
    base = model.base if isinstance(model, SCLModel) else model
    paths.append(_module_path(model, block_module(base, block)))
  if variant == 'scl':
    paths += [('skip',), ('skip_norm',)]
  return tuple(paths)


def _key_name(k) -> Any:
  return getattr(k, 'key', getattr(k, 'idx', getattr(k, 'name', k)))


def param_labels(params: Any, paths: tuple[tuple, ...] | None) -> Any:
  """'train' / 'freeze' per parameter leaf (a pytree like ``params``)."""

  def label(path, _):
    names = tuple(_key_name(k) for k in path)
    if paths is None or any(names[:len(p)] == p for p in paths):
      return 'train'
    return 'freeze'

  return jax.tree_util.tree_map_with_path(label, params)


def freeze(tx: optax.GradientTransformation, labels: Any) -> optax.GradientTransformation:
  """``tx`` on the 'train' leaves; zero updates (bit-identical params) elsewhere."""
  return optax.multi_transform({'train': tx, 'freeze': optax.set_to_zero()}, labels)


def set_modes(model: models.NCModel, paths: tuple[tuple, ...] | None) -> None:
  """Eval mode everywhere except the trained modules (train mode)."""
  if paths is None:
    model.train()
    return
  model.eval()
  modules = dict((tuple(p), m) for p, m in nnx.iter_modules(model))
  for p in paths:
    if p in modules:
      modules[p].train()


# ---------------------------------------------------------------------------
# Setup and loop (the trainer's pieces, with a given model and frozen set).
# ---------------------------------------------------------------------------


def normalizer(stats_ds: data.Dataset | str) -> Callable[[jax.Array], jax.Array]:
  """The trainer's input normalisation with the statistics of ``stats_ds``."""
  mean, std = (jnp.asarray(s) for s in data.dataset_stats(stats_ds))
  return lambda x: (x - mean) / std


def setup(config: ml_collections.ConfigDict, model: models.NCModel,
          train_ds: data.Dataset, mesh: jax.sharding.Mesh, *,
          paths: tuple[tuple, ...] | None = None,
          stats_ds: data.Dataset | str | None = None) -> train.Setup:
  """`nc_jax.train.setup` for a given model, training only ``paths``.

  Args:
    config: a trainer config (`nc_jax.train.default_config` keys).
    model: the model to train (e.g. from `build_model`).
    train_ds: training data (its labels must be < the head's width).
    mesh: a ``'data'`` mesh.
    paths: trainable module paths (`trainable_paths`); None trains all.
    stats_ds: data set (or name) whose normalisation statistics to use;
      default ``train_ds`` (pass the pretraining set for transfer).
  """
  train.check_config(config)
  steps_per_epoch = len(train_ds) // config.batch_size
  if not steps_per_epoch:
    raise ValueError(f'batch_size {config.batch_size} > {len(train_ds)} examples')
  normalize = normalizer(train_ds if stats_ds is None else stats_ds)
  names = models.feature_names(model)
  layers = tuple(config.tracked_layers) or names
  set_modes(model, paths)
  train_def, params, rest = nnx.split(model, nnx.Param, ...)
  model.eval()
  eval_def, _, _ = nnx.split(model, nnx.Param, ...)
  dims = feature_dims(model, train_ds.images.shape[1:])
  tx, schedule = train.make_optimizer(config, steps_per_epoch)
  tx = freeze(tx, param_labels(params, paths))
  replicated = NamedSharding(mesh, P())
  state = jax.device_put(dict(step=jnp.zeros((), jnp.int32), params=params, rest=rest,
                              opt_state=tx.init(params)), replicated)
  step_fn = jax.jit(
      functools.partial(train.train_step, config=config, graphdef=train_def, tx=tx,
                        normalize=normalize, num_classes=train_ds.num_classes,
                        base_key=jax.random.key(config.seed)),
      donate_argnums=(0, 1), out_shardings=replicated)
  evaluate = train.Evaluator(config, eval_def, normalize, mesh, layers, dims,
                             train_ds.num_classes)
  trainable = sum(int(np.prod(x.shape)) for x, l in zip(
      jax.tree.leaves(params), jax.tree.leaves(param_labels(params, paths))) if l == 'train')
  return train.Setup(state, step_fn, evaluate, schedule, layers, trainable, steps_per_epoch)


def fit(config: ml_collections.ConfigDict, run: train.Setup, train_ds: data.Dataset,
        test_ds: data.Dataset, workdir: str, mesh: jax.sharding.Mesh) -> dict[str, Any]:
  """The trainer's epoch loop for a prepared `train.Setup` (no resume).

  Writes the trainer's outputs to ``workdir`` (config.json, metrics.jsonl,
  summary.json, checkpoints/<epoch>/ every ``checkpoint_every`` epochs, PNGs)
  and returns the summary, with ``num_params`` the number of TRAINED scalars.
  """
  t0 = time.perf_counter()
  wd = Workdir(workdir)
  wd.write_config(config)
  if wd.read_metrics():
    raise ValueError(f'{workdir} already holds a run; use a fresh workdir')
  state, replicated = run.state, NamedSharding(mesh, P())
  mngr = ocp.CheckpointManager(
      os.path.abspath(wd.file('checkpoints')),
      options=ocp.CheckpointManagerOptions(max_to_keep=config.keep_checkpoints,
                                           create=True))

  def evaluate(epoch):
    for split, ds in (('train', train_ds), ('test', test_ds)):
      for layer, rec in run.evaluate(state, ds).items():
        wd.log(dict(epoch=epoch, step=int(state['step']), split=split, layer=layer, **rec))

  evaluate(0)
  try:
    for epoch in range(config.num_epochs):
      t = time.perf_counter()
      running = jax.device_put({k: jnp.zeros((), jnp.float32) for k in (
          'loss', 'correct', 'count', 'nonfinite', 'l2_grads', 'l2_params')}, replicated)
      for idx in input_lib.train_indices(len(train_ds), config.batch_size, config.seed,
                                         epoch):
        images, labels = input_lib.global_batch(mesh, train_ds.images[idx],
                                                train_ds.labels[idx])
        state, running = run.train_step(state, running, images, labels)
      r = jax.device_get(running)
      if r['nonfinite']:
        raise FloatingPointError(f'training loss is NaN/Inf in epoch {epoch + 1}')
      done, epoch_time = epoch + 1, time.perf_counter() - t
      last = done == config.num_epochs
      t = time.perf_counter()
      if last or done % config.eval_every == 0:
        evaluate(done)
      wd.log(dict(epoch=done, step=int(state['step']),
                  training_loss=r['loss'] / r['count'],
                  training_accuracy=r['correct'] / r['count'],
                  learning_rate=float(run.schedule(int(state['step']) - 1)),
                  l2_params=r['l2_params'], l2_grads=r['l2_grads'],
                  epoch_time_s=epoch_time, eval_time_s=time.perf_counter() - t))
      if last or done % config.checkpoint_every == 0:
        mngr.save(done, args=ocp.args.StandardSave(state))
  finally:
    mngr.wait_until_finished()
    mngr.close()
  records = wd.read_metrics()
  summary = train.summarize(records)
  summary.update(num_params=run.num_params, num_devices=mesh.size,
                 wall_time_s=time.perf_counter() - t0)
  wd.write_summary(summary)
  if config.plots:
    train.write_plots(wd, records, run.layers)
  return summary


# ---------------------------------------------------------------------------
# Checkpoints and features.
# ---------------------------------------------------------------------------


def checkpoint_epochs(workdir: str) -> list[int]:
  """Epochs with a checkpoint under ``workdir/checkpoints``, ascending."""
  mngr = ocp.CheckpointManager(os.path.abspath(os.path.join(workdir, 'checkpoints')))
  try:
    return sorted(mngr.all_steps())
  finally:
    mngr.close()


def restore(workdir: str, run: train.Setup, *, epoch: int | None = None
            ) -> tuple[models.NCModel, dict[str, Any]]:
  """The model (eval mode) and trainer state saved at ``epoch`` (default: latest).

  Args:
    workdir: a run of `nc_jax.train.train_and_evaluate` or `fit`.
    run: the `train.Setup` of that run's config and data (its state is the
      restore template).
    epoch: which checkpoint.
  """
  mngr = ocp.CheckpointManager(os.path.abspath(os.path.join(workdir, 'checkpoints')))
  try:
    epoch = mngr.latest_step() if epoch is None else epoch
    if epoch is None:
      raise FileNotFoundError(f'no checkpoint in {workdir}/checkpoints')
    target = jax.tree.map(ocp.utils.to_shape_dtype_struct, run.state)
    state = mngr.restore(epoch, args=ocp.args.StandardRestore(target))
  finally:
    mngr.close()
  model = nnx.merge(run.evaluate.graphdef, state['params'], state['rest'])
  return model, state


def load_pretrained(workdir: str, *, epoch: int | None = None,
                    mesh: jax.sharding.Mesh | None = None
                    ) -> tuple[models.NCModel, ml_collections.ConfigDict, data.Dataset]:
  """A `train_and_evaluate` run's model, rebuilt from its config.json and checkpoint.

  Returns:
    (model in eval mode, the run's config, its training set).
  """
  config = read_config(workdir)
  mesh = input_lib.make_mesh() if mesh is None else mesh
  train_ds, _ = input_lib.load_data(config)
  model, _ = restore(workdir, train.setup(config, train_ds, mesh), epoch=epoch)
  return model, config, train_ds


def read_config(workdir: str) -> ml_collections.ConfigDict:
  """A trainer run's config.json as a locked-key trainer config."""
  with open(os.path.join(workdir, 'config.json')) as f:
    raw = json.load(f)
  config = train.default_config()
  for key, value in raw.items():
    if isinstance(value, Mapping):
      value = ml_collections.ConfigDict(value)
    elif isinstance(value, list):
      value = tuple(value)
    config[key] = value
  train.check_config(config)
  return config


@functools.partial(jax.jit, static_argnames=('graphdef', 'normalize', 'layers'))
def _forward(state, images, *, graphdef, normalize, layers):
  # Module level, graphdef static: one compile per model structure and shape,
  # however many checkpoints are read.
  logits, feats = nnx.merge(graphdef, state)(normalize(input_lib.to_unit(images)))
  feats = dict(feats, logits=logits)
  return {k: feats[k].astype(jnp.float32) for k in layers}


def extract_features(model: models.NCModel, ds: data.Dataset, *,
                     normalize: Callable[[jax.Array], jax.Array],
                     layers: tuple[str, ...] = ('penultimate',),
                     batch_size: int = 1000) -> dict[str, np.ndarray]:
  """Eval-mode features of every sample of ``ds``: ``{layer: [N, d] float32}``.

  ``'logits'`` may be asked for as a layer too. Sets ``model`` to eval mode.
  Pass the same ``normalize`` function object each time (it is a static
  argument of the compiled forward pass).
  """
  model.eval()
  graphdef, state = nnx.split(model)
  forward = functools.partial(_forward, graphdef=graphdef, normalize=normalize,
                              layers=tuple(layers))
  out = {k: [] for k in layers}
  n = len(ds)
  for s in range(0, n, batch_size):
    idx = np.arange(s, min(s + batch_size, n))
    idx = np.pad(idx, (0, batch_size - len(idx)), mode='edge')  # one shape
    got = forward(state, jnp.asarray(ds.images[idx]))
    for k in layers:
      out[k].append(np.asarray(got[k])[:min(batch_size, n - s)])
  return {k: np.concatenate(v) for k, v in out.items()}
