"""Process hygiene for long jobs on XLA:CPU: compiled programs and memory maps.

The trainer compiles each program once per process and keeps it (jit caches
keyed on the model's structure and the step's static choices), so the runs
of a sweep share executables. On XLA:CPU every executable holds about three
memory mappings per kernel (~800 for a small MLP's train and eval steps), and
Linux caps a process at ``vm.max_map_count`` (65,530 by default): a process
that trains ~80 differently shaped models, or the whole test suite, would
die in the compiler (a segfault) past it. `release_programs_near_map_limit`
drops JAX's compiled programs once the process holds more than a fraction
of the cap; the next run compiles afresh. `nc_jax.studies.sweep.run_all`
calls it between runs, the test suite between test modules.
"""

from __future__ import annotations

import gc

from absl import logging
import jax

_MAPS = '/proc/self/maps'
_LIMIT = '/proc/sys/vm/max_map_count'


def memory_mappings() -> int | None:
  """The number of memory mappings of this process (None off Linux)."""
  try:
    with open(_MAPS) as f:
      return sum(1 for _ in f)
  except OSError:
    return None


def map_limit() -> int | None:
  """Linux's ``vm.max_map_count`` (None off Linux)."""
  try:
    with open(_LIMIT) as f:
      return int(f.read())
  except (OSError, ValueError):
    return None


def release_programs_near_map_limit(fraction: float = 0.5) -> bool:
  """Drops JAX's compiled programs when mappings exceed ``fraction`` of the cap.

  Returns:
    Whether the programs were dropped (False off Linux or below the mark).
  """
  used, limit = memory_mappings(), map_limit()
  if used is None or limit is None or used <= fraction * limit:
    return False
  logging.info('%d memory mappings of %d allowed: dropping compiled programs',
               used, limit)
  jax.clear_caches()
  gc.collect()
  return True
