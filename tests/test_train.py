"""Tests of the trainer (`nc_jax.train`) and experiments/train.py.

Runs use a tiny MLP on slices of scikit-learn digits (built in, no files) or
on mock TFDS data, one or two epochs each. tests/conftest.py gives 8 fake CPU
devices; runs that do not test sharding use a 1-device mesh (faster). The
README main-job command runs as a subprocess started when the module starts,
so it overlaps the in-process tests.
"""

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
import pytest
from absl import flags
from ml_collections import config_flags

from nc_jax import metrics
from nc_jax import train
from nc_jax.train import losses

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMING_KEYS = ('epoch_time_s', 'eval_time_s', 'train_time_s', 'wall_time_s')


def tiny_config(overrides=None, **top) -> ml_collections.ConfigDict:
  """An MLP (2 x 16) on 256 / 128 digits, 2 epochs of 4 steps each.

  ``overrides``: dotted keys (``{'checkpoint.every': 2}``); ``top``:
  top-level keys (``num_epochs=4``); whole groups may be given either way.
  """
  c = train.default_config()
  c.data.name = 'digits'
  c.data.train_split = 'train[:256]'
  c.data.test_split = 'test[:128]'
  c.model.name = 'mlp'
  c.model.kwargs = ml_collections.ConfigDict({'width': 16, 'depth': 2})
  c.batch_size = 64
  c.evals.batch_size = 128  # Divides both splits: no ragged last batch.
  c.optimizer.learning_rate = 0.05
  c.num_epochs = 2
  c.log.progress_bar = False
  c.log.plots = False
  for k, v in top.items():
    c[k] = v
  return train.config.override(c, overrides or {})


def one_device_mesh():
  return train.make_mesh(jax.devices()[:1])


def read_metrics(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


def without_timings(records):
  return [{k: v for k, v in r.items() if k not in TIMING_KEYS}
          for r in records]


def assert_records_close(a, b, rtol=1e-6, atol=0.0, loose=None):
  """Records equal to ``rtol`` (``loose``: {key: rtol} for keys that need more)."""
  assert len(a) == len(b)
  for ra, rb in zip(without_timings(a), without_timings(b)):
    assert ra.keys() == rb.keys()
    for k in ra:
      if isinstance(ra[k], float):
        np.testing.assert_allclose(ra[k], rb[k], rtol=(loose or {}).get(k, rtol),
                                   atol=atol, err_msg=f'{k} in {ra}')
      else:
        assert ra[k] == rb[k], (k, ra, rb)


# --------------------------------------------------------------- main job


def main_job_command() -> list[str]:
  """The training command of scripts/main.sh (the README's first command)."""
  with open(os.path.join(ROOT, 'scripts', 'main.sh')) as f:
    lines = [l for l in f if 'experiments/train.py' in l and
             not l.lstrip().startswith('#')]
  assert len(lines) == 1, lines
  cmd = shlex.split(lines[0].replace('"$@"', ''))
  assert cmd[0] == '.venv/bin/python', cmd
  return [sys.executable] + cmd[1:]


@pytest.fixture(scope='module', autouse=True)
def main_job(request, tmp_path_factory):
  """Starts the main-job command (2 epochs) in the background, if selected."""
  if not any(item.name == 'test_main_job_command_runs'
             for item in request.session.items):
    yield None
    return
  workdir = str(tmp_path_factory.mktemp('main'))
  cmd = [re.sub(r'^--workdir=.*', f'--workdir={workdir}', a)
         for a in main_job_command()]
  cmd += ['--config.num_epochs=2', '--config.evals.every=1',
          '--config.log.progress_bar=False']
  # As on a fresh machine: one CPU device, not the tests' 8 fake ones.
  env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'}
  proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
  yield proc, workdir
  if proc.poll() is None:
    proc.kill()
    proc.communicate()


# ------------------------------------------------------------------ runs


def test_two_steps_on_mock_tfds_data(tmp_path):
  """2 steps on tfds.testing.mock_data (works without TensorFlow)."""
  tfds = pytest.importorskip('tensorflow_datasets')
  config = tiny_config({'data.name': 'tfds:mnist', 'data.train_split': 'train',
                        'data.test_split': 'test', 'evals.batch_size': 64,
                        'log.plots': True}, batch_size=32, num_epochs=1)
  with tfds.testing.mock_data(num_examples=64):
    summary = train.train_and_evaluate(config, str(tmp_path),
                                       mesh=one_device_mesh())
  assert summary['step'] == 2
  for name in ('config.json', 'metrics.jsonl', 'summary.json',
               'collapse.png', 'accuracy.png', 'loss.png',
               'collapse_penultimate.png', 'nc1_layers_test.png'):
    assert os.path.isfile(tmp_path / name), name
  records = read_metrics(tmp_path)
  evals = [r for r in records if 'split' in r]
  # Epochs 0 and 1 x {train, test} x {layer1, penultimate}.
  assert {(r['epoch'], r['split'], r['layer']) for r in evals} == {
      (e, s, l) for e in (0, 1) for s in ('train', 'test')
      for l in ('layer1', 'penultimate')}
  pen = [r for r in evals if r['layer'] == 'penultimate']
  for r in pen:
    for k in ('accuracy', 'loss', 'nc1', 'vci', 'cdnv', 'nc2_etf',
              'nc3_self_duality', 'nc4_ncc_mismatch'):
      assert np.isfinite(r[k]), (k, r)
  layer1 = [r for r in evals if r['layer'] == 'layer1']
  assert all('nc3_self_duality' not in r for r in layer1)
  fits = [r for r in records if 'split' not in r]
  assert [r['epoch'] for r in fits] == [1] and fits[0]['step'] == 2
  assert summary['test_nc1'] == pen[-1]['nc1']


def test_a_sweep_traces_each_step_once(tmp_path, monkeypatch):
  """Runs that differ in seed, rate, schedule, length, loss options and
  regulariser weight share one traced train step and one eval step."""
  from nc_jax.train import step
  from nc_jax.train import tracking
  chex.clear_trace_counter()
  monkeypatch.setattr(step, 'train_step', jax.jit(
      chex.assert_max_traces(step.train_step.__wrapped__, n=1),
      static_argnames='spec', donate_argnames=('state', 'running')))
  monkeypatch.setattr(tracking, 'eval_step', jax.jit(
      chex.assert_max_traces(tracking.eval_step.__wrapped__, n=1),
      static_argnames=('n_valid', 'spec')))
  mesh = one_device_mesh()
  a = tiny_config({'loss.cosine_reg': 0.5}, num_epochs=1)
  b = tiny_config({'loss.kwargs.temperature': 0.5, 'loss.cosine_reg': 2.0,
                   'optimizer.learning_rate': 0.01,
                   'schedule': train.schedule('step', warmup_epochs=0.5,
                                              epochs=(1,))},
                  num_epochs=2, seed=3)
  for name, config in (('a', a), ('b', b)):
    summary = train.train_and_evaluate(config, str(tmp_path / name),
                                       mesh=mesh)
    assert summary['step'] == 4 * config.num_epochs
  # The rates the runs logged are their schedules' (not the first run's).
  rates = [r['learning_rate'] for r in read_metrics(tmp_path / 'b')
           if 'learning_rate' in r]
  np.testing.assert_allclose(rates, [0.01, 0.001], rtol=1e-6)
  # A static choice (another loss) is a new program: the counter sees it.
  with pytest.raises(AssertionError, match='traced > 1 times'):
    train.train_and_evaluate(tiny_config({'loss': train.loss('mse')},
                                         num_epochs=1),
                             str(tmp_path / 'c'), mesh=mesh)


def test_kill_and_resume_equals_uninterrupted_run(tmp_path):
  config = tiny_config({'checkpoint.every': 2}, num_epochs=4)
  mesh = one_device_mesh()
  full = train.train_and_evaluate(config, str(tmp_path / 'full'), mesh=mesh)

  killed = str(tmp_path / 'killed')
  config.stop_after_epochs = 3  # Killed after epoch 3; checkpoint at 2.
  assert train.train_and_evaluate(config, killed, mesh=mesh) == {}
  assert not os.path.exists(os.path.join(killed, 'summary.json'))
  assert max(r['epoch'] for r in read_metrics(killed)) == 3
  config.stop_after_epochs = 0
  resumed = train.train_and_evaluate(config, killed, mesh=mesh)

  assert_records_close(read_metrics(killed),
                       read_metrics(tmp_path / 'full'), rtol=0)
  for k, v in full.items():
    if k not in TIMING_KEYS:
      assert resumed[k] == v, k


def test_programs_are_released_near_the_memory_map_limit(tmp_path,
                                                        monkeypatch):
  from nc_jax import process
  assert process.memory_mappings() > 0 and process.map_limit() > 0
  cleared = []
  # The real jax.clear_caches drops every program of this test process.
  monkeypatch.setattr(process.jax, 'clear_caches', lambda: cleared.append(1))
  assert not process.release_programs_near_map_limit(fraction=1.0)
  assert not cleared
  limit = tmp_path / 'max_map_count'
  limit.write_text('10\n')  # A cap this process is far above.
  monkeypatch.setattr(process, '_LIMIT', str(limit))
  assert process.release_programs_near_map_limit() and cleared == [1]


def test_checkpoint_retention_keeps_the_asked_epochs_for_good(tmp_path):
  """Orbax preservation policies: the latest `keep`, plus `epochs` and the
  initialisation (`init`) whatever `keep` is."""
  config = tiny_config({'checkpoint.every': 1, 'checkpoint.keep': 1,
                        'checkpoint.epochs': (2,), 'checkpoint.init': True},
                       num_epochs=4)
  train.train_and_evaluate(config, str(tmp_path), mesh=one_device_mesh())
  assert train.checkpoints.epochs(str(tmp_path)) == [0, 2, 4]
  config = tiny_config({'checkpoint.every': 1, 'checkpoint.keep': 2},
                       num_epochs=4)
  train.train_and_evaluate(config, str(tmp_path / 'b'), mesh=one_device_mesh())
  assert train.checkpoints.epochs(str(tmp_path / 'b')) == [3, 4]


def test_resume_after_a_crash_in_the_middle_of_a_record(tmp_path):
  """A record cut short by a crash is dropped on resume and logged again."""
  config = tiny_config({'checkpoint.every': 1}, num_epochs=2)
  mesh = one_device_mesh()
  train.train_and_evaluate(config, str(tmp_path / 'full'), mesh=mesh)
  full = read_metrics(tmp_path / 'full')

  crashed = tmp_path / 'crashed'
  config.stop_after_epochs = 1  # Stops after the checkpoint of epoch 1 ...
  train.train_and_evaluate(config, str(crashed), mesh=mesh)
  # ... and dies halfway through writing epoch 2's first record.
  line = json.dumps(full[len(read_metrics(crashed))], sort_keys=True)
  with open(crashed / 'metrics.jsonl', 'a') as f:
    f.write(line[:len(line) // 2])
  config.stop_after_epochs = 0
  train.train_and_evaluate(config, str(crashed), mesh=mesh)
  assert_records_close(read_metrics(crashed), full, rtol=0)
  assert (crashed / 'metrics.jsonl').read_text().endswith('}\n')

  # A damaged record that is not the last one is an error naming its line.
  text = (crashed / 'metrics.jsonl').read_text().splitlines(keepends=True)
  text[3] = text[3][:10] + '\n'
  (crashed / 'metrics.jsonl').write_text(''.join(text))
  config.num_epochs = 3
  with pytest.raises(ValueError, match=r'metrics\.jsonl, line 4: not a JSON'):
    train.train_and_evaluate(config, str(crashed), mesh=mesh)


_HOLDER = """
import sys
from nc_jax.workdir import Workdir
with Workdir(sys.argv[1]).lock():
  print('held', flush=True)
  sys.stdin.read()
"""


def test_second_run_into_a_workdir_in_use_is_refused(tmp_path):
  """Another process holds the workdir: refused, naming it; then free."""
  holder = subprocess.Popen([sys.executable, '-c', _HOLDER, str(tmp_path)],
                            cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == 'held'
    with pytest.raises(train.WorkdirInUse,
                       match=rf'in use by another run \(pid {holder.pid} on '
                       rf'host {re.escape(socket.gethostname())}, started '):
      train.train_and_evaluate(tiny_config(num_epochs=1), str(tmp_path),
                               mesh=one_device_mesh())
    assert os.listdir(tmp_path) == ['run.lock']  # Nothing else written.
  finally:
    holder.kill()  # It dies without releasing: the OS does.
    holder.wait()
  summary = train.train_and_evaluate(tiny_config(num_epochs=1), str(tmp_path),
                                     mesh=one_device_mesh())
  assert summary['epoch'] == 1
  keys = [(r['epoch'], r.get('split'), r.get('layer'))
          for r in read_metrics(tmp_path)]
  assert len(keys) == len(set(keys)) == 9  # 2 x 2 x 2 evaluations, 1 fit.
  assert not os.path.exists(tmp_path / 'run.lock')  # Released on exit.


def sharding_config() -> ml_collections.ConfigDict:
  """BatchNorm (statistics over the global batch), on-device augmentation
  (the same crops and flips however the batch is split) and a ragged last
  evaluation batch (100 test images in batches of 64)."""
  return tiny_config({'augment.crop_padding': 1, 'augment.flip': True,
                      'evals.batch_size': 64, 'model.kwargs.norm': 'batch',
                      'data.test_split': 'test[:100]'})


@pytest.fixture(scope='module')
def one_device_records(tmp_path_factory):
  workdir = tmp_path_factory.mktemp('one_device')
  summary = train.train_and_evaluate(sharding_config(), str(workdir),
                                     mesh=one_device_mesh())
  assert summary['num_devices'] == 1
  return read_metrics(workdir)


def test_eight_devices_equal_one_device(tmp_path, one_device_records):
  eight = train.train_and_evaluate(sharding_config(), str(tmp_path),
                                   mesh=train.make_mesh(jax.devices()[:8]))
  assert eight['num_devices'] == 8
  assert_records_close(one_device_records, read_metrics(tmp_path),
                       rtol=2e-4, atol=1e-5)


_WORKER = """
import sys
import jax
jax.config.update('jax_cpu_collectives_implementation', 'gloo')
jax.distributed.initialize(coordinator_address=sys.argv[1], num_processes=2,
                           process_id=int(sys.argv[2]))
assert jax.process_count() == 2 and jax.device_count() == 4
sys.path.insert(0, sys.argv[4])
import test_train
from nc_jax import train
train.train_and_evaluate(test_train.sharding_config(), sys.argv[3])
"""


def run_two_hosts(worker: str, workdir) -> None:
  """Runs ``worker`` as 2 jax.distributed processes x 2 CPU devices (gloo).

  The worker gets argv: coordinator address, process id, ``workdir``, and
  the tests folder (to import this module).
  """
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    address = f'127.0.0.1:{s.getsockname()[1]}'
  env = {**os.environ,
         'XLA_FLAGS': '--xla_force_host_platform_device_count=2'}
  procs = [subprocess.Popen(
      [sys.executable, '-c', worker, address, str(i), str(workdir),
       os.path.join(ROOT, 'tests')], cwd=ROOT, env=env,
      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
           for i in range(2)]
  for proc in procs:
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, out[-4000:]


def test_two_hosts_equal_one_device(tmp_path, one_device_records):
  """Multi-host: 2 processes x 2 CPU devices via jax.distributed (gloo)."""
  run_two_hosts(_WORKER, tmp_path)
  summary = json.loads((tmp_path / 'summary.json').read_text())
  assert summary['num_devices'] == 4
  assert_records_close(one_device_records, read_metrics(tmp_path),
                       rtol=2e-4, atol=1e-5)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
  # The learning rate jumps by 1e30 after epoch 1: the loss diverges in
  # epoch 2.
  config = tiny_config({'schedule': train.schedule('step', epochs=(1,),
                                                   factor=1e30),
                        'checkpoint.every': 1}, num_epochs=3)
  with pytest.raises(FloatingPointError,
                     match=r'NaN/Inf in epoch 2.*last good checkpoint '
                     r'\(epoch 1\)'):
    train.train_and_evaluate(config, str(tmp_path), mesh=one_device_mesh())
  mngr = ocp.CheckpointManager(str(tmp_path / 'checkpoints'))
  assert mngr.all_steps() == [1]
  restored = mngr.restore(1)
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(restored['params']))
  assert max(r['epoch'] for r in read_metrics(tmp_path)) == 1
  assert not os.path.exists(tmp_path / 'summary.json')


@pytest.mark.parametrize('overrides', [
    {'loss': train.loss('mse', label_smoothing=0.1),
     'optimizer.kwargs.nesterov': True,
     'schedule': train.schedule('step', epochs=(1,), warmup_epochs=0.5)},
    {'loss': train.loss('ce', temperature=0.5, label_smoothing=0.1,
                        cosine_reg=1.0),
     'optimizer': train.optimizer('adamw', learning_rate=0.05,
                                  weight_decay=0.05, weight_decay_on='kernels',
                                  grad_clip_norm=1.0)},
    {'loss': train.loss('supcon'), 'augment.crop_padding': 1,
     'augment.flip': True, 'optimizer.kwargs.momentum': None,
     'model.kwargs.projection': 'mlp'},
    {'optimizer': train.optimizer('lion', learning_rate=1e-3, b1=0.95),
     'augment.adversarial_eps': 0.05, 'augment.adversarial_steps': 2},
], ids=['mse_nesterov_step', 'ce_tau_cosreg_adamw', 'supcon_augment',
        'lion_pgd'])
def test_objectives_and_optimizers_take_steps(overrides):
  config = tiny_config(overrides)
  train_ds, _ = train.load_data(config)
  run = train.setup(config, train_ds, one_device_mesh())
  running = {k: jnp.zeros(()) for k in
             ('loss', 'correct', 'count', 'nonfinite', 'l2_grads',
              'l2_params')}
  state = run.state
  params0 = jax.device_get(state['params'])
  for i in range(2):
    idx = np.arange(64 * i, 64 * (i + 1))
    state, running = run.train_step(state, running, train_ds.images[idx],
                                    train_ds.labels[idx], i)
  r = jax.device_get(running)
  views = 2 if config.loss.name == 'supcon' else 1
  assert r['count'] == 128 * views and r['nonfinite'] == 0
  assert np.isfinite(r['loss'])
  moved = jax.tree.map(lambda a, b: np.abs(a - b).max(), params0,
                       jax.device_get(state['params']))
  assert max(jax.tree.leaves(moved)) > 0


# ---------------------------------------------------------------- config


def test_config_typos_and_bad_values_are_errors(tmp_path):
  config = train.default_config()
  config.optimizer.unlock()
  config.optimizer.lerning_rate = 0.1
  with pytest.raises(ValueError, match=r"'optimizer.lerning_rate' \(did you "
                     r"mean 'optimizer.learning_rate'\?\)"):
    train.check_config(config)
  config = train.default_config()
  config.unlock()
  config.momentum = 0.5  # An old flat key: its new place is named.
  with pytest.raises(ValueError,
                     match="did you mean 'optimizer.kwargs.momentum'"):
    train.check_config(config)
  with pytest.raises(KeyError, match="did you mean 'optimizer.learning_rate'"):
    tiny_config({'optimizer.learning_rte': 0.1})
  # Options are the callee's keyword arguments, checked by its signature.
  with pytest.raises(ValueError, match=r"optax.adamw takes no keyword "
                     r"argument\(s\) \[.*'momentum'\]"):
    train.check_config(tiny_config({'optimizer.name': 'adamw'}))
  with pytest.raises(ValueError, match=r"\['temprature' \(did you mean "
                     r"'temperature'\?\)\]"):
    train.loss('ce', temprature=0.5)
  with pytest.raises(ValueError, match='not an optax optimiser'):
    train.optimizer('adamm')
  with pytest.raises(ValueError, match='loss.name'):
    train.check_config(tiny_config({'loss.name': 'mae'}))
  with pytest.raises(ValueError, match='projection head'):
    train.check_config(tiny_config({'loss': train.loss('supcon'),
                                    'augment.noise': 0.1}))
  with pytest.raises(ValueError, match='two augmented views'):
    train.check_config(tiny_config({'loss': train.loss('supcon')}))
  with pytest.raises(ValueError, match='flat layout'):
    train.check_config(ml_collections.ConfigDict(dict(dataset='digits')))
  with pytest.raises(ValueError, match='not divisible'):
    train.train_and_evaluate(tiny_config(batch_size=60), str(tmp_path))
  with pytest.raises(ValueError, match='not layers of the model'):
    train.train_and_evaluate(tiny_config({'evals.layers': ('layer9',)}),
                             str(tmp_path), mesh=one_device_mesh())
  assert not os.listdir(tmp_path)  # Nothing written before the checks.


def test_a_run_written_before_the_config_groups_resumes(tmp_path):
  """tests/data/legacy_run: a flat-config run of the trainer before the
  groups (commit aef58da: MLP on digits, nesterov SGD, warm-up + cosine, 3
  epochs, killed after epoch 1). Read back, it maps onto the groups, and
  resumed from its checkpoint it ends as an uninterrupted run of today's
  trainer does."""
  old = tmp_path / 'old'
  shutil.copytree(os.path.join(ROOT, 'tests', 'data', 'legacy_run'), old)
  config = train.read_config(str(old))
  assert config.optimizer.kwargs.nesterov and config.loss.name == 'ce'
  assert config.schedule.warmup_epochs == 0.5
  assert config.checkpoint.keep == 1 and config.data.name == 'digits'
  assert config.stop_after_epochs == 1
  config.stop_after_epochs = 0  # Resume-safe: may differ.
  mesh = one_device_mesh()
  resumed = train.train_and_evaluate(config, str(old), mesh=mesh)
  full = train.train_and_evaluate(config, str(tmp_path / 'full'), mesh=mesh)
  assert resumed['epoch'] == full['epoch'] == 3
  # Epochs 0-1 were computed by the old program (its rates evaluated inside
  # the step) on another machine, 2-3 by today's: equal up to float32
  # rounding. The metrics through a pseudo-inverse or a projector amplify how
  # a CPU's eigensolver rounds: on an AMD EPYC nc1 and fuzziness differ from
  # the committed records by 5e-6 at the initialisation and 1.1e-4 at epoch
  # 3, within_vb_perp by 1.7e-5, while the running loss is bit-equal.
  assert_records_close(read_metrics(old), read_metrics(tmp_path / 'full'),
                       rtol=1e-5, atol=1e-6,
                       loose=dict(nc1=1e-3, fuzziness=1e-3, within_vb=1e-4,
                                  within_vb_perp=1e-4, vci=1e-4,
                                  linear_probe_mse=1e-4))
  # The resume check compares the old flat config through the mapping.
  changed = train.config.override(config, {'optimizer.learning_rate': 0.1})
  with pytest.raises(ValueError, match='optimizer.learning_rate: 0.05 -> 0.1'):
    train.train_and_evaluate(changed, str(old), mesh=mesh)


@pytest.mark.parametrize('name', sorted(
    f for f in os.listdir(os.path.join(ROOT, 'configs'))
    if f.startswith(('mlp_', 'resnet', 'deit'))))
def test_study_configs_parse_and_reject_typos(name):
  """Every trainer config loads (and its :runlocal), is valid, and a
  misspelt override on the command line is an error (lock_config)."""
  path = os.path.join(ROOT, 'configs', name)

  def parse(*argv):
    argv = ['prog', *argv]
    fv = flags.FlagValues()
    config_flags.DEFINE_config_file('config', flag_values=fv,
                                    lock_config=True, sys_argv=argv)
    fv(argv)
    return fv.config

  for arg in ('', ':runlocal'):
    config = parse(f'--config={path}{arg}', '--config.num_epochs=3')
    train.check_config(config)
    assert config.num_epochs == 3
  with pytest.raises(AttributeError, match='Did you mean "num_epochs"'):
    parse(f'--config={path}', '--config.num_epoch=3')


# ---------------------------------------------------------------- pieces


def test_cosine_regulariser_is_added_to_the_loss():
  """objective = CE + lambda R (paper 000 Table 2's direction), not CE - lambda R."""
  from flax import nnx
  from nc_jax.models.factory import create_model
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(16, 8, 8, 1)), jnp.float32)
  y = jnp.asarray(rng.integers(0, 3, 16), jnp.int32)
  model = create_model('mlp', num_classes=3, rngs=nnx.Rngs(0), input_shape=(8, 8, 1),
                       width=8, depth=2)
  model.eval()
  kw = dict(loss='ce', kwargs={}, num_classes=3)
  plain, logits = losses.objective(model, x, y, cosine_reg=None, **kw)
  reg, _ = losses.objective(model, x, y, cosine_reg=2.0, **kw)
  _, feats = model(x)
  r = losses.within_class_cosine(feats['penultimate'], y, 3)
  assert float(r) > 0
  np.testing.assert_allclose(float(reg), float(plain) + 2.0 * float(r), rtol=1e-5)
  np.testing.assert_allclose(
      float(plain), float(jnp.mean(losses.cross_entropy(logits, y))), rtol=1e-6)


def test_cosine_regulariser_lowers_within_class_similarity_of_a_trained_model(tmp_path):
  """Trained with lambda > 0, within-class cosine similarity falls (cosine_within, a
  distance, rises) and the squared distance rises, against lambda = 0 (Table 2)."""
  out = {}
  for lam in (0.0, 2.0):
    config = tiny_config({'loss.cosine_reg': lam}, num_epochs=8)
    out[lam] = train.train_and_evaluate(config, str(tmp_path / f'lam{lam}'),
                                        mesh=one_device_mesh())
  assert out[2.0]['train_cosine_within'] > out[0.0]['train_cosine_within'] + 0.05
  assert out[2.0]['train_squared_distance'] > 1.2 * out[0.0]['train_squared_distance']


def test_losses_against_references():
  rng = np.random.default_rng(0)
  z = rng.normal(size=(12, 4)).astype(np.float32)
  y = rng.integers(0, 4, 12).astype(np.int32)
  # Temperature: CE of z / tau; smoothing: mixture with uniform targets.
  logp = jax.nn.log_softmax(z / 0.5)
  t = 0.9 * np.eye(4)[y] + 0.1 / 4
  np.testing.assert_allclose(
      losses.cross_entropy(z, y, temperature=0.5, label_smoothing=0.1),
      -(t * logp).sum(1), rtol=1e-5)
  np.testing.assert_allclose(losses.mse(np.eye(4)[y], y), 0.0, atol=1e-7)
  # Within-class cosine: the mean over classes of the mean pairwise cosine.
  u = z / np.linalg.norm(z, axis=1, keepdims=True)
  want = np.mean([(u[y == k] @ u[y == k].T).mean() for k in np.unique(y)])
  np.testing.assert_allclose(losses.within_class_cosine(z, y, 6), want,
                             rtol=1e-5)
  # SupCon (Khosla et al. eq. 2), written as loops.
  sim = u @ u.T / 0.1
  per = []
  for i in range(12):
    others = [a for a in range(12) if a != i]
    pos = [p for p in others if y[p] == y[i]]
    if pos:
      lse = np.log(np.exp(sim[i, others]).sum())
      per.append(-np.mean([sim[i, p] - lse for p in pos]))
  np.testing.assert_allclose(losses.supcon(z, y, temperature=0.1),
                             np.mean(per), rtol=1e-4)


def test_augment_crops_and_flips():
  x = jnp.arange(2 * 4 * 4, dtype=jnp.float32).reshape(2, 4, 4, 1) / 32
  key = jax.random.key(0)
  same = train.augment(key, x, crop_padding=0, flip=False)
  np.testing.assert_array_equal(same, x)
  flipped = train.augment(key, x, crop_padding=0, flip=True)
  for a, b in zip(flipped, x):  # Each image flipped or left alone.
    assert (np.array_equal(a, b) or np.array_equal(a, b[:, ::-1]))
  cropped = np.asarray(train.augment(key, x, crop_padding=2, flip=False))
  for a, b in zip(cropped, np.asarray(x)):  # A window of the padded image.
    padded = np.pad(b, ((2, 2), (2, 2), (0, 0)))
    assert any(np.array_equal(a, padded[i:i + 4, j:j + 4])
               for i in range(5) for j in range(5))


def test_augment_jitter_is_a_per_image_brightness_and_contrast_map():
  # Inputs in [0.4, 0.6] and s = 0.2: no clipping, so each output image is
  # c b (x - mean x) + b mean x with b, c in [0.8, 1.2] (torchvision's
  # ColorJitter(brightness=0.2, contrast=0.2), brightness first).
  rng = np.random.default_rng(0)
  x = rng.uniform(0.4, 0.6, (64, 5, 5, 1)).astype(np.float32)
  out = np.asarray(train.augment(jax.random.key(1), jnp.asarray(x), crop_padding=0,
                                 flip=False, jitter=0.2), np.float64)
  xd = x.astype(np.float64)
  b = out.mean(axis=(1, 2, 3)) / xd.mean(axis=(1, 2, 3))
  c = out.std(axis=(1, 2, 3)) / (b * xd.std(axis=(1, 2, 3)))
  assert np.all((b >= 0.8 - 1e-5) & (b <= 1.2 + 1e-5))
  assert np.all((c >= 0.8 - 1e-5) & (c <= 1.2 + 1e-5))
  assert b.std() > 0.05 and c.std() > 0.05  # Drawn per image.
  m = xd.mean(axis=(1, 2, 3), keepdims=True)
  expect = (c * b)[:, None, None, None] * (xd - m) + b[:, None, None, None] * m
  np.testing.assert_allclose(out, expect, atol=2e-6)
  # RGB: the contrast keeps the mean luminance (torchvision's grayscale mean).
  rgb = rng.uniform(0.4, 0.6, (16, 4, 4, 3)).astype(np.float32)
  o = np.asarray(train.augment(jax.random.key(2), jnp.asarray(rgb), crop_padding=0,
                               flip=False, jitter=0.2), np.float64)
  lum = np.array([0.299, 0.587, 0.114])
  gray_in, gray_out = (rgb @ lum).mean(axis=(1, 2)), (o @ lum).mean(axis=(1, 2))
  b = gray_out / gray_in  # The brightness factor, if the contrast keeps the mean.
  assert np.all((b >= 0.8 - 1e-5) & (b <= 1.2 + 1e-5))
  x_b = rgb * b[:, None, None, None]  # The brightened image, then its contrast
  mean = (x_b @ lum).mean(axis=(1, 2))[:, None, None, None]  # about its mean luminance:
  dev_in, dev_out = x_b - mean, o - mean  # the deviations scale by one factor.
  c = (dev_out * dev_in).sum(axis=(1, 2, 3)) / (dev_in ** 2).sum(axis=(1, 2, 3))
  np.testing.assert_allclose(dev_out, c[:, None, None, None] * dev_in, atol=2e-6)
  same = train.augment(jax.random.key(1), jnp.asarray(x), crop_padding=0, flip=False,
                       jitter=0.0)
  np.testing.assert_array_equal(same, x)


def test_augment_erase_zeroes_one_rectangle_of_the_stated_size():
  x = jnp.ones((2000, 12, 10, 1), jnp.float32)
  out = np.asarray(train.augment(jax.random.key(0), x, crop_padding=0, flip=False,
                                 erase=1.0))
  for im in out[:300]:
    zero = im[..., 0] == 0
    rows, cols = np.nonzero(zero.any(axis=1))[0], np.nonzero(zero.any(axis=0))[0]
    box = np.zeros_like(zero)
    box[rows.min():rows.max() + 1, cols.min():cols.max() + 1] = True
    np.testing.assert_array_equal(zero, box)  # One solid rectangle.
    assert rows.max() - rows.min() + 1 == len(rows)
    # Area 2-33% of the image, up to the rounding of each side (+- 0.5 px).
    h, w = len(rows), len(cols)
    assert (h + 0.5) * (w + 0.5) >= 0.02 * 120 and (h - 0.5) * (w - 0.5) <= 0.33 * 120
  half = np.asarray(train.augment(jax.random.key(1), x, crop_padding=0, flip=False,
                                  erase=0.5))
  erased = (half == 0).any(axis=(1, 2, 3)).mean()
  assert abs(erased - 0.5) < 0.05  # 2,000 draws: SE 0.011.
  np.testing.assert_array_equal(
      train.augment(jax.random.key(0), x, crop_padding=0, flip=False, erase=0.0), x)


def test_augment_config_checks_name_the_key():
  with pytest.raises(ValueError, match='augment.erase is a probability'):
    train.check_config(tiny_config({'augment.erase': 1.5}))
  with pytest.raises(ValueError, match='augment.jitter must be >= 0'):
    train.check_config(tiny_config({'augment.jitter': -0.1}))
  train.check_config(tiny_config({'augment.jitter': 0.4, 'augment.erase': 0.5}))


def test_schedules():
  config = tiny_config({'optimizer.learning_rate': 0.1,
                        'schedule.warmup_epochs': 1.0}, num_epochs=10)
  _, cosine = train.make_optimizer(config, steps_per_epoch=10)
  np.testing.assert_allclose(
      [cosine(0), cosine(5), cosine(10), cosine(55), cosine(100)],
      [0, 0.05, 0.1, 0.05, 0], atol=1e-7)
  config = tiny_config({'optimizer.learning_rate': 0.1,
                        'schedule': train.schedule('step', epochs=(3, 6),
                                                   factor=0.1)},
                       num_epochs=10)
  _, step = train.make_optimizer(config, steps_per_epoch=10)
  np.testing.assert_allclose([step(29), step(30), step(60)],
                             [0.1, 0.01, 0.001], rtol=1e-6)
  config = tiny_config({'schedule': train.schedule('exponential',
                                                   decay_rate=0.5)})
  _, exp = train.make_optimizer(config, steps_per_epoch=10)
  np.testing.assert_allclose([exp(9), exp(10), exp(25)],
                             [0.05, 0.025, 0.0125], rtol=1e-6)
  # The per-step table the step reads is the schedule's.
  table = train.schedules.table(cosine, 100)
  np.testing.assert_allclose(table[[0, 5, 10, 55]], [0, 0.05, 0.1, 0.05],
                             atol=1e-7)


def test_main_job_command_runs(main_job):
  """scripts/main.sh's command (2 epochs) exits cleanly with the outputs."""
  proc, workdir = main_job
  out, _ = proc.communicate(timeout=600)
  assert proc.returncode == 0, out[-4000:]
  with open(os.path.join(workdir, 'summary.json')) as f:
    summary = json.load(f)
  assert summary['epoch'] == 2 and summary['num_devices'] == 1
  assert summary['train_accuracy'] > 0.5
  for name in ('collapse.png', 'nc1_layers_train.png', 'metrics.jsonl'):
    assert os.path.isfile(os.path.join(workdir, name)), name


def test_config_variants_parse_flags_choices_and_overrides():
  from configs import common
  v = common.parse('fashion_mnist,runlocal,num_epochs=3,model.kwargs.width=8,'
                   'optimizer.kwargs.nesterov=True',
                   choices={'dataset': ('mnist', 'fashion_mnist')})
  assert v.runlocal and not v.gpu and v.choice('dataset', 'mnist') == 'fashion_mnist'
  config = common.apply(train.default_config(), v)
  assert config.num_epochs == 3 and config.model.kwargs.width == 8
  assert config.optimizer.kwargs.nesterov is True
  with pytest.raises(ValueError, match="unknown config argument 'cifar'"):
    common.parse('cifar', choices={'dataset': ('mnist',)})
  with pytest.raises(KeyError, match=r"no key 'num_epoch' \(did you mean 'num_epochs'"):
    common.apply(train.default_config(), common.parse('num_epoch=3'))


def test_trainer_and_batch_iterator_share_one_data_order():
  from nc_jax import data
  from nc_jax.train import input as input_lib
  arrays = (np.zeros((1000, 1)), np.zeros(1000, np.int32))
  ours = list(input_lib.train_indices(1000, 128, 3, 2))
  theirs = [b['index'] for b in data.epoch_batches(arrays, 128, seed=3, epoch=2,
                                                    with_index=True)]
  assert len(ours) == len(theirs) == 7
  for a, b in zip(ours, theirs):
    np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- mixed precision


def test_bfloat16_compute_keeps_float32_parameters_state_and_loss():
  config = tiny_config({'model.compute_dtype': 'bfloat16', 'model.kwargs.norm': 'batch',
                        'loss.cosine_reg': 0.1})
  train_ds, _ = train.load_data(config)
  run = train.setup(config, train_ds, one_device_mesh())
  # Parameters, batch statistics and optimiser state stay float32.
  leaves = jax.tree.leaves({k: run.state[k] for k in ('params', 'opt_state')})
  assert {str(x.dtype) for x in leaves if jnp.issubdtype(x.dtype, jnp.floating)} == {'float32'}
  # The model computes in bfloat16 (train and eval mode)...
  from nc_jax.train import model as model_lib
  m = model_lib.build(config, train_ds.images.shape[1:], train_ds.num_classes)
  logits, feats = m(jnp.ones((2,) + train_ds.images.shape[1:]))
  assert logits.dtype == jnp.bfloat16 and feats['penultimate'].dtype == jnp.bfloat16
  # ... and the loss it trains on is float32: its value matches float32
  # arithmetic on the bfloat16 logits, not bfloat16 arithmetic.
  x = jnp.asarray(train_ds.images[:64], jnp.float32) / 255.0
  y = jnp.asarray(train_ds.labels[:64])
  value, out = losses.objective(m, x, y, loss='ce', kwargs={}, cosine_reg=None,
                                num_classes=train_ds.num_classes)
  assert value.dtype == jnp.float32 and out.dtype == jnp.float32
  o = np.asarray(out, np.float64)
  o = o - o.max(1, keepdims=True)
  want = float(np.mean(np.log(np.exp(o).sum(1)) - o[np.arange(64), np.asarray(y)]))
  assert float(value) == pytest.approx(want, rel=1e-6)
  # It trains: the steps move float32 parameters and the loss stays finite.
  running = {k: jnp.zeros(()) for k in ('loss', 'correct', 'count', 'nonfinite', 'l2_grads',
                                        'l2_params')}
  state = run.state
  for i in range(4):
    idx = np.arange(64 * i, 64 * (i + 1))
    state, running = run.train_step(state, running, train_ds.images[idx],
                                    train_ds.labels[idx], i)
  r = jax.device_get(running)
  assert r['nonfinite'] == 0 and np.isfinite(r['loss'])
  assert {str(x.dtype) for x in jax.tree.leaves(state['params'])} == {'float32'}


def test_collapse_statistics_of_bfloat16_features_are_float32_exact(tmp_path):
  """The tracked report of a bfloat16 run equals float64 metrics of the same
  (bfloat16-computed) features to float32 precision: the statistics are
  accumulated in float32, not in the compute dtype."""
  config = tiny_config({'model.compute_dtype': 'bfloat16'}, num_epochs=2)
  train.train_and_evaluate(config, str(tmp_path))
  from nc_jax.rundir import RunDir
  run = RunDir(str(tmp_path))
  train_ds, _ = train.load_data(config)
  h = run.features({'train': train_ds}, 2)['train']['penultimate']  # float32 casts of bf16
  assert np.array_equal(h, h.astype(jnp.bfloat16).astype(np.float32))  # bf16 values
  logged = run.last('train')['penultimate']
  with jax.enable_x64(True):
    m = metrics.class_moments(jnp.asarray(h, jnp.float64), jnp.asarray(train_ds.labels),
                              num_classes=train_ds.num_classes)
    want = dict(nc1=float(metrics.nc1(m)), squared_distance=float(metrics.squared_distance(m)),
                nc2_etf=float(metrics.nc2_etf(m)))
  for k, v in want.items():
    assert logged[k] == pytest.approx(v, rel=2e-4), k
  with pytest.raises(ValueError, match='compute_dtype'):
    train.check_config(tiny_config({'model.compute_dtype': 'float16'}))
  with pytest.raises(ValueError, match='model.compute_dtype instead'):
    train.check_config(tiny_config({'model.kwargs.dtype': 'bfloat16'}))
