"""Training throughput and the cost of collapse tracking, on this machine.

    .venv/bin/python benchmarks/bench_train.py [--steps 200] [--resnet-steps 8]

Cases (the study configs, run through `nc_jax.train.setup`, one device):

- ``mlp_mnist``: the 3 x 1,024 MLP of configs/mlp_mnist.py on all of MNIST,
  batch 128;
- ``resnet18_cifar10``: configs/resnet18_cifar10.py (ResNet-18, width 64) on
  the CIFAR-10 JPEG copy, batch 128, random crop and flip on device.

Measured per case: training examples/s (jitted steps incl. host batching and
transfer, after compilation); one evaluation pass over an evaluation subset
with accuracy and loss only, and with the full collapse report at every layer
(streaming statistics, reports, NC4 second pass), both scaled to the size of a
train + test evaluation; the tracking cost (the difference) as a fraction of
one training epoch, for an evaluation every epoch and for the config's
``evals.every``. Also the training FLOPs per example from XLA's cost analysis of
the lowered step, for these and the ResNet-50 / DeiT-T configs (GPU
estimates). Writes benchmarks/results_train.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from nc_jax import data
from nc_jax import metrics
from nc_jax import train
from nc_jax.train import input as input_lib
from nc_jax.train import tracking

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_config(name: str, arg: str | None = None):
  path = os.path.join(ROOT, 'configs', f'{name}.py')
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def _zero_running():
  keys = ('loss', 'correct', 'count', 'nonfinite', 'l2_grads', 'l2_params')
  return {k: jnp.zeros((), jnp.float32) for k in keys}


def train_throughput(run, ds, batch_size, steps, mesh):
  """Examples/s of `steps` training steps (after 2 warm-up steps)."""
  order = input_lib.train_indices(len(ds), batch_size, 0, 0)
  state, running = run.state, _zero_running()

  def step(state, running, i):
    idx = next(order)
    images, labels = input_lib.global_batch(mesh, ds.images[idx],
                                            ds.labels[idx])
    return run.train_step(state, running, images, labels, i)

  for i in range(2):
    state, running = step(state, running, i)
  jax.block_until_ready(running)
  t = time.perf_counter()
  for i in range(2, 2 + steps):
    state, running = step(state, running, i)
  jax.block_until_ready(running)
  return steps * batch_size / (time.perf_counter() - t), state


def median_time(fn, repeats=5):
  """Median wall time of `fn()` after one warm-up call (compilation).

  Medians, because the CPU is shared: XLA's multi-threaded kernels stall
  when another process holds a core, so single timings vary up to 10x.
  """
  jax.block_until_ready(fn())
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t)
  return float(np.median(times))


def tracking_times(run, state, train_ds, test_ds, batch_size, mesh):
  """Seconds of collapse tracking for one train + test evaluation.

  Timed directly rather than as the difference of two noisy evaluations:
  (a) the streaming update of every tracked layer's statistics, jitted as in
  the evaluation step, on random features of the right widths, times the
  number of batches; (b) the reports of every layer and the NC4 second pass,
  once per split.
  """
  ev = run.evaluate
  rng = np.random.default_rng(0)
  labels = jnp.asarray(rng.integers(0, ev.num_classes, batch_size), jnp.int32)
  feats = {k: jnp.asarray(rng.normal(size=(batch_size, ev.dims[k])),
                          jnp.float32) for k in ev.layers}
  # Pooled statistics declare their final class counts: those of `labels`.
  stats = ev._empty_stats(  # pylint: disable=protected-access
      {'task': (np.asarray(labels), ev.num_classes)}, ev.layers)['task']

  @jax.jit
  def update(stats, feats, labels):
    return {k: metrics.accumulate_sharded(feats[k], labels,
                                          num_classes=ev.num_classes,
                                          mesh=mesh, stats=stats[k])
            for k in stats}

  stats = update(stats, feats, labels)
  per_batch = median_time(lambda: update(stats, feats, labels))
  batches = sum(-(-len(ds) // batch_size) for ds in (train_ds, test_ds))
  w, b = (jnp.asarray(rng.normal(size=(ev.num_classes, ev.dims['penultimate'])),
                      jnp.float32), jnp.zeros(ev.num_classes))

  def reports():
    out = [metrics.report_from_stats(
        st, classifier=(w, b) if k == 'penultimate' else None)
           for k, st in stats.items()]
    out.append(tracking._ncc_count(  # pylint: disable=protected-access
        stats['penultimate'], feats['penultimate'], w, b))
    return out

  return per_batch * batches, 2 * median_time(reports)


def bench(name, config, steps, eval_subset, mesh):
  train_ds, test_ds = train.load_data(config)
  t = time.perf_counter()
  run = train.setup(config, train_ds, mesh)
  rate, state = train_throughput(run, train_ds, config.batch_size, steps, mesh)
  setup_s = time.perf_counter() - t
  # The plain evaluation (forward pass, accuracy, loss) scales with the
  # number of images; timed on a random subset (image folders are sorted by
  # class) and scaled to train + test.
  order = np.random.default_rng(0).permutation(len(train_ds))
  sub = train_ds.subset(np.sort(order[:eval_subset]))
  plain = median_time(lambda: run.evaluate(state, sub, track=False),
                      repeats=3) * (len(train_ds) + len(test_ds)) / len(sub)
  stream, report = tracking_times(run, state, train_ds, test_ds,
                                  config.evals.batch_size, mesh)
  epoch = len(train_ds) / rate
  cost = stream + report
  flops = _step_flops(run, state, train_ds.images[:config.batch_size],
                      train_ds.labels[:config.batch_size])
  return dict(
      name=name, examples_per_s=rate, epoch_s=epoch, steps=steps,
      batch=config.batch_size, compile_and_steps_s=setup_s,
      eval_plain_s=plain, stream_s=stream, report_s=report,
      eval_subset=len(sub),
      tracking_frac_every_epoch=cost / epoch,
      tracking_frac_config=cost / (epoch * config.evals.every),
      evals_every=config.evals.every, layers=len(run.layers),
      dims=sum(run.evaluate.dims[k] for k in run.layers),
      flops_per_example=flops / config.batch_size,
      n_train=len(train_ds), n_test=len(test_ds))


def _step_flops(run, state, images, labels) -> float:
  """FLOPs of one training step (XLA's cost analysis of the lowered step)."""
  step = jax.jit(run.train_step, static_argnums=4)  # Step 0: its rate.
  return step.lower(state, _zero_running(), images, labels,
                    0).cost_analysis()['flops']


def flops_per_example(config, shape, num_classes, batch=8):
  """Training FLOPs per example of the config's model (XLA cost analysis)."""
  config = config.copy_and_resolve_references()
  config.batch_size = config.evals.batch_size = batch
  images = np.zeros((batch,) + shape, np.uint8)
  labels = np.arange(batch, dtype=np.int32) % num_classes
  ds = data.Dataset(images, labels, num_classes,
                    tuple(map(str, range(num_classes))), name=config.data.name)
  if config.data.name not in data.DATASET_STATS:
    ds = ds.replace(name='cifar10')  # Only the normalisation constants.
  run = train.setup(config, ds, train.make_mesh(jax.devices()[:1]))
  return _step_flops(run, run.state, images, labels) / batch, run


def main():
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--steps', type=int, default=200,
                      help='timed MLP training steps')
  parser.add_argument('--resnet-steps', type=int, default=8,
                      help='timed ResNet-18 training steps')
  parser.add_argument('--out', default=os.path.join(ROOT, 'benchmarks',
                                                     'results_train.md'))
  args = parser.parse_args()
  mesh = train.make_mesh(jax.devices()[:1])
  load_start = os.getloadavg()[0]

  mlp = load_config('mlp_mnist')
  mlp.data.examples_per_class = 0  # All 60,000 images: a real epoch.
  r18 = load_config('resnet18_cifar10')
  r18.data.name = 'cifar10_jpeg'
  r18.batch_size = 128
  rows = [bench('MLP 3x1024, MNIST', mlp, args.steps, 10_000, mesh)]
  print(rows[-1], flush=True)
  rows.append(bench('ResNet-18, CIFAR-10 (JPEG copy)', r18, args.resnet_steps,
                    500, mesh))
  print(rows[-1], flush=True)

  gpu_rows = []
  for cfg, arg, shape, classes, label in (
      ('resnet50_cifar100', None, (32, 32, 3), 100, 'ResNet-50, CIFAR-100'),
      ('deit_tiny_imagenet', None, (224, 224, 3), 1000, 'DeiT-T, ImageNet')):
    f, _ = flops_per_example(load_config(cfg, arg), shape, classes)
    gpu_rows.append((label, f))
    print(label, f, flush=True)
  write(args.out, rows, gpu_rows, (load_start, os.getloadavg()[0]))


def write(path, rows, gpu_rows, load):
  cpu = platform.processor() or platform.machine()
  lines = [
      '# Trainer benchmark (benchmarks/bench_train.py)', '',
      f'Machine: {os.cpu_count()} CPU cores ({cpu}) shared with other '
      f"engineers' jobs; JAX {jax.__version__}, backend "
      f'{jax.default_backend()}, one device. Timings after compilation, '
      'medians of repeats. 1-minute load average '
      f'{load[0]:.1f} at the start, {load[1]:.1f} at the end: runs under '
      'load from other jobs (load 4-6) measured up to 3x lower throughput.',
      '',
      '## Training throughput and the cost of collapse tracking', '',
      '| case | batch | timed steps | train examples/s | epoch (s) | '
      'eval forward, train + test (s) | tracking: streaming stats (s) | '
      'tracking: reports + NC4 (s) | tracking / epoch, eval every epoch | '
      'tracking / epoch at the config\'s evals.every |',
      '|---|---|---|---|---|---|---|---|---|---|']
  for r in rows:
    lines.append(
        f"| {r['name']} | {r['batch']} | {r['steps']} | "
        f"{r['examples_per_s']:,.0f} | {r['epoch_s']:,.1f} | "
        f"{r['eval_plain_s']:,.1f} | {r['stream_s']:,.2f} | "
        f"{r['report_s']:,.2f} | "
        f"{100 * r['tracking_frac_every_epoch']:.2g}% | "
        f"{100 * r['tracking_frac_config']:.2g}% (every "
        f"{r['evals_every']}) |")
  lines += [
      '', 'Columns: *epoch* = training images / throughput. *Eval forward*: '
      'one eval-mode pass over the train and the test split for accuracy '
      'and loss (needed with or without collapse tracking; timed on '
      + ' / '.join(f"{r['eval_subset']:,}" for r in rows) +
      ' random training images and scaled to ' +
      ' / '.join(f"{r['n_train']:,} + {r['n_test']:,}" for r in rows) +
      '). *Tracking* is what collapse tracking adds to that pass: the '
      'streaming update of the class means and the pooled Sigma_W of every '
      'tracked layer (' + ' / '.join(
          f"{r['layers']} layers, {r['dims']:,} dims in all" for r in rows) +
      '; one GEMM per batch and layer, jitted with the forward pass in the '
      'trainer, timed here alone per batch x number of batches), and the '
      'SPEC.md report of every layer plus the NC4 second pass, per split.',
      '', 'Streaming costs O(p^2) per image and layer, as much as a dense '
      'layer of width p: for the MLP it is comparable to the forward pass '
      'itself, for ResNet-18 (convolutions dominate) it is negligible. With '
      'evaluations every few epochs (the configs) the cost is far below the '
      '10% goal; on this shared CPU, single report timings vary up to 10x '
      'when another process holds a core (XLA\'s multi-threaded kernels '
      'stall), hence medians.', '',
      '## Training FLOPs per example (XLA cost analysis) and GPU estimates',
      '', '| model, data | GFLOP per training example | per epoch (PFLOP) |',
      '|---|---|---|']
  for r in rows:
    f = r['flops_per_example']
    lines.append(f"| {r['name']} | {f / 1e9:.3g} | "
                 f"{f * r['n_train'] / 1e15:.3g} |")
  sizes = {'ResNet-50, CIFAR-100': 50_000, 'DeiT-T, ImageNet': 1_281_167}
  for label, f in gpu_rows:
    lines.append(f'| {label} | {f / 1e9:.3g} | '
                 f'{f * sizes[label] / 1e15:.3g} |')
  lines += ['', 'GPU run times in the configs are estimates: these FLOPs at '
            'an assumed 30 TFLOP/s sustained (float32 with TF32 matmuls on '
            'an A100/H100-class GPU), not measurements.', '']
  with open(path, 'w') as f:
    f.write('\n'.join(lines))
  print('\n'.join(lines))


if __name__ == '__main__':
  main()
