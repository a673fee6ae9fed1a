r"""Input throughput and peak memory: in-memory loading vs grain streaming.

  python benchmarks/bench_input.py [--examples 20000] [--out benchmarks/results_input.md]

On the CIFAR-10 JPEG copy (../shared/data/cifar10_jpeg, train split), each
mode runs in a fresh subprocess (so its peak RSS is its own) and reads one
epoch of training batches (batch 128) in the trainer's order:

- ``in_memory``: ``data.load`` decodes the split into one uint8 array (from
  the decoded-array cache when warm; the first, cold load is timed too), then
  batches are indexed from it;
- ``grain-w<k>``: the split is opened lazily (a file list) and
  ``train.grain_input.train_batches`` decodes each batch, in this process
  (k = 0) or in k worker processes.

Reported: load time, images/s over the epoch (load excluded), peak RSS of the
process (MiB; grain workers are separate processes, their RSS is not
included: the one reported is the trainer's), and the machine's load
average. Results go to the README and ``benchmarks/results_input.md``.
"""

import argparse
import json
import os
import subprocess
import sys
import time

CHILD = r'''
import json, resource, sys, time
import numpy as np
mode, n = sys.argv[1], int(sys.argv[2])
from nc_jax import data
from nc_jax.train import grain_input, input as input_lib
t = time.perf_counter()
if mode.startswith("in_memory"):
  ds = data.load("cifar10_jpeg", "train", cache=mode != "in_memory_cold")
else:
  ds = data.load("cifar10_jpeg", "train", lazy=True)
if n < len(ds):
  ds = ds.subset(np.arange(n))
if mode.startswith("in_memory"):
  ds = ds.replace(images=np.ascontiguousarray(ds.images))
load = time.perf_counter() - t
t = time.perf_counter()
seen = 0
if mode.startswith("in_memory"):
  for idx in input_lib.train_indices(len(ds), 128, 0, 0):
    batch = ds.images[idx]
    seen += len(batch)
else:
  workers = int(mode.split("-w")[1])
  for images, labels in grain_input.train_batches(ds, batch_size=128, seed=0, start_epoch=0,
                                                 num_epochs=1, worker_count=workers):
    seen += len(images)
run = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print("RESULT " + json.dumps(dict(mode=mode, examples=seen, load_s=load, epoch_s=run,
                                  images_per_s=seen / run, peak_rss_mib=rss)))
'''


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--examples', type=int, default=20000)
  parser.add_argument('--modes', default='in_memory_cold,in_memory,grain-w0,grain-w2')
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__),
                                                    'results_input.md'))
  args = parser.parse_args()
  rows = []
  for mode in args.modes.split(','):
    load_avg = os.getloadavg()[0]
    out = subprocess.run([sys.executable, '-c', CHILD, mode, str(args.examples)],
                         capture_output=True, text=True, timeout=1800)
    line = [l for l in out.stdout.splitlines() if l.startswith('RESULT ')]
    if not line:
      print(out.stderr[-2000:])
      raise SystemExit(f'{mode} failed')
    row = dict(json.loads(line[0][7:]), load_average=load_avg)
    rows.append(row)
    print(row, flush=True)
  lines = [
      '# Input benchmark: in-memory vs grain (benchmarks/bench_input.py)', '',
      f'CIFAR-10 JPEG copy, first {args.examples} training images, one epoch of batches of 128 '
      'in the trainer\'s order; each mode in a fresh process. `in_memory_cold` decodes the JPEGs '
      '(no cache), `in_memory` reads the decoded-array cache; grain opens the folder lazily and '
      'decodes per batch. Peak RSS is the main process (grain workers not included). '
      f'Machine: {os.cpu_count()} CPUs; load average at the start of each mode in the table '
      '(other jobs were running: absolute rates are lower bounds, compare within the table).',
      '', '| mode | load (s) | images/s over the epoch | peak RSS (MiB) | load average |',
      '|---|---|---|---|---|']
  for r in rows:
    lines.append(f"| {r['mode']} | {r['load_s']:.1f} | {r['images_per_s']:,.0f} | "
                 f"{r['peak_rss_mib']:,.0f} | {r['load_average']:.1f} |")
  with open(args.out, 'w') as f:
    f.write('\n'.join(lines) + '\n')
  print(f'wrote {args.out}')


if __name__ == '__main__':
  main()
