"""The one simulation engine of `nc_jax.sims`: simulate, simulate_batch, sweep.

A simulator is a `SimModel`: four pure functions of a static spec (sizes, a
hashable frozen dataclass), traced hyper-parameters (a NamedTuple of
scalars) and a state pytree:

- ``init(spec, hp, seed) -> state``;
- ``train_block(spec, hp, state) -> state`` (``spec.log_every`` steps);
- ``record(spec, hp, state) -> {name: array}`` (the collapse report etc.);
- ``params(state) -> final parameters``; plus ``config_bytes(spec)``, the
  working set of one run under vmap (for the sweep's chunk size).

Each model module registers its spec type (`register`), so every entry point
takes just ``spec=``: `simulate` runs one configuration as one jitted
``lax.scan`` (records every ``log_every`` steps); `simulate_batch` vmaps
training over B configurations; `sweep` runs a (seed x hyper-parameter) grid
as equal-sized chunks of `simulate_batch`. All return a `SimResult`.

References: SPEC.md "Toy models".
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class SimResult(NamedTuple):
  """Outcome of `simulate` (or `sweep`, with leading [S, G] axes on every leaf).

  Attributes:
    params: the final parameters (the model's own pytree).
    history: dict of [T] arrays, T = len(spec.steps), the model's records.
  """

  params: Any
  history: dict[str, jax.Array]


@dataclasses.dataclass(frozen=True)
class SimModel:
  """A simulator's functions (see the module docstring)."""

  init: Callable[[Any, Any, jax.Array], Any]
  train_block: Callable[[Any, Any, Any], Any]
  record: Callable[[Any, Any, Any], dict[str, jax.Array]]
  params: Callable[[Any], Any]
  config_bytes: Callable[[Any], int]
  as_arrays: Callable[[Any], Any]


_MODELS: dict[type, SimModel] = {}


def register(spec_type: type, model: SimModel) -> None:
  """Makes `simulate` & co. run ``model`` for specs of ``spec_type``."""
  _MODELS[spec_type] = model


def model_of(spec) -> SimModel:
  try:
    return _MODELS[type(spec)]
  except KeyError:
    raise TypeError(f'no simulator registered for {type(spec).__name__}; '
                    f'known: {[t.__name__ for t in _MODELS]}') from None


def prng_key(seed: jax.Array) -> jax.Array:
  """A Philox key: exact under vmap like the default Threefry, and on CPU
  several times faster to compile (Threefry's unrolled rounds cost ~1.5 s of
  XLA compile per call site)."""
  return jax.random.key(seed, impl="philox4x32")


def scan_blocks(train_block: Callable[[Any], Any], record_fn: Callable[[Any], Any],
                state: Any, *, num_blocks: int) -> tuple[Any, Any]:
  """Records ``state``, then ``num_blocks`` times trains a block and records: one scan.

  Block 0 only records (a ``cond`` on the unbatched block index), so the
  record, which dominates compile time, is traced once.

  Returns:
    (final state, records stacked on a leading [num_blocks + 1] axis).
  """
  def body(state, i):
    state = jax.lax.cond(i > 0, train_block, lambda s: s, state)
    return state, record_fn(state)

  return jax.lax.scan(body, state, jnp.arange(num_blocks + 1))


def _num_blocks(spec) -> int:
  return spec.num_steps // spec.log_every


@partial(jax.jit, static_argnames=("spec",))
def simulate(hp: Any, seed: jax.Array, *, spec: Any) -> SimResult:
  """Trains one configuration from random initialisation, recording on the way.

  Args:
    hp: hyper-parameters (scalars; traced, so a new value does not recompile).
    seed: integer scalar; initialisation (and any noise) derive from it.
    spec: static problem description (`UFMSpec`, `MixtureSpec`).

  Returns:
    `SimResult` with history arrays of length ``len(spec.steps)``.
  """
  m = model_of(spec)
  hp = m.as_arrays(hp)
  state, history = scan_blocks(partial(m.train_block, spec, hp),
                               partial(m.record, spec, hp),
                               m.init(spec, hp, seed), num_blocks=_num_blocks(spec))
  return SimResult(m.params(state), history)


def default_record_batch_size() -> int | None:
  """How many configurations' records `simulate_batch` vmaps together.

  0 (all: one vmap) on accelerators. None (one at a time, ``lax.map``) on
  CPU: the metrics' eigen-decompositions, vmapped, become batched LAPACK
  kernels that split the batch over XLA's intra-op thread pool and wait on
  it; two of them running concurrently on a 2-thread pool were seen to stall
  for minutes (jaxlib 0.10.2). One at a time costs nothing on CPU (the
  per-config record time is the same either way).
  """
  return None if jax.default_backend() == "cpu" else 0


@partial(jax.jit, static_argnames=("spec", "record_batch_size"))
def simulate_batch(hp: Any, seeds: jax.Array, *, spec: Any,
                   record_batch_size: int | None = 0) -> SimResult:
  """`simulate` for B configurations at once: hyper-parameters with [B] leaves, [B] seeds.

  Training is vmapped; the records go through ``lax.map`` with
  ``record_batch_size`` (0: one vmap over all B; None: one at a time; see
  `default_record_batch_size`).

  Returns:
    `SimResult` with leading [B] axes.
  """
  m = model_of(spec)
  hp = m.as_arrays(hp)
  state = jax.vmap(partial(m.init, spec))(hp, seeds)
  train = lambda s: jax.vmap(partial(m.train_block, spec))(hp, s)
  rec = lambda s: jax.lax.map(lambda a: m.record(spec, a[1], a[0]), (s, hp),
                              batch_size=record_batch_size)
  state, history = scan_blocks(train, rec, state, num_blocks=_num_blocks(spec))
  return SimResult(jax.vmap(m.params)(state),
                   jax.tree.map(lambda x: jnp.swapaxes(x, 0, 1), history))


def grid(**values: Sequence[float]) -> dict[str, np.ndarray]:
  """Cartesian product of named value lists as flat [G] arrays (last name fastest).

  Example:
    >>> grid(lambda_w=[1e-4, 1e-3], lambda_h=[0.0, 1e-3])["lambda_h"]
    array([0.   , 0.001, 0.   , 0.001])
  """
  mesh = np.meshgrid(*(np.asarray(v, np.float64) for v in values.values()), indexing="ij")
  return {name: m.reshape(-1) for name, m in zip(values, mesh)}


def map_configs(batched_fn: Callable[[Any, jax.Array], Any], hparams: Any,
                seeds: Sequence[int], *, chunk_size: int,
                progress: Callable[[str], None] | None = None) -> Any:
  """Runs every (seed, grid point) through ``batched_fn`` in equal-sized chunks.

  The S x G configurations are flattened seed-major and cut into chunks of
  ``chunk_size``; the last chunk is padded with copies of its last
  configuration so that every call has the same shapes and compiles once.
  Results are moved to host memory after every chunk.

  Args:
    batched_fn: a jitted function of (hyper-parameters with [B] leaves, [B]
      int32 seeds) returning a pytree with leading axis B, e.g.
      `simulate_batch` with its spec bound.
    hparams: pytree whose leaves all have shape [G].
    seeds: S integer seeds.
    chunk_size: configurations per call (B).
    progress: called with a one-line message after every chunk.

  Returns:
    The pytree ``batched_fn`` returns, as NumPy arrays with leading axes [S, G].
  """
  leaves = jax.tree.leaves(hparams)
  g = int(np.shape(leaves[0])[0])
  if any(np.shape(x) != (g,) for x in leaves):
    raise ValueError(f"every hyper-parameter must have shape [G]; got "
                     f"{[np.shape(x) for x in leaves]}")
  seeds = np.asarray(seeds, np.int32)
  s = seeds.shape[0]
  total = s * g
  flat_hp = jax.tree.map(lambda x: np.tile(np.asarray(x, np.float32), s), hparams)
  flat_seeds = np.repeat(seeds, g)
  chunk_size = max(1, min(chunk_size, total))
  outs = []
  start_time = time.perf_counter()
  for start in range(0, total, chunk_size):
    idx = np.minimum(np.arange(start, start + chunk_size), total - 1)
    out = batched_fn(jax.tree.map(lambda x: x[idx], flat_hp), flat_seeds[idx])
    used = min(chunk_size, total - start)
    outs.append(jax.tree.map(lambda x: np.asarray(x)[:used], out))
    if progress is not None:
      progress(f"  configs {start + used}/{total} done "
               f"({time.perf_counter() - start_time:.1f} s)")
  joined = jax.tree.map(lambda *xs: np.concatenate(xs), *outs)
  return jax.tree.map(lambda x: x.reshape((s, g) + x.shape[1:]), joined)


def chunk_size_for(bytes_per_config: int, *, memory_budget_bytes: int) -> int:
  """Configurations per chunk so that a chunk's working set fits the budget."""
  return max(1, int(memory_budget_bytes // max(1, bytes_per_config)))


def sweep(hparams: Any, seeds: Sequence[int], *, spec: Any,
          chunk_size: int | None = None, memory_budget_bytes: int = 1 << 30,
          progress: Callable[[str], None] | None = None) -> SimResult:
  """Runs `simulate` for every (seed, grid point) in one vmapped computation.

  Args:
    hparams: hyper-parameters whose fields are scalars (shared) or [G]
      arrays (the grid, e.g. from `grid`); scalars are broadcast to [G].
    seeds: S integer seeds.
    spec: static problem shared by all configurations (sweeps over sizes
      need one call per size).
    chunk_size: configurations per vmapped call; default: as many as fit in
      ``memory_budget_bytes`` by the model's ``config_bytes``.
    memory_budget_bytes: budget for the automatic chunk size.
    progress: called with a message after every chunk (e.g. ``print``).

  Returns:
    `SimResult` whose leaves have leading axes [S, G]; entry [s, g] equals
    ``simulate(hparams[g], seeds[s], spec=spec)`` up to float rounding.
  """
  hparams = broadcast_grid(hparams)
  if chunk_size is None:
    chunk_size = chunk_size_for(model_of(spec).config_bytes(spec),
                                memory_budget_bytes=memory_budget_bytes)
  batched = partial(simulate_batch, spec=spec,
                    record_batch_size=default_record_batch_size())
  return map_configs(batched, hparams, seeds, chunk_size=chunk_size, progress=progress)


def broadcast_grid(hparams: Any) -> Any:
  """Broadcasts a pytree of scalars and [G] arrays to [G] arrays (float32)."""
  leaves = [np.asarray(x, np.float32) for x in jax.tree.leaves(hparams)]
  g = max([x.shape[0] for x in leaves if x.ndim == 1], default=1)
  if any(x.ndim > 1 or (x.ndim == 1 and x.shape[0] != g) for x in leaves):
    raise ValueError(f"hyper-parameters must be scalars or length-{g} vectors; got shapes "
                     f"{[x.shape for x in leaves]}")
  return jax.tree.unflatten(jax.tree.structure(hparams),
                            [np.broadcast_to(x, (g,)).copy() for x in leaves])
