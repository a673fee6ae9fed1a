r"""Compilations and wall time of one study, in one process.

  python benchmarks/bench_compile.py --config=configs/papers/p002_limits.py:runlocal \
      --label=after

Counts XLA backend compilations and jaxpr traces (jax.monitoring events) and
their summed durations while a paper's study runs from scratch in a fresh
temporary workdir, and records them under ``--label`` in
benchmarks/results_compile.json (the trainer's "compile once per process"
claim: a sweep of runs that differ only in data, seed, learning rate or
length reuses its executables).
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time

import jax
from jax import monitoring

COMPILE = '/jax/core/compile/backend_compile_duration'
TRACE = '/jax/core/compile/jaxpr_trace_duration'


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument('--config', required=True)
  parser.add_argument('--label', required=True)
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__),
                                                     'results_compile.json'))
  args = parser.parse_args()

  counts, seconds = collections.Counter(), collections.Counter()

  def listen(event, duration, **_):
    if event in (COMPILE, TRACE):
      counts[event] += 1
      seconds[event] += duration

  monitoring.register_event_duration_secs_listener(listen)
  sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..'))
  from nc_jax.studies import reproduce  # pylint: disable=g-import-not-at-top
  path, _, arg = args.config.partition(':')
  spec = importlib.util.spec_from_file_location('study_config', path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config(arg or None)
  t = time.perf_counter()
  with tempfile.TemporaryDirectory() as workdir:
    reproduce.reproduce(config, workdir, command='bench_compile')
    runs = len(os.listdir(os.path.join(workdir, 'runs')))
  wall = time.perf_counter() - t
  row = dict(config=args.config, runs=runs, wall_s=round(wall, 1),
             compilations=counts[COMPILE],
             compile_s=round(seconds[COMPILE], 1), traces=counts[TRACE],
             trace_s=round(seconds[TRACE], 1), jax=jax.__version__,
             cpus=os.cpu_count(), machine=platform.machine(),
             date=time.strftime('%Y-%m-%d'))
  results = {}
  if os.path.exists(args.out):
    with open(args.out) as f:
      results = json.load(f)
  results.setdefault(args.label, {})[args.config] = row
  with open(args.out, 'w') as f:
    json.dump(results, f, indent=1)
  print(json.dumps(row))


if __name__ == '__main__':
  main()
