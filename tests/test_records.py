"""A run on disk: the records' schema (`nc_jax.records`), reading metrics.jsonl
and locking a workdir (`nc_jax.workdir`), `nc_jax.rundir.RunDir`, and the
import graph of the package (no module imports one that imports it back).
"""

import ast
import json
import os
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest

from nc_jax import records
from nc_jax import workdir as workdir_lib
from nc_jax.rundir import RunDir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------ import graph


def import_graph(root: str = os.path.join(ROOT, 'nc_jax')) -> dict[str, set]:
  """{module: nc_jax modules it imports}, at any depth (also in functions).

  ``from a.b import c`` imports ``a.b.c`` when that is a module, else
  ``a.b``; a package's own ``__init__`` being run first is not counted.
  """
  paths = {}
  for folder, _, files in os.walk(root):
    for f in files:
      if f.endswith('.py'):
        path = os.path.join(folder, f)
        name = os.path.relpath(path[:-3], os.path.dirname(root)).replace(os.sep, '.')
        paths[name.removesuffix('.__init__')] = path
  graph = {}
  for name, path in paths.items():
    package = name if path.endswith('__init__.py') else name.rpartition('.')[0]
    with open(path) as f:
      tree = ast.parse(f.read())
    out = set()
    for node in ast.walk(tree):
      if isinstance(node, ast.Import):
        out |= {a.name for a in node.names if a.name in paths}
      elif isinstance(node, ast.ImportFrom):
        base = node.module or ''
        if node.level:
          parts = package.split('.')[:len(package.split('.')) - node.level + 1]
          base = '.'.join(parts + ([node.module] if node.module else []))
        for a in node.names:
          full = f'{base}.{a.name}'
          out.add(full if full in paths else base)
    graph[name] = {m for m in out if m in paths and m != name}
  return graph


def find_cycle(graph: dict[str, set]) -> list[str] | None:
  """One import cycle of ``graph`` (a list of modules), or None."""
  state = {}

  def visit(node, stack):
    state[node] = 'open'
    for nxt in sorted(graph[node]):
      if state.get(nxt) == 'open':
        return stack[stack.index(nxt):] + [nxt]
      if nxt not in state:
        found = visit(nxt, stack + [nxt])
        if found:
          return found
    state[node] = 'done'
    return None

  for node in sorted(graph):
    if node not in state:
      found = visit(node, [node])
      if found:
        return found
  return None


def test_no_module_imports_one_that_imports_it():
  graph = import_graph()
  assert {'nc_jax.records', 'nc_jax.rundir', 'nc_jax.train.model',
          'nc_jax.train.checkpoints', 'nc_jax.plots'} <= set(graph)
  pairs = sorted((a, b) for a in graph for b in graph[a]
                 if a < b and a in graph[b])
  assert not pairs, f'modules importing each other: {pairs}'
  assert find_cycle(graph) is None, f'import cycle: {find_cycle(graph)}'
  # The graph check itself finds a planted cycle.
  assert find_cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}) == ['a', 'b', 'c', 'a']


def _reachable(graph, start):
  seen, todo = set(), [start]
  while todo:
    for m in graph[todo.pop()] - seen:
      seen.add(m)
      todo.append(m)
  return seen


def test_records_and_plots_do_not_import_the_trainer():
  graph = import_graph()
  assert not graph['nc_jax.records']  # json and NumPy only.
  trainer = {m for m in _reachable(graph, 'nc_jax.plots')
             if m.startswith(('nc_jax.train', 'nc_jax.studies'))}
  assert not trainer, trainer


# ----------------------------------------------------------------- records


def _eval(epoch, split, layer, **kw):
  return dict(epoch=epoch, step=4 * epoch, split=split, layer=layer,
              num_examples=10, **kw)


def _fit(epoch, **kw):
  return dict(epoch=epoch, step=4 * epoch, running_loss=1.0 / epoch,
              running_accuracy=0.5, learning_rate=0.1, l2_params=1.0,
              l2_grads=1.0, epoch_time_s=2.0, eval_time_s=0.5, **kw)


@pytest.fixture
def run_records():
  """Two evaluations (epochs 0 and 2) of a run with a 'fine' label set."""
  out = []
  for epoch, acc in ((0, 0.1), (2, 1.0)):
    if epoch:
      out += [_fit(1), _fit(2)]
    for split in ('train', 'test'):
      a = acc if split == 'train' else acc / 2
      out.append(_eval(epoch, split, 'layer1', accuracy=a, loss=1.0,
                       nc1=3.0 - epoch))
      out.append(_eval(epoch, split, 'penultimate', accuracy=a, loss=2.0 - a,
                       nc1=2.0 - epoch, nc3_self_duality=0.5))
      out.append(_eval(epoch, split, 'penultimate', labels='fine',
                       nc1=9.0 + epoch))
  return out


def test_select_series_and_last(run_records):
  shuffled = run_records[::-1]  # Selection is in epoch order whatever the file's.
  test = records.select(shuffled, split='test', layer='penultimate')
  assert [r['epoch'] for r in test] == [0, 2]
  assert [r['accuracy'] for r in test] == [0.05, 0.5]
  assert all('labels' not in r for r in test)
  fine = records.select(run_records, split='train', labels='fine')
  assert [r['nc1'] for r in fine] == [9.0, 11.0]
  assert len(records.select(run_records, labels=None)) == 12
  assert len(records.select(run_records, split='train')) == 4
  epochs, nc3 = records.series(run_records, 'nc3_self_duality', split='test',
                               layer='layer1')
  np.testing.assert_array_equal(epochs, [0, 2])
  assert np.isnan(nc3).all()  # Not logged at layer1: NaN.
  epochs, loss = records.series(run_records, 'running_loss', split=None)
  np.testing.assert_array_equal(epochs, [1, 2])
  np.testing.assert_allclose(loss, [1.0, 0.5])
  last = records.last(run_records, split='train')
  assert set(last) == {'layer1', 'penultimate'}
  assert last['penultimate']['epoch'] == 2
  table = records.eval_table(run_records)
  assert list(table) == ['train', 'test']
  assert [r['nc1'] for r in table['train']['layer1']] == [3.0, 1.0]


def test_summarize(run_records):
  s = records.summarize(run_records)
  assert (s['epoch'], s['step']) == (2, 8)
  assert s['train_accuracy'] == 1.0 and s['test_accuracy'] == 0.5
  assert s['test_nc1'] == 0.0 and s['train_loss'] == 1.0
  assert s['terminal_phase_epoch'] == 2
  assert s['train_time_s'] == 5.0
  assert s['layers']['test']['layer1'] == dict(
      epoch=2, step=8, num_examples=10, accuracy=0.5, loss=1.0, nc1=1.0)
  assert 'fine' not in json.dumps(s)  # Other label sets are not summarised.


# ---------------------------------------------------- reading metrics.jsonl


def _write(path, text):
  with open(path, 'w') as f:
    f.write(text)


def test_a_record_cut_short_at_the_end_is_dropped(tmp_path):
  path = tmp_path / 'metrics.jsonl'
  whole = [json.dumps({'epoch': e, 'nc1': 1.0 / (e + 1)}) for e in range(3)]
  _write(path, '\n'.join(whole) + '\n' + whole[0][:9])
  assert [r['epoch'] for r in workdir_lib.read_jsonl(path)] == [0, 1, 2]
  # A complete last record without its newline is kept.
  _write(path, '\n'.join(whole))
  assert len(workdir_lib.read_jsonl(path)) == 3
  # Truncating (as a resumed run does) leaves complete lines only.
  _write(path, '\n'.join(whole) + '\n' + whole[0][:9])
  wd = workdir_lib.Workdir(tmp_path)
  wd.truncate_metrics(lambda r: r['epoch'] < 2)
  assert path.read_text() == '\n'.join(
      json.dumps(json.loads(w), sort_keys=True) for w in whole[:2]) + '\n'
  assert workdir_lib.read_jsonl(tmp_path / 'absent.jsonl') == []


def test_a_corrupt_record_before_the_end_is_an_error(tmp_path):
  path = tmp_path / 'metrics.jsonl'
  _write(path, '{"epoch": 0}\n{"epoch": 1, "nc\n{"epoch": 2}\n')
  with pytest.raises(ValueError, match=r'metrics\.jsonl, line 2: not a JSON'):
    workdir_lib.Workdir(tmp_path).read_metrics()
  # Also a garbled last line that did end with its newline.
  _write(path, '{"epoch": 0}\n{"epo\n')
  with pytest.raises(ValueError, match='line 2'):
    workdir_lib.read_jsonl(path)


# ------------------------------------------------------------------ lock


_HOLDER = """
import sys
sys.path.insert(0, sys.argv[2])
from nc_jax.workdir import Workdir
with Workdir(sys.argv[1]).lock():
  print('held', flush=True)
  sys.stdin.read()
"""


def hold_lock(workdir) -> subprocess.Popen:
  """A child process holding ``workdir``'s lock until its stdin closes."""
  proc = subprocess.Popen([sys.executable, '-c', _HOLDER, str(workdir), ROOT],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True)
  assert proc.stdout.readline().strip() == 'held'
  return proc


def test_lock_names_its_holder_and_is_released_when_it_dies(tmp_path):
  wd = workdir_lib.Workdir(tmp_path)
  proc = hold_lock(tmp_path)
  try:
    with pytest.raises(workdir_lib.WorkdirInUse,
                       match=rf'pid {proc.pid} on host '
                       rf'{socket.gethostname()}, started 20'):
      with wd.lock():
        pass
  finally:
    proc.send_signal(signal.SIGKILL)  # A crash: the lock file stays behind.
    proc.wait()
  assert os.path.exists(wd.file(workdir_lib.LOCK))
  with wd.lock():  # Released by the OS; the stale file is taken over.
    with open(wd.file(workdir_lib.LOCK)) as f:
      assert json.load(f)['pid'] == os.getpid()
    with pytest.raises(workdir_lib.WorkdirInUse, match=f'pid {os.getpid()}'):
      with workdir_lib.Workdir(tmp_path).lock():
        pass
  assert not os.path.exists(wd.file(workdir_lib.LOCK))  # Removed on exit.
  proc = hold_lock(tmp_path)  # A clean exit releases it too.
  proc.communicate('')
  with wd.lock():
    pass


# ------------------------------------------------------------------ RunDir


def test_rundir_reads_a_trainer_run(tmp_path):
  import test_train  # pylint: disable=g-import-not-at-top
  from nc_jax import train  # pylint: disable=g-import-not-at-top
  from nc_jax.studies import common  # pylint: disable=g-import-not-at-top
  config = test_train.tiny_config({'checkpoint.every': 1, 'checkpoint.init': True,
                                   'checkpoint.keep': 3, 'evals.layers': ('layer1',)})
  summary = train.train_and_evaluate(config, str(tmp_path),
                                     mesh=test_train.one_device_mesh())
  run = RunDir(tmp_path)
  assert run.config.model.name == 'mlp' and run.config.num_epochs == 2
  assert run.model_info['num_classes'] == 10
  assert run.records == test_train.read_metrics(tmp_path)
  assert run.summary['test_accuracy'] == summary['test_accuracy']
  computed = records.summarize(run.records)
  assert all(run.summary[k] == v for k, v in computed.items())
  assert run.checkpoint_epochs == [0, 1, 2]
  assert [r['epoch'] for r in run.fits] == [1, 2]
  test = run.eval(split='test', layer='penultimate')
  assert [r['epoch'] for r in test] == [0, 1, 2]
  assert set(run.last('train')) == {'layer1', 'penultimate'}
  epochs, nc1 = run.series('nc1', split='train', layer='layer1')
  assert list(epochs) == [0, 1, 2] and nc1[-1] == run.last('train')['layer1']['nc1']

  # Features of a chosen epoch: its logits give its logged test accuracy.
  _, test_ds = train.load_data(config)
  accuracy = {}
  for epoch in (0, 1, None):
    f = run.features({'test': test_ds}, epoch, layers=('penultimate', 'logits'))
    logits = f['test']['logits']
    assert f['test']['penultimate'].shape == (128, 16)
    accuracy[epoch] = np.mean(np.argmax(logits, -1) == test_ds.labels)
  for epoch, r in zip((0, 1, None), test):
    assert accuracy[epoch] == pytest.approx(r['accuracy'], abs=1.01 / 128)
  assert abs(accuracy[0] - accuracy[None]) > 0.1  # The epochs differ.
  # The studies' features_at is RunDir.features.
  old = common.features_at(str(tmp_path), 1, {'test': test_ds})
  new = run.features({'test': test_ds}, 1)
  np.testing.assert_array_equal(old['test']['penultimate'],
                                new['test']['penultimate'])
