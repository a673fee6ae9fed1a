"""Metric writers: TensorBoard event files read back by an independent reader."""

import glob
import os
import struct

import numpy as np
import pytest

from nc_jax import writers

import tensorboardX  # noqa: F401  (a dependency: requirements.txt)
from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top


def _crc32c(data: bytes) -> int:
  """CRC-32C (Castagnoli), bit by bit: the checksum of TFRecord framing."""
  crc = 0xFFFFFFFF
  for b in data:
    crc ^= b
    for _ in range(8):
      crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
  return crc ^ 0xFFFFFFFF


def _masked(crc: int) -> int:
  return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def read_scalars(logdir):
  """{tag: [(step, value)]} of every event file in ``logdir`` (in the order written),
  checksums verified, with TensorBoard's purge applied: a SessionLog START at step s
  drops the events read before it at steps >= s."""
  out = {}
  paths = glob.glob(os.path.join(logdir, 'events.out.tfevents.*'))
  for path in sorted(paths, key=os.path.getmtime):
    data = open(path, 'rb').read()
    i = 0
    while i < len(data):
      header = data[i:i + 8]
      (n,) = struct.unpack('<Q', header)
      assert struct.unpack('<I', data[i + 8:i + 12])[0] == _masked(_crc32c(header))
      body = data[i + 12:i + 12 + n]
      assert struct.unpack('<I', data[i + 12 + n:i + 16 + n])[0] == _masked(_crc32c(body))
      i += 16 + n
      ev = event_pb2.Event()
      ev.ParseFromString(body)
      if ev.HasField('session_log') and ev.session_log.status == ev.session_log.START:
        out = {t: [(s, v) for s, v in pts if s < ev.step] for t, pts in out.items()}
      for v in ev.summary.value:
        out.setdefault(v.tag, []).append((ev.step, v.simple_value))
  return out


def test_scalars_tags_of_records():
  step, vals = writers.scalars(dict(epoch=3, step=120, split='train', layer='penultimate',
                                    nc1=0.5, accuracy=1, nonfinite=True, name='x',
                                    spectrum=[1.0, 2.0]))
  assert step == 120 and vals == {'train/penultimate/nc1': 0.5,
                                  'train/penultimate/accuracy': 1.0}
  _, vals = writers.scalars(dict(epoch=3, step=120, split='test', layer='layer1',
                                 labels='coarse', nc1=float('inf')))
  assert list(vals) == ['test/coarse/layer1/nc1'] and np.isinf(vals['test/coarse/layer1/nc1'])
  _, vals = writers.scalars(dict(epoch=3, step=120, running_loss=0.25,
                                 learning_rate=np.float32(0.1)))
  assert vals == {'progress/running_loss': 0.25, 'progress/learning_rate': pytest.approx(0.1)}
  with pytest.raises(ValueError, match='step'):
    writers.scalars(dict(epoch=1, nc1=0.3))


def test_tensorboard_events_read_back_and_resume_purges(tmp_path):
  ws = writers.create(('tensorboard',), str(tmp_path))
  for step in (0, 10, 20):
    ws.write(dict(epoch=step // 10, step=step, split='train', layer='penultimate',
                  nc1=1.0 / (1 + step)))
    ws.write(dict(epoch=step // 10, step=step, running_loss=2.0 - step / 20))
  ws.close()
  got = read_scalars(tmp_path / 'tensorboard')
  assert got['train/penultimate/nc1'] == [(0, 1.0), (10, pytest.approx(1 / 11)),
                                          (20, pytest.approx(1 / 21))]
  assert [s for s, _ in got['progress/running_loss']] == [0, 10, 20]
  # A run resumed from its step-10 checkpoint logs step 20 again: TensorBoard drops the
  # old events after step 10, so the curve has one point per step.
  ws = writers.create(('tensorboard',), str(tmp_path), resume_step=10)
  for step in (20,):
    ws.write(dict(epoch=step // 10, step=step, split='train', layer='penultimate', nc1=5.0))
  ws.close()
  assert len(glob.glob(str(tmp_path / 'tensorboard' / 'events.*'))) == 2
  got = read_scalars(tmp_path / 'tensorboard')
  assert got['train/penultimate/nc1'] == [(0, 1.0), (10, pytest.approx(1 / 11)), (20, 5.0)]
  assert [s for s, _ in got['progress/running_loss']] == [0, 10]


def test_unknown_writer_is_named():
  with pytest.raises(ValueError, match=r"unknown writers \['tensorbord'\]"):
    writers.create(('tensorbord',), '/tmp/x')


def test_a_run_writes_tensorboard_curves_equal_to_its_records_and_a_profile(tmp_path):
  """A trainer run with log.writers=('tensorboard',): every number of metrics.jsonl is a
  TensorBoard scalar at its step, also across a kill and resume; log.profile_steps
  writes two traces (training steps, then an evaluation)."""
  from nc_jax import train
  from nc_jax.workdir import read_jsonl
  from test_train import one_device_mesh, tiny_config
  config = tiny_config({'log.writers': ('tensorboard',), 'log.profile_steps': 2},
                       num_epochs=3, stop_after_epochs=1)
  mesh = one_device_mesh()
  assert train.train_and_evaluate(config, str(tmp_path), mesh=mesh) == {}  # Killed.
  config.stop_after_epochs = 0
  summary = train.train_and_evaluate(config, str(tmp_path), mesh=mesh)
  assert summary['epoch'] == 3
  got = read_scalars(tmp_path / 'tensorboard')
  records = read_jsonl(tmp_path / 'metrics.jsonl')
  want = {}
  for r in records:
    step, vals = writers.scalars(r)
    for tag, v in vals.items():
      want.setdefault(tag, []).append((step, pytest.approx(v, rel=1e-6, nan_ok=True)))
  assert set(got) == set(want) and got == want
  nc1 = got['train/penultimate/nc1']
  assert [s for s, _ in nc1] == [0, 4, 8, 12]  # 4 steps an epoch; no step twice.
  assert 'progress/learning_rate' in got and 'test/penultimate/accuracy' in got
  traces = glob.glob(str(tmp_path / 'profile' / 'plugins' / 'profile' / '*' / '*.xplane.pb'))
  assert len(traces) >= 2, traces  # One per process run: steps, then an evaluation.


def test_config_names_a_bad_writer_or_profile_setting():
  from nc_jax import train
  from test_train import tiny_config
  with pytest.raises(ValueError, match=r"config.log.writers: unknown writers \['tb'\]"):
    train.config.check_config(tiny_config({'log.writers': ('tb',)}))
  with pytest.raises(ValueError, match='log.profile_steps'):
    train.config.check_config(tiny_config({'log.profile_steps': -1}))


def test_wandb_writer_offline(tmp_path, monkeypatch):
  """The same scalars to a W&B run (offline: no network); skipped without wandb."""
  pytest.importorskip('wandb')
  monkeypatch.setenv('WANDB_MODE', 'offline')
  monkeypatch.setenv('WANDB_SILENT', 'true')
  logged = []
  ws = writers.create(('wandb',), str(tmp_path), config={'seed': 0})
  w = ws.writers[0]
  real = w._run.log
  monkeypatch.setattr(w._run, 'log', lambda d, step: (logged.append((step, d)), real(d, step=step)))
  ws.write(dict(epoch=0, step=0, split='train', layer='penultimate', nc1=1.5, vci=float('nan')))
  ws.write(dict(epoch=1, step=4, running_loss=0.5))
  ws.close()
  assert logged == [(0, {'train/penultimate/nc1': 1.5}), (4, {'progress/running_loss': 0.5})]
  assert glob.glob(str(tmp_path / 'wandb' / 'offline-run-*'))
