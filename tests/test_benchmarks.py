"""The prepared device check and the PyTorch comparison, in their CPU smoke forms.

`benchmarks/gpu_check.sh` runs on a lent GPU in one go, so its every step is
exercised here first (``GPU_CHECK_SMOKE=1``: each step tiny, on this CPU);
`benchmarks/bench_train_vs_torch.py` must time the same model on both sides.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
sys.path.insert(0, os.path.join(ROOT, 'benchmarks'))


def _mlp_params(widths=(784, 1024, 1024, 1024), classes=10):
  """Linear weights and biases plus BatchNorm scale and bias of each hidden layer."""
  hidden = sum(a * b + b + 2 * b for a, b in zip(widths, widths[1:]))
  return hidden + widths[-1] * classes + classes


def test_train_vs_torch_times_the_same_models():
  import bench_train_vs_torch as bench
  ours, theirs = bench.parameter_counts('mlp')
  assert ours == _mlp_params() == 2_919_434
  # ResNet-18 with the CIFAR stem and 10 classes: 11,173,962 parameters, the
  # count the CIFAR ResNet-18 is known by.
  resnet, theirs_resnet = bench.parameter_counts('resnet18')
  assert resnet == 11_173_962
  if theirs is not None:  # PyTorch importable (the benchmark venv)
    assert (theirs, theirs_resnet) == (ours, resnet)


@pytest.mark.slow
def test_gpu_check_smoke_runs_every_step(tmp_path):
  env = dict(os.environ, GPU_CHECK_SMOKE='1', OUT=str(tmp_path), PYTHON=sys.executable)
  env.pop('XLA_FLAGS', None)  # One device, as on the lent GPU.
  res = subprocess.run(['bash', os.path.join(ROOT, 'benchmarks', 'gpu_check.sh')], env=env,
                       capture_output=True, text=True, timeout=1200, check=False)
  assert res.returncode == 0, res.stderr[-2000:]
  steps = dict(line.split()[:2] for line in (tmp_path / 'steps.txt').read_text().splitlines())
  assert steps == {name: 'rc=0' for name in ('tests', 'metrics', 'scale', 'torch', 'resnet18')}, (
      {name: (tmp_path / f'{name}.log').read_text()[-1500:] for name in steps})
  summary = json.loads((tmp_path / 'train' / 'summary.json').read_text())
  assert 0.1 < summary['test_accuracy'] <= 1.0  # bfloat16 compute trained a digits MLP
  assert '| mlp | bfloat16 |' in (tmp_path / 'torch.log').read_text()
  assert '| 1,000 | 64 |' in (tmp_path / 'scale.log').read_text()


def test_results_files_keep_every_tag(tmp_path):
  import results_files
  path = str(tmp_path / 'results_x.json')
  render = lambda run: f"rate {run['rate']}"
  results_files.record(dict(date='d1', rate=1), 'cpu', path, 'T', 'bench_x.py', render)
  results_files.record(dict(date='d2', rate=2), 'gpu', path, 'T', 'bench_x.py', render)
  results_files.record(dict(date='d3', rate=3), 'cpu', path, 'T', 'bench_x.py', render)
  assert json.load(open(path)) == dict(cpu=dict(date='d3', rate=3), gpu=dict(date='d2', rate=2))
  md = (tmp_path / 'results_x.md').read_text()
  assert md.index('## cpu (d3)\n\nrate 3') < md.index('## gpu (d2)\n\nrate 2')
  steps = iter(range(100))
  assert results_files.best_rate(lambda n: [next(steps) for _ in range(n)], 5, 2) > 0
  assert next(steps) == 3 + 5 + 5  # warm-up, then two windows of 5
