"""The optimiser and the compiled update step of the trainer.

Compiled once per process: `train_step` is one module-level ``jax.jit``
whose static argument is a hashable `TrainSpec` (the model's structure, the
memoised optimiser, the loss and augmentation choices); the numbers a sweep
varies (the step's learning rate, the loss's float options, the
regulariser's weight, noise std, attack radius, seed) and the input
normalisation are array arguments, so the runs of a sweep share executables.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from nc_jax.train import config as config_lib
from nc_jax.train import finetune
from nc_jax.train import input as input_lib
from nc_jax.train import losses
from nc_jax.train import schedules as schedules_lib


def _unit_rate(count):
  """The optimiser's own rate: 1 (the schedule's rate scales its update)."""
  del count
  return 1.0


def _kernels(params):
  return jax.tree.map(lambda p: p.ndim > 1, params)


@functools.lru_cache(maxsize=None)
def _labeller(paths: tuple[tuple, ...]):
  return functools.partial(finetune.param_labels, paths=paths)


@functools.lru_cache(maxsize=64)
def _transformation(name: str, kwargs: tuple, weight_decay: float,
                    weight_decay_on: str, grad_clip_norm: float,
                    paths: tuple[tuple, ...] | None
                    ) -> optax.GradientTransformation:
  """The optimiser without its rate, memoised: equal configs, equal objects.

  Its rate is the constant 1 through a schedule (so the optimiser state has
  the layout of a scheduled one), and the step multiplies the update by the
  rate of `schedules.table`: a sweep over rates, schedules or run lengths
  compiles one step.
  """
  fn = config_lib.optimizer_fn(name)
  takes = inspect.signature(fn).parameters
  mask = _kernels if weight_decay_on == 'kernels' else None
  kw, parts = dict(kwargs), []
  if grad_clip_norm:
    parts.append(optax.clip_by_global_norm(grad_clip_norm))
  if 'weight_decay' in takes:  # Decoupled (adamw): inside the optimiser.
    kw['weight_decay'] = weight_decay
    if 'mask' in takes:
      kw['mask'] = mask
  elif weight_decay:  # Coupled L2, as PyTorch's SGD.
    parts.append(optax.add_decayed_weights(weight_decay, mask))
  parts.append(fn(_unit_rate, **kw))
  tx = optax.chain(*parts)
  return tx if paths is None else finetune.freeze(tx, _labeller(paths))


def make_optimizer(config, steps_per_epoch: int, *,
                   paths: tuple[tuple, ...] | None = None):
  """(optax transformation without the rate, learning-rate schedule).

  The update of the trainer is ``rate(step) * tx.update(...)``: the
  transformation is built with rate 1 (`_transformation`), the schedule
  (`schedules.build`) gives ``rate``. ``paths``: the module paths that train
  (`finetune.trainable_paths`); the others get zero updates.
  """
  o = config.optimizer
  tx = _transformation(o.name, tuple(sorted(o.kwargs.to_dict().items())),
                       o.weight_decay, o.weight_decay_on, o.grad_clip_norm,
                       paths)
  return tx, schedules_lib.build(config, steps_per_epoch)


# ---------------------------------------------------------------------------
# Update step.
# ---------------------------------------------------------------------------


class TrainSpec(NamedTuple):
  """The static choices of the update step (hashable: one compile each).

  Numbers that sweeps vary (the rate, the loss's float options, the
  regulariser's weight, the noise std, the attack radius) are not here:
  they are arguments of the step (`hyperparameters`).
  """

  graphdef: Any
  tx: optax.GradientTransformation
  mesh: jax.sharding.Mesh
  num_classes: int
  loss: str
  loss_static: tuple  # (name, value) of the loss's non-float options.
  cosine_reg: bool  # Whether the within-class cosine term is on.
  crop_padding: int
  flip: bool
  noise: bool
  jitter: bool
  erase: bool
  adversarial_steps: int  # 0: no adversarial training.

  @classmethod
  def of(cls, config, graphdef, tx, mesh, num_classes: int) -> TrainSpec:
    a = config.augment
    return cls(graphdef, tx, mesh, num_classes, config.loss.name,
               tuple(sorted((k, v) for k, v in config.loss.kwargs.items()
                            if not isinstance(v, float))),
               bool(config.loss.cosine_reg), a.crop_padding, a.flip,
               bool(a.noise), bool(a.jitter), bool(a.erase),
               a.adversarial_steps * bool(a.adversarial_eps))


def hyperparameters(config) -> dict[str, Any]:
  """The step's numeric arguments of a config (all but the rate)."""
  # Host arrays: every process puts the same values on the global mesh.
  f32 = lambda v: np.asarray(v, np.float32)
  return dict(
      seed=np.asarray(config.seed, np.int32),
      loss={k: f32(v) for k, v in config.loss.kwargs.items()
            if isinstance(v, float)},
      cosine_reg=f32(config.loss.cosine_reg), noise=f32(config.augment.noise),
      jitter=f32(config.augment.jitter), erase=f32(config.augment.erase),
      adversarial_eps=f32(config.augment.adversarial_eps))


def zero_running() -> dict[str, jax.Array]:
  # Distinct buffers: the step donates them.
  keys = ('loss', 'correct', 'count', 'nonfinite', 'l2_grads', 'l2_params')
  return {k: jnp.zeros((), jnp.float32) for k in keys}


@functools.partial(jax.jit, static_argnames='spec',
                   donate_argnames=('state', 'running'))
def train_step(state, running, images, labels, rate, hyper, normalize, *,
               spec: TrainSpec):
  """One optimiser step; `running` sums the epoch's loss and accuracy.

  Args:
    state: ``{'step', 'params', 'rest', 'opt_state'}`` (donated).
    running: the epoch's sums (donated; `_zero_running`).
    images, labels: the global batch.
    rate: this step's learning rate (`schedules.table`).
    hyper: `hyperparameters` of the config.
    normalize: the input `model.Normalizer`.
    spec: the static choices (`TrainSpec`).
  """
  key = jax.random.fold_in(jax.random.key(hyper['seed']), state['step'])
  x = input_lib.to_unit(images)
  aug = functools.partial(input_lib.augment, crop_padding=spec.crop_padding,
                          flip=spec.flip,
                          noise=hyper['noise'] if spec.noise else 0.0,
                          jitter=hyper['jitter'] if spec.jitter else 0.0,
                          erase=hyper['erase'] if spec.erase else 0.0)
  if spec.loss == 'supcon':  # Two augmented views of every image.
    k1, k2 = jax.random.split(key)
    x = jnp.concatenate([aug(k1, x), aug(k2, x)])
    labels = jnp.concatenate([labels, labels])
  elif spec.crop_padding or spec.flip or spec.noise or spec.jitter or spec.erase:
    x = aug(key, x)
  objective = functools.partial(
      losses.objective, labels=labels, loss=spec.loss,
      kwargs=dict(spec.loss_static, **hyper['loss']),
      cosine_reg=hyper['cosine_reg'] if spec.cosine_reg else None,
      num_classes=spec.num_classes)

  def loss_of(params, x):
    # Fresh Variables inside the grad trace, so BatchNorm may update them.
    model = nnx.merge(spec.graphdef, params, state['rest'], copy=True)
    loss, logits = objective(model, normalize(x))
    _, _, rest = nnx.split(model, nnx.Param, ...)
    return loss, (logits, rest)

  if spec.adversarial_steps:
    x = losses.adversarial(lambda xa: loss_of(state['params'], xa)[0], x,
                           eps=hyper['adversarial_eps'],
                           steps=spec.adversarial_steps,
                           key=jax.random.fold_in(key, 3))
  (loss, (logits, rest)), grads = jax.value_and_grad(loss_of, has_aux=True)(
      state['params'], x)
  updates, opt_state = spec.tx.update(grads, state['opt_state'],
                                      state['params'])
  updates = jax.tree.map(lambda u: (rate * u).astype(u.dtype), updates)
  params = optax.apply_updates(state['params'], updates)
  n = jnp.float32(labels.shape[0])
  running = dict(
      loss=running['loss'] + loss * n,
      correct=running['correct'] + jnp.sum(jnp.argmax(logits, -1) == labels),
      count=running['count'] + n,
      nonfinite=running['nonfinite'] + (~jnp.isfinite(loss)),
      l2_grads=optax.tree.norm(grads), l2_params=optax.tree.norm(params))
  state = dict(step=state['step'] + 1, params=params, rest=rest,
               opt_state=opt_state)
  replicated = NamedSharding(spec.mesh, P())
  return jax.lax.with_sharding_constraint((state, running), replicated)
