"""The collapse report at language-model scale: time and peak memory against K.

    .venv/bin/python benchmarks/bench_scale.py [--quick] [--write] [--readme]
    .venv-ref/bin/python benchmarks/bench_scale.py --write   # with the reference library

One process per point (K classes, p dimensions), so that each point's peak
resident memory is its own. Each point streams N = ``--per-class`` x K float32
rows (rounded up to whole batches) (random class means plus unit noise, uniform labels), generated batch by
batch (``--batch`` rows) and never held whole, and measures, in that one
process:

- ``gemm``: the bare GEMM of the same data, ``X_b^T X_b`` summed over the
  batches (2 N p^2 flops): every ratio's denominator;
- ``stream``: `metrics.accumulate` over the same batches, pooled scatter (the
  layout that fits at this scale; the per-class one needs C p^2);
- ``report``: `metrics.report_from_stats` on those statistics (every key but
  numerical_rank, which needs the per-class scatter, and nc4, which needs a
  second pass), with the pairwise metrics in row blocks (`metrics.plan`);
- ``peak``: the process's peak resident memory (``ru_maxrss``), the planner's
  pair rows and its verdict on the per-class scatter;
- ``reference``: rhubarbwu/neural-collapse (PyTorch, `bench_metrics.py`'s
  pipeline, classifier agreement included) on the same rows as one batch, in
  a process of its own after the point's (so that its failure never loses the
  point), where it is importable (benchmarks/setup_reference.sh) and its
  N p + N K + K^2 floats fit a quarter of the machine's memory; otherwise the
  column says why not.

A point that fails (memory, time) is recorded with its error and the planner's
message. Data generation is not timed. ``--write`` adds the run to
benchmarks/results_scale.json (keyed by ``--tag``) and renders
benchmarks/results_scale.md; ``--readme`` puts the table between the README's
bench_scale markers. Run it on a quiet machine: a busy core spoils every ratio.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results_files  # noqa: E402  (benchmarks/, beside this script)

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, 'results_scale.json')
KS = (100, 1_000, 10_000, 32_768, 50_000)
PS = (256, 1024)


def _labels(n, k, batch, seed=0):
  """The labels of `_batches`, batch by batch (their own random stream)."""
  import numpy as np
  rng = np.random.default_rng([seed, 1])
  for start in range(0, n, batch):
    yield rng.integers(0, k, min(batch, n - start)).astype(np.int32)


def _batches(n, p, k, batch, seed=0):
  """(features, labels) batches of the point's data, generated on the fly."""
  import numpy as np
  rng = np.random.default_rng([seed, 2])
  means = rng.normal(size=(k, p)).astype(np.float32)
  for y in _labels(n, k, batch, seed):
    yield means[y] + rng.standard_normal((len(y), p), dtype=np.float32), y


def _counts(n, k, batch, seed=0):
  """The class counts of `_batches` (what the pooled layout is declared with)."""
  import numpy as np
  return sum(np.bincount(y, minlength=k) for y in _labels(n, k, batch, seed))


def point(k: int, p: int, per_class: int, batch: int) -> dict:
  """Measures one (K, p) point in this process (see the module docstring)."""
  import jax
  from nc_jax import metrics

  n = -(-per_class * k // batch) * batch  # whole batches: one compiled shape
  pl = metrics.plan(n, p, k)
  out = dict(k=k, p=p, n=n, batch=batch, pair_rows=pl.pair_rows, scatter=pl.scatter,
             plan_messages=list(pl.messages))
  counts = _counts(n, k, batch)
  gemm = jax.jit(lambda acc, a: acc + a.T @ a)
  t_gemm = t_stream = 0.0
  acc, stats = jax.numpy.zeros((p, p), jax.numpy.float32), None
  # One warm-up batch each (compilation), then the timed pass.
  x0, y0 = next(_batches(batch, p, k, batch, seed=1))
  jax.block_until_ready(gemm(acc, x0))
  jax.block_until_ready(metrics.accumulate(x0, y0, num_classes=k, class_counts=counts).means)
  for x, y in _batches(n, p, k, batch):
    x, y = jax.device_put(x), jax.device_put(y)
    t = time.perf_counter()
    acc = jax.block_until_ready(gemm(acc, x))
    t_gemm += time.perf_counter() - t
    t = time.perf_counter()
    stats = metrics.accumulate(x, y, num_classes=k, stats=stats,
                               class_counts=None if stats is not None else counts)
    jax.block_until_ready(stats.means)
    t_stream += time.perf_counter() - t
  t = time.perf_counter()
  rep = jax.block_until_ready(metrics.report_from_stats(stats))
  t_first = time.perf_counter() - t  # compilation included
  t = time.perf_counter()
  rep = jax.block_until_ready(metrics.report_from_stats(stats))
  out.update(gemm_s=t_gemm, stream_s=t_stream, report_s=time.perf_counter() - t,
             report_first_s=t_first, check={key: float(rep[key]) for key in ('nc1', 'cdnv')})
  out['peak_mib'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
  return out


def reference_point(k: int, p: int, per_class: int, batch: int) -> dict:
  """The reference library on the point's rows, in a process of its own."""
  n = -(-per_class * k // batch) * batch
  seconds, about = _reference(n, p, k, batch)
  return dict(reference_s=seconds, reference=about,
              reference_peak_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _reference(n, p, k, batch):
  """rhubarbwu/neural-collapse on the point's rows as one batch, where it can run."""
  try:
    import torch as pt
    import neural_collapse  # noqa: F401
  except ImportError as e:
    return None, f'not importable here ({e.name}); see benchmarks/setup_reference.sh'
  import numpy as np
  from nc_jax.metrics.planning import available_bytes
  # The rows, K x K matrices and the N x K distances to the class means of its
  # classifier-agreement accumulator (a K = 10,000, p = 256 point was killed
  # for memory on 24 GiB when only N p + K^2 were counted).
  need = 4 * (n * p + 2 * n * k + 2 * k * k + k * p * 3)
  if need > available_bytes() // 4:
    return None, (f'not run: its N p + N K + K^2 arrays ({need / 2**30:.1f} GiB) exceed a '
                  'quarter of this machine\'s memory (it builds N x K and K x K matrices)')
  sys.path.insert(0, HERE)
  from bench_metrics import reference_pipeline  # pylint: disable=import-outside-toplevel
  xs, ys = zip(*_batches(n, p, k, batch))
  x, y = pt.from_numpy(np.concatenate(xs)), pt.from_numpy(np.concatenate(ys).astype(np.int64))
  w = pt.from_numpy(np.random.default_rng(2).normal(size=(k, p)).astype(np.float32))
  t = time.perf_counter()
  reference_pipeline(x, y, w, k)
  return time.perf_counter() - t, f'torch {pt.__version__}, {pt.get_num_threads()} threads'


def _subprocess(cmd, timeout) -> dict:
  """The last JSON line ``cmd`` prints, or {'error': why it gave none}."""
  try:
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
  except subprocess.TimeoutExpired:
    return dict(error=f'timed out after {timeout} s')
  lines = [l for l in res.stdout.splitlines() if l.startswith('{')]
  if res.returncode == 0 and lines:
    return json.loads(lines[-1])
  why = (res.stderr.strip().splitlines() or ['?'])[-1][-300:]
  if res.returncode == -9:
    why = 'killed (SIGKILL: out of memory)'
  return dict(error=why, returncode=res.returncode)


def run_points(points, per_class, batch, reference, timeout):
  """Each point in its own process (and the reference in another, so that its
  failure never loses the point); a failed point records its error."""
  rows = []
  for k, p in points:
    cmd = [sys.executable, os.path.abspath(__file__), '--point', f'{k}:{p}',
           '--per-class', str(per_class), '--batch', str(batch)]
    print(f'K={k:,} p={p:,} ...', flush=True)
    t = time.perf_counter()
    row = {'k': k, 'p': p, **_subprocess(cmd, timeout)}
    if reference:
      ref = _subprocess(cmd + ['--reference'], timeout)
      if 'error' in ref:
        ref = dict(reference_s=None, reference=f"failed: {ref['error']}")
      row.update(ref)
    if 'error' in row:
      from nc_jax import metrics
      pl = metrics.plan(per_class * k, p, k)
      row.update(n=-(-per_class * k // batch) * batch, pair_rows=pl.pair_rows,
                 plan_messages=list(pl.messages))
    row['wall_s'] = time.perf_counter() - t
    print('  ', {k_: v for k_, v in row.items() if k_ != 'plan_messages'}, flush=True)
    rows.append(row)
  return rows


def _f(x, fmt='{:.2f}'):
  return 'n/a' if x is None else fmt.format(x)


def table(run: dict) -> str:
  lines = [f"{run['machine']}, jax {run['jax']}; N = {run['per_class']} x K rows streamed in "
           f"batches of {run['batch']:,} (float32); ratios against the bare GEMM of the same "
           'rows in the same process.', '',
           '| K | p | N | GEMM s | stream / GEMM | report s | report / GEMM | peak MiB | '
           'pair rows | reference s |', '|---|---|---|---|---|---|---|---|---|---|']
  for r in run['points']:
    if 'error' in r:
      lines.append(f"| {r['k']:,} | {r['p']:,} | {r['n']:,} | failed: {r['error']} | | | | | "
                   f"{r.get('pair_rows', '')} | |")
      continue
    ref = _f(r.get('reference_s')) if r.get('reference_s') else (r.get('reference') or 'n/a')
    lines.append(
        f"| {r['k']:,} | {r['p']:,} | {r['n']:,} | {r['gemm_s']:.2f} | "
        f"{r['stream_s'] / r['gemm_s']:.2f} | {r['report_s']:.2f} | "
        f"{r['report_s'] / r['gemm_s']:.2f} | {r['peak_mib']:.0f} | {r['pair_rows']} | {ref} |")
  messages = sorted({m for r in run['points'] for m in r.get('plan_messages', [])})
  if messages:
    lines += ['', 'Planner messages:'] + [f'- {m}' for m in messages]
  return '\n'.join(lines)


def main():
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('--point', help='K:p, measure one point in this process (internal)')
  ap.add_argument('--per-class', type=int, default=20)
  ap.add_argument('--batch', type=int, default=8192)
  ap.add_argument('--quick', action='store_true', help='K in {100, 1000} at p = 64')
  ap.add_argument('--reference', action='store_true',
                  help='with --point: measure the reference library there (internal)')
  ap.add_argument('--timeout', type=int, default=3600)
  ap.add_argument('--write', action='store_true')
  ap.add_argument('--readme', action='store_true')
  ap.add_argument('--tag', default='cpu')
  args = ap.parse_args()
  if args.point:
    k, p = map(int, args.point.split(':'))
    fn = reference_point if args.reference else point
    print(json.dumps(fn(k, p, args.per_class, args.batch)))
    return
  import jax
  points = ([(100, 64), (1000, 64)] if args.quick else [(k, p) for p in PS for k in KS])
  try:
    import neural_collapse  # noqa: F401
    reference = True
  except ImportError:
    reference = False
  run = dict(date=datetime.date.today().isoformat(), jax=jax.__version__,
             machine=f'{platform.processor() or platform.machine()}, {os.cpu_count()} cores',
             per_class=args.per_class, batch=args.batch,
             points=run_points(points, args.per_class, args.batch, reference, args.timeout))
  print(table(run))
  if args.write:
    results_files.record(run, args.tag, RESULTS, 'The collapse report against the number of '
                         'classes', 'bench_scale.py', table)
  if args.readme:
    path = os.path.join(HERE, '..', 'README.md')
    text = open(path).read()
    begin, end = '<!-- bench_scale: begin -->', '<!-- bench_scale: end -->'
    if begin in text and end in text:
      head, rest = text.split(begin, 1)
      text = head + begin + '\n' + table(run) + '\n' + end + rest.split(end, 1)[1]
      open(path, 'w').write(text)


if __name__ == '__main__':
  main()
