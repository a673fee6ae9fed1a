"""Speed and memory of the metric library against one bare GEMM.

    .venv/bin/python benchmarks/bench_metrics.py [--quick]

For each size: `collapse_report` after compilation vs a jitted ``X.T @ X`` on
the same array in the same run (ratio; goal <= 1.5x), the compiled
temporaries of the report (XLA's memory analysis; goal O(N p + K p + p^2)),
and the streaming path's throughput (samples/s) in batches of 1,024 against
the GEMM's samples/s. Results are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from nc_jax import metrics
from nc_jax.metrics import report as report_lib


def best_time(fn, *args, repeats=5):
  jax.block_until_ready(fn(*args))  # compile + warm up
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - t)
  return min(times)


def temp_bytes(fn, *args):
  mem = fn.lower(*args).compile().memory_analysis()
  return None if mem is None else mem.temp_size_in_bytes


def run(n, p, k, batch=1024, pooled=False):
  rng = np.random.default_rng(0)
  y = jnp.asarray(rng.integers(0, k, n), jnp.int32)
  x = jnp.asarray(rng.normal(size=(k, p)).astype(np.float32))[y] + jnp.asarray(
      rng.normal(size=(n, p)).astype(np.float32))

  gemm = jax.jit(lambda a: a.T @ a)
  report = jax.jit(lambda a, l: report_lib._report(
      a, l, None, None, num_classes=k, rank=None, rtol=None))
  t_gemm = best_time(gemm, x)
  t_report = best_time(report, x, y)
  mem = temp_bytes(report, x, y)

  counts = np.bincount(np.asarray(y), minlength=k) if pooled else None
  empty = metrics.empty_stats(k, p, class_counts=counts)
  step = jax.jit(lambda s, a, l: metrics.accumulate(a, l, num_classes=k, stats=s))
  xb = x[: (n // batch) * batch].reshape(-1, batch, p)
  yb = y[: (n // batch) * batch].reshape(-1, batch)

  def stream():
    s = empty
    for i in range(xb.shape[0]):
      s = step(s, xb[i], yb[i])
    return s

  jax.block_until_ready(stream())
  t = time.perf_counter()
  jax.block_until_ready(stream())
  t_stream = time.perf_counter() - t
  return dict(n=n, p=p, k=k, t_gemm=t_gemm, t_report=t_report, ratio=t_report / t_gemm,
              temp_mb=None if mem is None else mem / 2**20,
              np_mb=n * p * 4 / 2**20,
              stream_sps=xb.shape[0] * batch / t_stream, gemm_sps=n / t_gemm,
              layout="pooled" if pooled else "per-class")


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
  args = parser.parse_args()
  sizes = [(5000, 64, 10, False)] if args.quick else [
      (50_000, 512, 100, False), (50_000, 512, 100, True), (20_000, 256, 1000, True)]
  print(f"device: {jax.devices()[0].device_kind}, {platform.processor() or platform.machine()}, "
        f"jax {jax.__version__}")
  print("| N | p | K | GEMM X^T X (s) | collapse_report (s) | ratio | report temporaries (MiB) "
        "| N p floats (MiB) | streaming layout | streaming samples/s | GEMM samples/s |")
  print("|---|---|---|---|---|---|---|---|---|---|---|")
  for n, p, k, pooled in sizes:
    r = run(n, p, k, pooled=pooled)
    print(f"| {n:,} | {p} | {k} | {r['t_gemm']:.3f} | {r['t_report']:.3f} | {r['ratio']:.2f} "
          f"| {r['temp_mb']:.0f} | {r['np_mb']:.0f} | {r['layout']} | {r['stream_sps']:,.0f} "
          f"| {r['gemm_sps']:,.0f} |", flush=True)


if __name__ == "__main__":
  main()
