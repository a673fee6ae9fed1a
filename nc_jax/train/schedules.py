"""Learning-rate schedules of the trainer, in epochs, built from optax.

``config.schedule.name`` picks one of `SCHEDULES`; its keyword arguments
(other than `OWN`, which the trainer supplies) are ``config.schedule.kwargs``.
Every schedule starts with the linear warm-up of ``warmup_epochs`` from
``warmup_init`` to the peak ``config.optimizer.learning_rate``.

The trainer evaluates the schedule once per run into a table of per-step
rates (`table`) and passes each step's rate to the compiled step as an
argument, so runs that differ in schedule, peak rate or length share one
executable.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

# Arguments the trainer supplies (from the optimizer group and the run).
OWN = ('learning_rate', 'steps_per_epoch', 'total_steps', 'warmup_steps',
       'warmup_init')


def _warmup(main: optax.Schedule, learning_rate: float, warmup_steps: int,
            warmup_init: float) -> optax.Schedule:
  if not warmup_steps:
    return main
  return optax.join_schedules(
      [optax.linear_schedule(warmup_init, learning_rate, warmup_steps), main],
      [warmup_steps])


def cosine(learning_rate: float, *, steps_per_epoch: int, total_steps: int,
           warmup_steps: int, warmup_init: float, end_value: float = 0.0,
           exponent: float = 1.0) -> optax.Schedule:
  """Warm-up, then cosine decay to ``end_value`` at the last step."""
  del steps_per_epoch
  return optax.warmup_cosine_decay_schedule(
      warmup_init, learning_rate, warmup_steps,
      max(total_steps, warmup_steps + 1), end_value, exponent)


def constant(learning_rate: float, *, steps_per_epoch: int, total_steps: int,
             warmup_steps: int, warmup_init: float) -> optax.Schedule:
  """Warm-up, then the peak rate."""
  del steps_per_epoch, total_steps
  return _warmup(optax.constant_schedule(learning_rate), learning_rate,
                 warmup_steps, warmup_init)


def exponential(learning_rate: float, *, steps_per_epoch: int,
                total_steps: int, warmup_steps: int, warmup_init: float,
                decay_rate: float = 0.975) -> optax.Schedule:
  """Warm-up, then x ``decay_rate`` once per epoch (paper 000 Fig 3)."""
  del total_steps
  return _warmup(optax.exponential_decay(learning_rate, steps_per_epoch,
                                         decay_rate, staircase=True),
                 learning_rate, warmup_steps, warmup_init)


def step(learning_rate: float, *, steps_per_epoch: int, total_steps: int,
         warmup_steps: int, warmup_init: float, epochs: tuple[int, ...] = (),
         factor: float = 0.1) -> optax.Schedule:
  """Warm-up, then x ``factor`` at each of ``epochs`` (counted from 0)."""
  del total_steps
  main = optax.piecewise_constant_schedule(
      learning_rate, {e * steps_per_epoch - warmup_steps: factor
                      for e in epochs})
  return _warmup(main, learning_rate, warmup_steps, warmup_init)


SCHEDULES = dict(cosine=cosine, constant=constant, exponential=exponential,
                 step=step)


def build(config, steps_per_epoch: int) -> optax.Schedule:
  """The schedule of a trainer config (per optimiser step)."""
  s = config.schedule
  return SCHEDULES[s.name](
      config.optimizer.learning_rate, steps_per_epoch=steps_per_epoch,
      total_steps=config.num_epochs * steps_per_epoch,
      warmup_steps=int(round(s.warmup_epochs * steps_per_epoch)),
      warmup_init=s.warmup_init, **s.kwargs.to_dict())


_CHUNK = 4096  # Steps per evaluation: one shape, whatever the run's length.


def table(schedule: optax.Schedule, num_steps: int) -> np.ndarray:
  """[num_steps] float32 rates of steps 0 .. num_steps - 1.

  Evaluated eagerly in chunks of a fixed size: the primitives compile once
  per process, not once per schedule object (a sweep builds one per run).
  """
  n = max(num_steps, 1)
  steps = np.arange(-(-n // _CHUNK) * _CHUNK, dtype=np.int32)
  rates = [np.asarray(jax.vmap(schedule)(jnp.asarray(chunk)), np.float32)
           for chunk in steps.reshape(-1, _CHUNK)]
  return np.concatenate(rates)[:n]
