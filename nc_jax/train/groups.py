"""The groups of the trainer's config that name a function, and its options.

``loss``, ``optimizer`` and ``schedule`` each name a function
(`losses.LOSSES`, an ``optax`` optimiser, `schedules.SCHEDULES`) and hold
its keyword arguments in ``kwargs``. `loss`, `optimizer` and `schedule`
build such a group with every keyword argument of the function (its
defaults, then the given ones), so each is overridable on the command line
(``--config.optimizer.kwargs.nesterov=True``) and an option the function
does not take is an error naming the ones it does (`check_kwargs`).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import ml_collections
import optax

from nc_jax.train import losses as losses_lib
from nc_jax.train import schedules as schedules_lib

ConfigDict = ml_collections.ConfigDict

# The optimiser's arguments the group sets itself (not through kwargs).
OPTIMIZER_OWN = ('learning_rate', 'weight_decay', 'mask')


def keyword_defaults(fn: Callable, skip: tuple[str, ...] = ()) -> dict:
  """``fn``'s keyword arguments with literal defaults, in order."""
  out = {}
  for name, p in inspect.signature(fn).parameters.items():
    if (name in skip or p.default is inspect.Parameter.empty or
        p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)):
      continue
    if p.default is None or isinstance(p.default, (bool, int, float, str,
                                                   tuple)):
      out[name] = p.default
  return out


def with_kwargs(what: str, fn: Callable, given: Mapping[str, Any],
                 skip: tuple[str, ...] = ()) -> ConfigDict:
  kwargs = keyword_defaults(fn, skip)
  check_kwargs(what, fn, given, skip)
  for k, v in given.items():  # An int where the default is a float: float,
    # so that a later override of either type is accepted (ConfigDict types).
    floaty = isinstance(kwargs[k], float) and isinstance(v, int)
    kwargs[k] = float(v) if floaty and not isinstance(v, bool) else v
  # None defaults (momentum=None) accept any later type.
  return ConfigDict(kwargs)


def check_kwargs(what: str, fn: Callable, given: Mapping[str, Any],
                  skip: tuple[str, ...] = ()) -> None:
  accepted = [k for k in keyword_defaults(fn) if k not in skip]
  unknown = sorted(set(given) - set(accepted))
  if unknown:
    def hint(k):
      h = difflib.get_close_matches(k, accepted, n=1)
      return repr(k) + (f' (did you mean {h[0]!r}?)' if h else '')
    raise ValueError(
        f'{what} takes no keyword argument(s) [{", ".join(map(hint, unknown))}]'
        f'; it takes {accepted}. To change the choice of a group, build the '
        'whole group: nc_jax.train.optimizer / schedule / loss(name, ...)')


def optimizer_fn(name: str) -> Callable:
  """The optax optimiser called ``name`` (``'sgd'``, ``'adamw'``, ...)."""
  fn = getattr(optax, name, None)
  if not callable(fn) or 'learning_rate' not in inspect.signature(
      fn).parameters:
    raise ValueError(f'config.optimizer.name={name!r} is not an optax '
                     "optimiser (a function of learning_rate: 'sgd', "
                     "'adamw', 'adam', 'lion', ...)")
  return fn


def loss(name: str = 'ce', *, cosine_reg: float = 0.0,
         **kwargs) -> ConfigDict:
  """A ``loss`` group: `losses.LOSSES[name]` and its keyword arguments.

  'ce' (temperature, label_smoothing), 'mse' (one-hot targets;
  label_smoothing), 'supcon' (temperature; plus an online linear probe).
  ``cosine_reg``: lambda of the within-class cosine term R, minimised as
  ``loss + lambda * R`` (`losses.within_class_cosine`; paper 000 sec 6.3).
  """
  if name not in losses_lib.LOSSES:
    raise ValueError(f'config.loss.name={name!r}; choose from '
                     f'{tuple(losses_lib.LOSSES)}')
  return ConfigDict(dict(name=name, kwargs=with_kwargs(
      f'loss {name!r}', losses_lib.LOSSES[name], kwargs),
                         cosine_reg=float(cosine_reg)))


def optimizer(name: str = 'sgd', *, learning_rate: float = 0.1,
              weight_decay: float = 5e-4, weight_decay_on: str = 'all',
              grad_clip_norm: float = 0.0, **kwargs) -> ConfigDict:
  """An ``optimizer`` group: ``optax.<name>`` and its keyword arguments.

  ``learning_rate`` is the peak of the schedule. Weight decay is coupled L2
  (added to the gradient, as PyTorch's SGD) unless the optimiser takes a
  ``weight_decay`` argument itself (adamw: decoupled); ``weight_decay_on``
  'all' | 'kernels' (parameters with ndim >= 2). ``grad_clip_norm`` > 0
  clips the global gradient norm first.
  """
  fn = optimizer_fn(name)
  return ConfigDict(dict(
      name=name, kwargs=with_kwargs(f'optax.{name}', fn, kwargs,
                                     OPTIMIZER_OWN),
      learning_rate=float(learning_rate), weight_decay=float(weight_decay),
      weight_decay_on=weight_decay_on, grad_clip_norm=float(grad_clip_norm)))


def schedule(name: str = 'cosine', *, warmup_epochs: float = 0.0,
             warmup_init: float = 0.0, **kwargs) -> ConfigDict:
  """A ``schedule`` group: `schedules.SCHEDULES[name]` and its arguments.

  'cosine' (to end_value), 'constant', 'exponential' (x decay_rate per
  epoch), 'step' (x factor at each of epochs); a linear warm-up of
  ``warmup_epochs`` from ``warmup_init`` comes first.
  """
  if name not in schedules_lib.SCHEDULES:
    raise ValueError(f'config.schedule.name={name!r}; choose from '
                     f'{tuple(schedules_lib.SCHEDULES)}')
  return ConfigDict(dict(
      name=name, kwargs=with_kwargs(f'schedule {name!r}',
                                     schedules_lib.SCHEDULES[name], kwargs,
                                     schedules_lib.OWN),
      warmup_epochs=float(warmup_epochs), warmup_init=float(warmup_init)))
