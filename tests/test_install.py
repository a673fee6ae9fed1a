"""Where users work: the quickstart notebook runs top to bottom, the light install
holds, pyproject declares the pinned requirements, and a wheel builds."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.join(os.path.dirname(__file__), '..')
NOTEBOOK = os.path.join(ROOT, 'docs', 'notebooks', 'quickstart.ipynb')


@pytest.mark.slow
def test_quickstart_notebook_executes(tmp_path):
  nbformat = pytest.importorskip('nbformat')
  nbclient = pytest.importorskip('nbclient')
  nb = nbformat.read(NOTEBOOK, as_version=4)
  client = nbclient.NotebookClient(nb, timeout=600, kernel_name='python3',
                                   resources={'metadata': {'path': str(tmp_path)}})
  client.execute()  # Raises CellExecutionError on any failing cell or assert.
  outputs = [o for c in nb.cells if c.cell_type == 'code' for o in c.get('outputs', [])]
  assert any(o.get('output_type') == 'display_data' and 'image/png' in o.get('data', {})
             for o in outputs), 'the plots did not render'


def test_metrics_import_without_training_dependencies():
  """The light install: `from nc_jax import metrics` works with flax, optax, orbax,
  tensorflow_datasets, sklearn and matplotlib absent (imports of them fail)."""
  code = '''
import sys
class Block:
  def find_spec(self, name, path=None, target=None):
    if name.split('.')[0] in ('flax', 'optax', 'orbax', 'tensorflow_datasets', 'sklearn',
                              'matplotlib', 'ml_collections', 'chex', 'tqdm'):
      raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
import numpy as np
from nc_jax import metrics
y = np.arange(40) % 4
x = np.eye(4)[y] * 5 + np.random.default_rng(0).normal(size=(40, 4))
print(float(metrics.collapse_report(x, y, num_classes=4)['nc1']))
'''
  out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                       cwd=ROOT, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  assert float(out.stdout.strip().splitlines()[-1]) > 0


def test_pyproject_declares_the_requirements():
  """`pip install .` brings what requirements.txt pins (same names and bounds)."""
  import tomllib
  with open(os.path.join(ROOT, 'pyproject.toml'), 'rb') as f:
    project = tomllib.load(f)['project']
  declared = set(project['dependencies']) | set(project['optional-dependencies']['test'])
  with open(os.path.join(ROOT, 'requirements.txt')) as f:
    pinned = {line.strip() for line in f if line.strip() and not line.startswith('#')}
  norm = lambda s: s.replace(' ', '').lower()
  assert {norm(p) for p in pinned} == {norm(d) for d in declared}


@pytest.mark.slow
def test_a_wheel_builds_with_the_package_and_its_dependencies(tmp_path):
  import zipfile
  out = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '-q',
                        '-w', str(tmp_path), ROOT],
                       capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-2000:]
  (wheel,) = [f for f in os.listdir(tmp_path) if f.endswith('.whl')]
  with zipfile.ZipFile(tmp_path / wheel) as z:
    names = z.namelist()
    meta = z.read(next(n for n in names if n.endswith('METADATA'))).decode()
  assert 'nc_jax/metrics/report.py' in names and 'nc_jax/train/trainer.py' in names
  assert 'configs/papers/p004_fine_grained.py' in names
  assert 'Requires-Dist: flax' in meta and 'Requires-Dist: jax' in meta
