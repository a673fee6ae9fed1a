"""What a collapse report costs, before anything is allocated: `plan`.

At a language model's scale (tens of thousands of classes, features of 1k-4k
dimensions, millions of tokens) the paths of the report differ by orders of
magnitude in memory. `plan` gives, for each path, the bytes of its largest
arrays and its arithmetic in GEMM-equivalents, the flops of the bare GEMM of
the data (the [N, p]^T [N, p] product behind Sigma_W, 2 N p^2 flops), and
picks the cheapest exact path that fits a memory budget:

==========================  ======================  ==============================
path                        bytes (x itemsize)      GEMM-equivalents
==========================  ======================  ==============================
features (in memory)        N p                     -
class layout (in memory)    N p (sorted rows)       ~3 / p (class sums)
pooled scatter Sigma_W      p^2 + 2 C p             1
per-class scatter S_k       C p^2 + 2 C p           1 (streamed; one-pass rank)
eigen-decompositions        3 p^2                   5 p / N (about 10 p^3 flops)
pairwise, one C x C array   4 C^2                   C^2 / (N p) (one Gram)
pairwise, row blocks of T   4 T C                   2 C^2 / (N p) (two sweeps,
                                                    `core.pairwise`)
numerical rank, in memory   (the class layout)      2 iters / p (power iteration)
==========================  ======================  ==============================

The pairwise metrics use one C x C array up to `PAIR_BLOCK_ELEMS` pairs
and row blocks beyond, with T chosen to fit (``pair_rows``). Streamed, the
per-class scatter (needed for `numerical_rank` in one pass) costs C p^2; where
it does not fit, `check_scatter` says so before anything is allocated and
names the pooled layout, which fits (`stats.accumulate` calls it).

The numbers are estimates of what the report's arrays need (XLA adds
workspace); they are exact for the arrays the paths are defined by.
"""

from __future__ import annotations

import dataclasses
import os

import jax
import numpy as np

# Elements of one [T, C] block of pairwise temporaries (`core`'s pairwise
# metrics): up to this many pairs they build the whole C x C Gram (C <= 2048),
# beyond it they reduce row blocks of T = PAIR_BLOCK_ELEMS // C classes
# (16 MiB per float32 temporary; a handful are alive at once).
PAIR_BLOCK_ELEMS = 1 << 22


def pair_tile_rows(num_classes: int, block_elems: int = PAIR_BLOCK_ELEMS) -> int:
  """Rows T of a block of the tiled pairwise metrics: 0 (one dense C x C
  array) when C^2 <= ``block_elems``, else the most rows whose [T, C] blocks
  fit it (at least 1)."""
  if num_classes * num_classes <= block_elems:
    return 0
  return max(1, block_elems // num_classes)


# Alive at once in a block of the pairwise metrics: the Gram block, the
# distances, the ratio and a mask or two.
PAIR_TEMPORARIES = 4
# Power-iteration steps assumed for numerical_rank in memory (it starts from
# the class means, close to the top direction of raw features).
RANK_ITERS = 10


def available_bytes(device=None) -> int:
  """Memory of ``device`` (default: this process's first): the accelerator's
  limit, or the host's physical memory for a CPU. (With several processes,
  ``jax.devices()[0]`` may be another host's device, whose memory this process
  cannot query.)"""
  device = device or jax.local_devices()[0]
  stats = getattr(device, 'memory_stats', lambda: None)()
  if stats and stats.get('bytes_limit'):
    return int(stats['bytes_limit'])
  return int(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES'))


def _fmt_bytes(n: float) -> str:
  for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'):
    if abs(n) < 1024 or unit == 'PiB':
      return f'{n:.0f} {unit}' if unit == 'B' else f'{n:.1f} {unit}'
    n /= 1024
  return f'{n:.1f} PiB'


@dataclasses.dataclass(frozen=True)
class Cost:
  """One path: ``bytes`` of its arrays, ``gemms`` (flops / 2 N p^2), ``fits``."""

  bytes: int
  gemms: float
  fits: bool


@dataclasses.dataclass(frozen=True)
class Plan:
  """The cost of every path (`plan`) and the choice for the budget.

  Attributes:
    num_samples, dim, num_classes, itemsize: N, p, C and the bytes per number.
    memory_bytes: the budget.
    costs: ``{path: Cost}`` (the module's table).
    pair_rows: 0 (one C x C array) or T (row blocks), for ``pair_rows=`` of
      `collapse_report` / `report_from_stats`.
    scatter: ``'per_class'`` when the per-class scatter fits the budget, else
      ``'pooled'`` (pass ``class_counts`` to `accumulate`).
    messages: what does not fit, and the option that does.
  """

  num_samples: int
  dim: int
  num_classes: int
  itemsize: int
  memory_bytes: int
  costs: dict[str, Cost]
  pair_rows: int
  scatter: str
  messages: tuple[str, ...]

  def table(self) -> str:
    """A markdown table of the paths (bytes, GEMM-equivalents, fits)."""
    lines = ['| path | memory | GEMM-equivalents | fits |', '|---|---|---|---|']
    for name, c in self.costs.items():
      lines.append(f'| {name} | {_fmt_bytes(c.bytes)} | {c.gemms:.3g} | '
                   f"{'yes' if c.fits else '**no**'} |")
    return '\n'.join(lines)


def report_pair_rows(num_classes: int, dtype='float32', memory_bytes: int | None = None) -> int:
  """The reports' ``pair_rows`` (`plan`'s choice, without the rest of the plan):
  `pair_tile_rows` with blocks of at most `PAIR_BLOCK_ELEMS` elements and of
  at most the budget over `PAIR_TEMPORARIES` temporaries."""
  size = np.dtype(dtype).itemsize
  budget = available_bytes() if memory_bytes is None else int(memory_bytes)
  return pair_tile_rows(num_classes, min(PAIR_BLOCK_ELEMS,
                                         max(num_classes, budget // (PAIR_TEMPORARIES * size))))


def plan(num_samples: int, dim: int, num_classes: int, *, dtype='float32',
         memory_bytes: int | None = None) -> Plan:
  """The cost of each path of the collapse report, and the paths that fit.

  Args:
    num_samples: N (in memory: the rows held; streamed: the rows seen).
    dim: p.
    num_classes: C.
    dtype: of the features and statistics.
    memory_bytes: the budget; default `available_bytes` of the first device.

  Returns:
    A `Plan` (see there); ``plan(...).table()`` for people.
  """
  n, p, c = int(num_samples), int(dim), int(num_classes)
  if min(n, p, c) < 1:
    raise ValueError(f'plan needs N, p, C >= 1; got N={n}, p={p}, C={c}')
  size = np.dtype(dtype).itemsize
  budget = available_bytes() if memory_bytes is None else int(memory_bytes)
  gemm = 2.0 * n * p * p
  stats_bytes = 2 * c * p * size  # class means and unit means
  gram_flops = 2.0 * c * c * p  # one C x C Gram of the centred means
  rows = report_pair_rows(c, dtype, budget)
  tiled_rows = rows or max(1, min(c, PAIR_BLOCK_ELEMS // c))
  raw = {
      'features (in memory)': (n * p * size, 0.0),
      'class layout (in memory)': (n * p * size, 6.0 * n * p / gemm),
      'pooled scatter': (p * p * size + stats_bytes, 1.0),
      'per-class scatter (streamed)': (c * p * p * size + stats_bytes, 1.0),
      'eigen-decompositions': (3 * p * p * size, 10.0 * p ** 3 / gemm),
      'pairwise, one C x C array': (PAIR_TEMPORARIES * c * c * size, gram_flops / gemm),
      f'pairwise, row blocks of {tiled_rows}': (PAIR_TEMPORARIES * tiled_rows * c * size,
                                                 2 * gram_flops / gemm),
      'numerical rank (in memory)': (n * p * size, RANK_ITERS * 4.0 * n * p / gemm),
  }
  costs = {k: Cost(int(b), float(g), int(b) <= budget) for k, (b, g) in raw.items()}
  scatter = 'per_class' if costs['per-class scatter (streamed)'].fits else 'pooled'
  messages = []
  if scatter == 'pooled':
    messages.append(scatter_message(c, p, size, budget))
  if not costs['features (in memory)'].fits:
    messages.append(
        f'the features ({_fmt_bytes(n * p * size)}) do not fit {_fmt_bytes(budget)}: stream '
        'them (accumulate / report_from_stats, or the trainer\'s evaluation)')
  return Plan(n, p, c, size, budget, costs, rows, scatter, tuple(messages))


def scatter_message(num_classes: int, dim: int, itemsize: int, budget: int) -> str:
  """Why the per-class scatter does not fit, and what does."""
  c, p = num_classes, dim
  return (f'the per-class scatter for C={c:,}, p={p:,} needs {_fmt_bytes(c * p * p * itemsize)} '
          f'(C p^2), more than the {_fmt_bytes(budget)} available: start the stats with '
          f'class_counts=... (the pooled p x p layout, {_fmt_bytes(p * p * itemsize)}; every '
          'metric but numerical_rank), and measure numerical_rank on a subset of classes '
          '(collapse_report on their features, recorded as such)')


def check_scatter(num_classes: int, dim: int, dtype, memory_bytes: int | None = None):
  """Raises ValueError (`scatter_message`) if the per-class scatter exceeds the budget."""
  size = np.dtype(dtype).itemsize
  budget = available_bytes() if memory_bytes is None else int(memory_bytes)
  if num_classes * dim * dim * size > budget:
    raise ValueError(scatter_message(num_classes, dim, size, budget))
