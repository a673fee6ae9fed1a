"""The model a config trains, and the model and features of a finished run.

- `build(config, input_shape, num_classes)`: the trainer's one model factory.
  Without ``config.init.workdir``: ``models.create_model(config.model.name,
  **config.model.kwargs)``. With it: the pretrained run's model
  (`from_run`), then the fine-tuning variant of paper 001 sec 3.3
  (``config.init.finetune``): ``'linear_probe'`` (a new head), ``'layer'``
  (the head and ``config.init.finetune_block``), ``'scl'``
  (`SCLModel`: a skip connection from that block, 001 Fig 7), ``'full'`` or
  ``''``. What trains and what is frozen: `nc_jax.train.finetune`.
- ``model.json`` (`write_model_info` / `read_model_info`): a run's input
  shape, classes, feature widths and input normalisation (`normalizer`).
- `from_run(workdir, epoch)`: a run's model in eval mode, parameters only
  (an abstract `nnx.eval_shape` model filled by an orbax partial restore: no
  optimiser state and no data set is built).
- `extract_features`: any layers' features of a data set through the
  evaluator's mesh-sharded forward pass.

Reading a run as a whole (config, records, model, features):
`nc_jax.rundir.RunDir`.

References:
  Paper 001 sec 3.3, Table 2, App A.3; SPEC.md "Transfer (000, 001)".
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import flax
from flax import nnx

from nc_jax import data
from nc_jax import models
from nc_jax.train import checkpoints
from nc_jax.train import input as input_lib
from nc_jax.train import tracking
from nc_jax.train.config import read_config
from nc_jax.workdir import Workdir

MODEL_INFO = 'model.json'  # What a run's model is, written by the trainer.


class SCLModel(models.NCModel):
  """A pretrained encoder with a skip connection from one block (001 Fig 7).

  ``h = h_penultimate + S(h_block)``, ``logits = W h + b``. ``S`` is the
  identity when the widths match (the paper's ViT case; equal-width MLPs),
  else a linear map of the pooled block features followed by BatchNorm (the
  paper's adaptive pooling + 1x1 convolution + BN for ResNets: the block
  features are already pooled). ``features['penultimate']`` is the combined
  ``h`` (the classifier input), as the `NCModel` contract requires.
  """

  def __init__(self, base: models.NCModel, block: str, *, block_dim: int,
               penultimate_dim: int, num_classes: int, rngs: nnx.Rngs):
    self.base = base
    self.block_name = block
    self.identity = block_dim == penultimate_dim
    if self.identity:
      self.skip = self.skip_norm = None
    else:
      self.skip = nnx.Linear(block_dim, penultimate_dim, use_bias=False,
                             rngs=rngs)
      self.skip_norm = nnx.BatchNorm(penultimate_dim, momentum=0.9,
                                     epsilon=1e-5, rngs=rngs)
    # The base's encoder (its classifier-side head layers, if any, are not
    # used: SCL adds its skip to the encoder output).
    keys = base.encoder_keys
    self._init_outputs(keys, penultimate_dim, num_classes=num_classes,
                       projection=None, projection_dim=0, dtype=None, rngs=rngs)

  def _block(self, index: int, name: str) -> nnx.Module:
    return self.base.block(name)

  def encode(self, x: jax.Array) -> models.Features:
    feats = self.base.encode(x)
    skip = feats[self.block_name]
    if not self.identity:
      skip = self.skip_norm(self.skip(skip))
    feats['penultimate'] = feats['penultimate'] + skip
    return feats


def feature_dims(model: models.NCModel,
                 input_shape: Sequence[int]) -> dict[str, int]:
  """``{feature name: width}`` from an abstract forward pass."""
  graphdef, state = nnx.split(model)
  x = jax.ShapeDtypeStruct((1,) + tuple(input_shape), jnp.float32)
  out = jax.eval_shape(lambda s, x: nnx.merge(graphdef, s)(x)[1], state, x)
  return {k: v.shape[-1] for k, v in out.items()}


# ---------------------------------------------------------------------------
# model.json and input normalisation.
# ---------------------------------------------------------------------------


def write_model_info(wd: Workdir, info: Mapping[str, Any]) -> str:
  """Writes a run's ``model.json`` (the trainer's `Setup.model_info`)."""
  return wd.write_json(MODEL_INFO, info)


def read_model_info(workdir: str) -> dict[str, Any]:
  """A run's ``model.json``: input_shape, num_classes, feature_dims, mean, std."""
  path = os.path.join(workdir, MODEL_INFO)
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path} does not exist: is {workdir} a finished '
                            'or started run of the nc_jax trainer?')
  with open(path) as f:
    return json.load(f)


@flax.struct.dataclass
class Normalizer:
  """``x -> (x - mean) / std`` on device: a pytree of its two arrays.

  Compiled programs take it as an argument (its arrays are traced), so runs
  and checkpoints with other statistics reuse one executable.
  """

  mean: jax.Array
  std: jax.Array

  def __call__(self, x: jax.Array) -> jax.Array:
    return (x - self.mean) / self.std


def normalizer(mean, std) -> Normalizer:
  """The `Normalizer` of per-channel (or per-feature) ``mean`` and ``std``."""
  return Normalizer(jnp.asarray(mean, jnp.float32),
                    jnp.asarray(std, jnp.float32))


def normalization(config, train_ds: data.Dataset) -> tuple[list, list]:
  """(mean, std) inputs are normalised with: the pretrained run's, or the data's."""
  if config.init.workdir:
    info = read_model_info(config.init.workdir)
    return info['mean'], info['std']
  mean, std = data.dataset_stats(train_ds)
  return np.asarray(mean).tolist(), np.asarray(std).tolist()


# ---------------------------------------------------------------------------
# The model of a config, and of a run.
# ---------------------------------------------------------------------------


def set_compute_dtype(model: nnx.Module, dtype: str) -> nnx.Module:
  """Every flax layer of ``model`` computes in ``dtype``; parameters keep theirs.

  Mixed precision as big_vision and flax's examples train on accelerators:
  ``'bfloat16'`` activations and gradients with float32 parameters (and so
  float32 optimiser state); ``'float32'`` restores the default (the dtype
  inferred from inputs and parameters). The trainer casts logits and
  features to float32 before the loss and the collapse statistics.
  """
  dt = None if dtype == 'float32' else jnp.dtype(dtype)
  for _, m in nnx.iter_modules(model):
    if hasattr(m, 'param_dtype') and hasattr(m, 'dtype'):  # flax layers
      m.dtype = dt
  return model


def build(config, input_shape: Sequence[int], num_classes: int, *,
          restore: bool = True) -> models.NCModel:
  """The model ``config`` trains (see the module docstring), computing in
  ``config.model.compute_dtype`` (`set_compute_dtype`).

  Args:
    config: a trainer config.
    input_shape: one input's shape.
    num_classes: classes of this run's labels.
    restore: with ``init.workdir``, read the pretrained parameters (False:
      the structure only, for abstract restore templates).
  """
  return set_compute_dtype(_build(config, input_shape, num_classes, restore=restore),
                           config.model.get('compute_dtype', 'float32'))


def _build(config, input_shape: Sequence[int], num_classes: int, *,
           restore: bool) -> models.NCModel:
  rngs = nnx.Rngs(config.seed)
  init = config.init
  if not init.workdir:
    return models.create_model(config.model.name, num_classes=num_classes,
                               rngs=rngs, input_shape=input_shape,
                               **config.model.kwargs.to_dict())
  info = read_model_info(init.workdir)
  if restore:
    base = from_run(init.workdir, init.epoch or None,
                    input_shape=info['input_shape'],
                    num_classes=info['num_classes'])
    base.train()
  else:
    base = build(read_config(init.workdir), info['input_shape'],
                 info['num_classes'], restore=False)
  variant = init.finetune or 'full'
  if variant in ('layer', 'scl'):
    base.block(init.finetune_block)  # Validates the name.
  dims = feature_dims(base, input_shape)
  if variant == 'scl':
    return SCLModel(base, init.finetune_block,
                    block_dim=dims[init.finetune_block],
                    penultimate_dim=dims['penultimate'],
                    num_classes=num_classes, rngs=rngs)
  if init.new_head or num_classes != info['num_classes']:
    base.head = nnx.Linear(dims['penultimate'], num_classes, rngs=rngs)
  return base


def from_run(workdir: str, epoch: int | None = None, *,
             input_shape: Sequence[int] | None = None,
             num_classes: int | None = None) -> models.NCModel:
  """The model of a trainer run at ``epoch`` (default: its latest), eval mode.

  Only parameters and batch statistics are read (an orbax partial restore
  into an abstract model from `nnx.eval_shape`): no optimiser state and no
  data set is built. The parameters are replicated over every device.

  Args:
    workdir: a run of `nc_jax.train.train_and_evaluate`.
    epoch: which checkpoint; None: the latest that restores.
    input_shape, num_classes: the model's input shape and classes (default:
      the run's ``model.json``).

  Raises:
    checkpoints.CheckpointError: no (such) checkpoint restores.
  """
  config = read_config(workdir)
  if input_shape is None or num_classes is None:
    info = read_model_info(workdir)
    input_shape = info['input_shape'] if input_shape is None else input_shape
    num_classes = info['num_classes'] if num_classes is None else num_classes
  abstract = nnx.eval_shape(lambda: build(
      config, tuple(input_shape), num_classes, restore=False))
  graphdef, params, rest = nnx.split(abstract, nnx.Param, ...)
  replicated = jax.sharding.NamedSharding(input_lib.make_mesh(),
                                          jax.sharding.PartitionSpec())
  target = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated),
      {'params': params, 'rest': rest})
  _, restored = checkpoints.restore_partial(workdir, target, epoch=epoch)
  model = nnx.merge(graphdef, restored['params'], restored['rest'])
  model.eval()
  return model


# ---------------------------------------------------------------------------
# Features.
# ---------------------------------------------------------------------------


def extract_features(model: models.NCModel, ds: data.Dataset, *,
                     normalize, layers: Sequence[str] = ('penultimate',),
                     batch_size: int = 1000,
                     mesh: jax.sharding.Mesh | None = None
                     ) -> dict[str, np.ndarray]:
  """Eval-mode features of every example of ``ds``: ``{layer: [N, d]}``.

  The forward pass is the evaluator's (`tracking.forward`): padded
  batches sharded over ``mesh`` (default: every device). ``'logits'`` may be
  asked for as a layer. ``batch_size`` is rounded up to a multiple of the
  number of devices.

  Args:
    model: any `NCModel` (set to eval mode).
    ds: the data set.
    normalize: the run's input normalisation (`normalizer`); None: none.
    layers: feature names (`models.feature_names`) and/or ``'logits'``.
    batch_size: examples per forward pass.
    mesh: a ``'data'`` mesh.
  """
  mesh = input_lib.make_mesh() if mesh is None else mesh
  if batch_size % mesh.size:
    batch_size += mesh.size - batch_size % mesh.size
  model.eval()
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  if normalize is None:
    normalize = normalizer(0.0, 1.0)
  if not isinstance(normalize, Normalizer):
    raise TypeError('normalize must be a Normalizer (nc_jax.train.model.'
                    'normalizer(mean, std), or RunDir(...).normalize) or None, '
                    f'got {type(normalize).__name__}')
  out = {k: [] for k in layers}
  for idx, valid in input_lib.eval_indices(len(ds), batch_size):
    (images,) = input_lib.global_batch(mesh, ds.images[idx])
    got = tracking.forward(params, rest, images, normalize,
                           graphdef=graphdef, layers=tuple(layers))
    for k in layers:
      out[k].append(np.asarray(got[k])[:valid])
  return {k: np.concatenate(v) for k, v in out.items()}
