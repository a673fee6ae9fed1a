"""Training speed of the nc_jax trainer against the same loop in PyTorch, in one run.

    bash benchmarks/setup_reference.sh      # a benchmark-only venv with torch (CPU build)
    .venv-ref/bin/python benchmarks/bench_train_vs_torch.py [--steps 30] [--write] [--tag cpu]

The same two models, batch and optimiser on both sides:

- ``resnet18``: ResNet-18 with the CIFAR stem (3x3 conv, no max-pool), width
  64, BatchNorm, 32 x 32 x 3 inputs, 10 classes;
- ``mlp``: 3 hidden layers of 1,024 units (ReLU, BatchNorm), 28 x 28 inputs.

SGD with momentum 0.9, learning rate 0.05, weight decay 5e-4 (added to the
gradient before momentum on both sides), cross-entropy, batch 128. The PyTorch
models are written here from the architecture (the same layers and widths;
the script checks that both have the same number of parameters before it times
anything). Both train on the same random batches held in memory (host batching
is not timed); steps/s is measured after warm-up steps (compilation on the JAX
side), best of ``--repeats`` timed windows. nc_jax's step is its trainer's
(`train.setup(...).train_step`: loss, gradients, update, running
statistics); ``--dtypes float32,bfloat16`` also times the trainer's bfloat16
compute (`model.compute_dtype`) and torch's ``autocast(bfloat16)``.

PyTorch is never a dependency of nc_jax: without it the torch columns say
"not importable". ``--write`` renders benchmarks/results_train_vs_torch.md
(keyed by ``--tag``, e.g. cpu / gpu) from benchmarks/results_train_vs_torch.json.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import results_files  # noqa: E402  (benchmarks/, beside this script)

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, 'results_train_vs_torch.json')
BATCH, LR, MOMENTUM, WD = 128, 0.05, 0.9, 5e-4
CASES = {'resnet18': ((32, 32, 3), dict(name='resnet18', kwargs=dict(width=64, stem='cifar'))),
         'mlp': ((28, 28), dict(name='mlp', kwargs=dict(width=1024, depth=3, norm='batch')))}


def _batches(shape, n_batches, seed=0):
  rng = np.random.default_rng(seed)
  return [(rng.integers(0, 256, (BATCH,) + shape, dtype=np.uint8),
           rng.integers(0, 10, BATCH).astype(np.int32)) for _ in range(n_batches)]


# ----------------------------------------------------------------------------
# nc_jax
# ----------------------------------------------------------------------------


def jax_setup(case: str, dtype: str):
  """The trainer's step for ``case`` (`train.setup`), its state and a runner."""
  import jax
  import jax.numpy as jnp
  from nc_jax import data
  from nc_jax import train
  shape, model = CASES[case]
  c = train.default_config()
  c.model.name, c.model.kwargs = model['name'], model['kwargs']
  c.model.compute_dtype = dtype
  c.batch_size = BATCH
  c.optimizer = train.optimizer('sgd', learning_rate=LR, momentum=MOMENTUM, weight_decay=WD)
  c.schedule = train.schedule('constant')
  c.evals.track_collapse = False
  images, labels = _batches(shape, 1)[0]
  ds = data.Dataset(images, labels, 10, tuple(map(str, range(10))),  # (normalisation constants)
                    name='cifar10' if case == 'resnet18' else 'mnist')
  mesh = train.make_mesh(jax.devices()[:1])
  run = train.setup(c, ds, mesh)
  keys = ('loss', 'correct', 'count', 'nonfinite', 'l2_grads', 'l2_params')
  running = {k: jnp.zeros((), jnp.float32) for k in keys}
  params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(run.state['params']))
  return run, running, mesh, params


def jax_steps_per_s(case, dtype, steps, repeats, warmup=3):
  import jax
  from nc_jax.train import input as input_lib
  run, running, mesh, _ = jax_setup(case, dtype)
  batches = [input_lib.global_batch(mesh, x, y) for x, y in _batches(CASES[case][0], 4)]
  state, i = run.state, 0

  def window(n):
    nonlocal state, running, i
    for _ in range(n):
      x, y = batches[i % len(batches)]
      state, running = run.train_step(state, running, x, y, i)
      i += 1
    jax.block_until_ready(running)

  return results_files.best_rate(window, steps, repeats, warmup)


# ----------------------------------------------------------------------------
# PyTorch (written from the architecture, not from nc_jax or any library's code)
# ----------------------------------------------------------------------------


def torch_model(case: str):
  import torch
  from torch import nn

  if case == 'mlp':
    layers, width, cin = [nn.Flatten()], 1024, 28 * 28
    for _ in range(3):
      layers += [nn.Linear(cin, width), nn.BatchNorm1d(width), nn.ReLU()]
      cin = width
    return nn.Sequential(*layers, nn.Linear(width, 10))

  class Block(nn.Module):

    def __init__(self, cin, cout, stride):
      super().__init__()
      self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
      self.b1 = nn.BatchNorm2d(cout)
      self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
      self.b2 = nn.BatchNorm2d(cout)
      self.skip = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                 nn.BatchNorm2d(cout))
                   if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x):
      y = torch.relu(self.b1(self.c1(x)))
      return torch.relu(self.b2(self.c2(y)) + self.skip(x))

  blocks, cin = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()], 64
  for s in range(4):
    for b in range(2):
      cout = 64 * 2**s
      blocks.append(Block(cin, cout, 2 if s > 0 and b == 0 else 1))
      cin = cout
  return nn.Sequential(*blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, 10))


def torch_steps_per_s(case, dtype, steps, repeats, warmup=3):
  import torch
  model = torch_model(case).train()
  opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WD)
  batches = []
  for x, y in _batches(CASES[case][0], 4):
    x = torch.from_numpy(x).float() / 255.0
    if x.ndim == 4:
      x = x.permute(0, 3, 1, 2).contiguous()  # NCHW
    batches.append((x, torch.from_numpy(y).long()))
  i = 0

  def window(n):
    nonlocal i
    for _ in range(n):
      x, y = batches[i % len(batches)]
      with torch.autocast('cpu', dtype=torch.bfloat16, enabled=dtype == 'bfloat16'):
        loss = torch.nn.functional.cross_entropy(model(x), y)
      opt.zero_grad(set_to_none=True)
      loss.backward()
      opt.step()
      i += 1

  return results_files.best_rate(window, steps, repeats, warmup)


def parameter_counts(case: str) -> tuple[int, int | None]:
  """(nc_jax, PyTorch) trainable parameters (BatchNorm scale and bias included)."""
  jax_params = jax_setup(case, 'float32')[3]
  try:
    model = torch_model(case)
  except ImportError:
    return jax_params, None
  return jax_params, sum(p.numel() for p in model.parameters())


def table(run: dict) -> str:
  lines = [f"{run['machine']}; jax {run['jax']}, torch {run['torch'] or 'not importable'}; "
           f'batch {BATCH}, SGD momentum {MOMENTUM}, lr {LR}, weight decay {WD}; best of '
           f"{run['repeats']} windows of {run['steps']} steps after warm-up.", '',
           '| model | compute | nc_jax steps/s | nc_jax examples/s | PyTorch steps/s | '
           'PyTorch examples/s | nc_jax / PyTorch |', '|---|---|---|---|---|---|---|']
  for r in run['rows']:
    ours, t = r['jax_steps_s'], r.get('torch_steps_s')
    theirs = ('n/a | n/a | n/a' if t is None
              else f'{t:.2f} | {t * BATCH:,.0f} | {ours / t:.2f}')
    lines.append(f"| {r['case']} | {r['dtype']} | {ours:.2f} | {ours * BATCH:,.0f} | "
                 f'{theirs} |')
  return '\n'.join(lines)


def main():
  ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  ap.add_argument('--steps', type=int, default=30)
  ap.add_argument('--repeats', type=int, default=3)
  ap.add_argument('--cases', default='mlp,resnet18')
  ap.add_argument('--dtypes', default='float32')
  ap.add_argument('--write', action='store_true')
  ap.add_argument('--tag', default='cpu')
  args = ap.parse_args()
  import jax
  try:
    import torch
    torch.set_num_threads(os.cpu_count())
    torch_version = torch.__version__
  except ImportError:
    torch_version = None
  rows = []
  for case in args.cases.split(','):
    ours, theirs = parameter_counts(case)
    if theirs is not None and ours != theirs:
      raise SystemExit(f'{case}: nc_jax has {ours:,} parameters, the PyTorch model {theirs:,}: '
                       'not the same model')
    for dtype in args.dtypes.split(','):
      row = dict(case=case, dtype=dtype, params=ours,
                 jax_steps_s=jax_steps_per_s(case, dtype, args.steps, args.repeats))
      if torch_version:
        row['torch_steps_s'] = torch_steps_per_s(case, dtype, args.steps, args.repeats)
      print(row, flush=True)
      rows.append(row)
  run = dict(date=datetime.date.today().isoformat(), jax=jax.__version__,
             torch=torch_version, steps=args.steps, repeats=args.repeats, rows=rows,
             machine=f'{platform.processor() or platform.machine()}, {os.cpu_count()} cores, '
                     f'{jax.devices()[0].platform}')
  print(table(run))
  if args.write:
    results_files.record(run, args.tag, RESULTS, 'Training speed: nc_jax against PyTorch',
                         'bench_train_vs_torch.py', table)


if __name__ == '__main__':
  main()
