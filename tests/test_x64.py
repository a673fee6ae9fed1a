"""float32 features under ``jax_enable_x64`` give the float32 results, on every report path.

x64 is a process-wide switch (common in notebooks that also use scipy), so the
x64 side runs in a subprocess; its numbers are compared with this process's
(x64 off) on the same float32 data.
"""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from nc_jax import metrics

ROOT = os.path.join(os.path.dirname(__file__), '..')

SCRIPT = r'''
import json, sys
import jax
if sys.argv[1] == 'x64':
  jax.config.update('jax_enable_x64', True)
import numpy as np
from nc_jax import metrics

rng = np.random.default_rng(0)
y = np.arange(800) % 5
y[:40] = 0  # imbalanced
x = (rng.normal(size=(5, 12))[y] * 3 + rng.normal(size=(800, 12)) + 50.0).astype(np.float32)
w = rng.normal(size=(5, 12)).astype(np.float32)
b = rng.normal(size=5).astype(np.float32)
ood = rng.normal(size=(64, 12)).astype(np.float32)
out, dtypes = {}, set()

def keep(name, report):
  dtypes.update(str(v.dtype) for v in report.values())
  out[name] = {k: float(v) for k, v in report.items()}

keep('memory', metrics.collapse_report(x, y, num_classes=5, classifier=(w, b),
                                       ood_features=ood))
keep('jit', jax.jit(lambda x, y: metrics.collapse_report(x, y, num_classes=5))(x, y))
for layout, kw in (('per_class', {}), ('pooled', dict(class_counts=np.bincount(y, minlength=5)))):
  st = None
  for lo in range(0, 800, 96):
    st = metrics.accumulate(x[lo:lo + 96], y[lo:lo + 96], num_classes=5, stats=st,
                            **(kw if st is None else {}))
  keep(layout, metrics.report_from_stats(st, classifier=(w, b)))
  count = sum(int(metrics.ncc_mismatch(x[lo:lo + 96], stats=st, classifier=(w, b)))
              for lo in range(0, 800, 96))
  out[layout]['nc4_ncc_mismatch'] = count / 800
mesh = jax.make_mesh((8,), ('data',), axis_types=(jax.sharding.AxisType.Explicit,))
sh = jax.sharding.NamedSharding(mesh, jax.P('data'))
st = metrics.accumulate_sharded(jax.device_put(x, sh), jax.device_put(y, sh), num_classes=5,
                                mesh=mesh)
keep('sharded', metrics.report_from_stats(st))
print(json.dumps(dict(out=out, dtypes=sorted(dtypes))))
'''


def _run(mode):
  env = dict(os.environ, XLA_FLAGS='--xla_force_host_platform_device_count=8')
  res = subprocess.run([sys.executable, '-c', SCRIPT, mode], capture_output=True, text=True,
                       cwd=ROOT, env=env, timeout=600)
  assert res.returncode == 0, res.stderr[-3000:]
  return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_float32_under_x64_gives_float32_results_on_every_path():
  x64, plain = _run('x64'), _run('plain')
  assert x64['dtypes'] == ['float32']
  assert plain['dtypes'] == ['float32']
  for path, report in plain['out'].items():
    for key, value in report.items():
      np.testing.assert_allclose(x64['out'][path][key], value, rtol=2e-5, atol=1e-6,
                                 err_msg=f'{path} {key}')
