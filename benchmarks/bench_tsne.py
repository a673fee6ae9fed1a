r"""t-SNE for CLP: scikit-learn against openTSNE on the same features.

  python benchmarks/bench_tsne.py --run runs/p004/runs/coarse_mlp_seed0 [--epoch 100]

Takes a trainer run trained on coarse labels (y mod 5), its penultimate
features on 5,000 training images, and per embedding: the wall time of the
five per-super-class t-SNEs and the CLP accuracy on the test set (k-means on
each view, L-BFGS probe on the reconstructed labels, Hungarian matching),
for three seeds. Writes benchmarks/results_tsne.md.
"""

import argparse
import os
import time

import numpy as np

from nc_jax import data
from nc_jax.probes import clp
from nc_jax.probes import linear
from nc_jax.studies import fine_grained
from nc_jax.studies.common import features_at
from nc_jax.train import checkpoints


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument('--run', required=True)
  parser.add_argument('--epoch', type=int, default=0)
  parser.add_argument('--seeds', type=int, default=3)
  parser.add_argument('--out', default=os.path.join(os.path.dirname(__file__),
                                                    'results_tsne.md'))
  args = parser.parse_args()
  tcfg = checkpoints.read_config(args.run)
  epoch = args.epoch or max(checkpoints.epochs(args.run))
  sub, test = fine_grained.analysis_sets(tcfg, 5000)
  f = features_at(args.run, epoch, {'train': sub, 'test': test})
  h_train, h_test = f['train']['penultimate'], f['test']['penultimate']
  f2c = data.mod_coarse_map(10, 5)
  rows = []
  for method in ('tsne', 'opentsne'):
    for seed in range(args.seeds):
      t = time.perf_counter()
      for s in range(5):
        clp.embed_2d(h_train[sub.labels == s], method=method, seed=seed, num_threads=1)
      seconds = time.perf_counter() - t
      res = clp.cluster_and_linear_probe(
          h_train, sub.labels, h_test, test.fine_labels, fine_to_coarse=f2c, embedding=method,
          train_fine_labels=sub.fine_labels, seed=seed, num_threads=1,
          l2_grid=linear.default_l2_grid(5, 1e-4, 1e0), max_iters=200)
      rows.append(dict(method=method, seed=seed, seconds=seconds, clp=res.accuracy,
                       reconstruction=res.reconstruction_accuracy))
      print(rows[-1], flush=True)
  lines = ['# t-SNE for CLP: scikit-learn vs openTSNE (benchmarks/bench_tsne.py)', '',
           f'Features: `{args.run}` epoch {epoch}, penultimate, 5,000 training images (5 '
           f'super-classes of ~1,000), one thread each, load average {os.getloadavg()[0]:.1f} '
           '(other jobs running). Time: the five per-super-class embeddings; CLP on the 10,000 '
           'test images (5-value L2 grid).', '',
           '| embedding | seed | t-SNE time (s) | CLP accuracy | train reconstruction |',
           '|---|---|---|---|---|']
  lines += [f"| {r['method']} | {r['seed']} | {r['seconds']:.1f} | {r['clp']:.4f} | "
            f"{r['reconstruction']:.4f} |" for r in rows]
  for method in ('tsne', 'opentsne'):
    rs = [r for r in rows if r['method'] == method]
    lines.append(f"| **{method} mean** | | {np.mean([r['seconds'] for r in rs]):.1f} | "
                 f"{np.mean([r['clp'] for r in rs]):.4f} +- {np.std([r['clp'] for r in rs]):.4f} | "
                 f"{np.mean([r['reconstruction'] for r in rs]):.4f} |")
  with open(args.out, 'w') as fh:
    fh.write('\n'.join(lines) + '\n')
  print(f'wrote {args.out}')


if __name__ == '__main__':
  main()
