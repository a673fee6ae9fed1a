"""The results files the benchmarks share: runs kept by tag in JSON, rendered to markdown."""

from __future__ import annotations

import json
import os
from collections.abc import Callable


def record(run: dict, tag: str, json_path: str, title: str, script: str,
           render: Callable[[dict], str]) -> None:
  """Adds ``run`` under ``tag`` to ``json_path`` (other tags kept) and writes the
  markdown file beside it (same name, ``.md``) with every tag's ``render``."""
  runs = {}
  if os.path.exists(json_path):
    with open(json_path) as f:
      runs = json.load(f)
  runs[tag] = run
  with open(json_path, 'w') as f:
    json.dump(runs, f, indent=1, sort_keys=True)
  with open(os.path.splitext(json_path)[0] + '.md', 'w') as f:
    f.write(f'# {title}\n\nWritten by `benchmarks/{script} --write` (see its docstring).\n\n')
    for name, r in sorted(runs.items()):
      f.write(f'## {name} ({r["date"]})\n\n{render(r)}\n\n')


def best_rate(window: Callable[[int], None], steps: int, repeats: int, warmup: int = 3) -> float:
  """Steps per second of ``window(steps)``, best of ``repeats``, after ``window(warmup)``."""
  import time
  window(warmup)
  best = 0.0
  for _ in range(repeats):
    t = time.perf_counter()
    window(steps)
    best = max(best, steps / (time.perf_counter() - t))
  return best
