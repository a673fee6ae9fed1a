"""Streaming input: lazy image folders and the grain loader give the trainer's exact batches."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from nc_jax import data
from nc_jax import train
from nc_jax.data import formats
from nc_jax.data import lazy
from nc_jax.data.testing import write_image_folder
from nc_jax.train import grain_input
from nc_jax.train import input as input_lib

pytest.importorskip('grain')
ROOT = os.path.join(os.path.dirname(__file__), '..')


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
  root = tmp_path_factory.mktemp('folder')
  rng = np.random.default_rng(0)
  for split, n in (('train', 40), ('test', 12)):
    write_image_folder(root, split, {c: [(rng.random((8, 8, 3)) * 255).astype(np.uint8)
                                         + 20 * k for _ in range(n)]
                                     for k, c in enumerate(('ant', 'bee', 'cat'))})
  return root


def test_lazy_folder_decodes_only_what_is_indexed(folder, monkeypatch):
  eager = data.load(f'image_folder:{folder}', 'train', cache=False)
  ds = data.load(f'image_folder:{folder}', 'train', lazy=True)
  assert lazy.is_lazy(ds.images) and ds.images.shape == eager.images.shape
  calls = []
  decode = ds.images.decode
  ds.images.decode = lambda key: calls.append(key) or decode(key)
  sub = ds.subset(np.array([5, 70, 100]))  # label maps, subsets: no decoding
  assert lazy.is_lazy(sub.images) and not calls
  np.testing.assert_array_equal(sub.images[np.arange(3)], eager.images[[5, 70, 100]])
  np.testing.assert_array_equal(sub.labels, eager.labels[[5, 70, 100]])
  np.testing.assert_allclose(data.dataset_stats(ds), data.dataset_stats(eager), rtol=1e-5)
  with pytest.raises(ValueError, match='needs images in memory'):
    data.corrupt(ds, 'gaussian_noise', 1, 0)


def test_grain_batches_are_the_trainer_batches_in_process():
  ds = data.load('digits', 'train')
  got = list(grain_input.train_batches(ds, batch_size=128, seed=3, start_epoch=1,
                                       num_epochs=3, worker_count=0))
  want = [idx for e in (1, 2) for idx in input_lib.train_indices(len(ds), 128, 3, e)]
  assert len(got) == len(want) == 2 * (len(ds) // 128)
  for (images, labels), idx in zip(got, want):
    np.testing.assert_array_equal(images, ds.images[idx])
    np.testing.assert_array_equal(labels, ds.labels[idx])


def test_grain_worker_processes_keep_the_order(folder, tmp_path):
  """Two decoding processes: the same batches, in the same order (lazy folder)."""
  script = tmp_path / 'run.py'
  script.write_text(f'''
import numpy as np
from nc_jax import data
from nc_jax.train import grain_input, input as input_lib
if __name__ == "__main__":
  ds = data.load("image_folder:{folder}", "train", lazy=True)
  got = list(grain_input.train_batches(ds, batch_size=16, seed=1, start_epoch=0,
                                       num_epochs=2, worker_count=2))
  want = [i for e in (0, 1) for i in input_lib.train_indices(len(ds), 16, 1, e)]
  ok = len(got) == len(want) and all(
      (g[0] == ds.images[w]).all() and (g[1] == ds.labels[w]).all() for g, w in zip(got, want))
  print("RESULT", len(got), ok)
''')
  out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                       cwd=ROOT, timeout=300)
  line = [l for l in out.stdout.splitlines() if l.startswith('RESULT')]
  assert line, out.stderr[-3000:]
  assert line[0].split()[1:] == ['14', 'True']


def test_two_processes_read_disjoint_shards_of_every_batch():
  ds = data.load('digits', 'train')
  a = grain_input.BatchSource(ds, 64, seed=0, num_epochs=2, process_index=0, process_count=2)
  b = grain_input.BatchSource(ds, 64, seed=0, num_epochs=2, process_index=1, process_count=2)
  for key in range(2 * a.steps):
    ra, rb = a.rows(key), b.rows(key)
    assert len(ra) == len(rb) == 32 and not set(ra) & set(rb)
    epoch, step = divmod(key, a.steps)
    glob = list(data.epoch_index_batches(len(ds), 64, seed=0, epoch=epoch))[step]
    np.testing.assert_array_equal(np.concatenate([ra, rb]), glob)


def _records(workdir):
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    rows = [json.loads(line) for line in f]
  return [{k: v for k, v in r.items() if not k.endswith('_time_s')} for r in rows]


def _config(overrides=None, **top):
  c = train.default_config()
  c.data.name = 'digits'
  c.model.kwargs = dict(width=16, depth=2)
  c.batch_size, c.evals.batch_size, c.num_epochs = 64, 400, 3
  c.log.progress_bar, c.log.plots = False, False
  c.update(top)
  return train.config.override(c, overrides or {})


def test_grain_training_equals_in_memory_and_resumes_exactly(tmp_path):
  memory = str(tmp_path / 'memory')
  train.train_and_evaluate(_config(), memory)
  killed = str(tmp_path / 'grain')
  c = _config({'data.loader.name': 'grain'})
  c.stop_after_epochs = 2
  assert train.train_and_evaluate(c, killed) == {}
  c.stop_after_epochs = 0
  train.train_and_evaluate(c, killed)
  assert _records(killed) == _records(memory)


def test_grain_trains_a_lazy_image_folder(folder, tmp_path):
  c = _config({'data.name': f'image_folder:{folder}', 'data.loader.name': 'grain',
               'evals.batch_size': 40, 'augment.crop_padding': 1,
               'augment.flip': True}, batch_size=16, num_epochs=2)
  summary = train.train_and_evaluate(c, str(tmp_path))
  assert summary['train_accuracy'] > 1 / 3 and summary['layers']['test']['penultimate'][
      'num_examples'] == 36


_TWO_HOSTS = """
import sys
import jax
jax.config.update('jax_cpu_collectives_implementation', 'gloo')
jax.distributed.initialize(coordinator_address=sys.argv[1], num_processes=2,
                           process_id=int(sys.argv[2]))
sys.path.insert(0, sys.argv[4])
import test_train
from nc_jax import train
config = test_train.sharding_config()
config.data.loader.name = 'grain'  # each process streams only its half of every batch
train.train_and_evaluate(config, sys.argv[3])
"""


def test_two_hosts_streaming_with_grain_equal_one_device(tmp_path):
  """jax.distributed, 2 processes x 2 devices, grain input: the one-device run."""
  import test_train
  one = tmp_path / 'one'
  train.train_and_evaluate(test_train.sharding_config(), str(one),
                           mesh=test_train.one_device_mesh())
  two = tmp_path / 'two'
  test_train.run_two_hosts(_TWO_HOSTS, two)
  test_train.assert_records_close(test_train.read_metrics(one), test_train.read_metrics(two),
                                  rtol=2e-4, atol=1e-5)


def test_lazy_tfds_source_equals_the_eager_load(tmp_path):
  tfds = pytest.importorskip('tensorflow_datasets')
  with tfds.testing.mock_data(num_examples=40):
    eager = data.load('tfds:mnist', 'train')
    ds = data.load('tfds:mnist', 'train', lazy=True)
    assert lazy.is_lazy(ds.images) and ds.images.shape == eager.images.shape
    np.testing.assert_array_equal(ds.labels, eager.labels)
    np.testing.assert_array_equal(ds.images[np.arange(40)], eager.images)
    c = _config({'data.name': 'tfds:mnist', 'data.loader.name': 'grain',
                 'evals.batch_size': 40}, batch_size=8, num_epochs=1)
    summary = train.train_and_evaluate(c, str(tmp_path))
  assert summary['step'] == 5


# ---------------------------------------------------------------------------
# A damaged file in an image folder.
# ---------------------------------------------------------------------------


@pytest.fixture
def damaged(tmp_path):
  """A folder whose train/bee/0002.jpg is a JPEG cut short (a partial copy)."""
  from PIL import Image
  root = tmp_path / 'damaged'
  rng = np.random.default_rng(1)
  for split in ('train', 'test'):
    for k, c in enumerate(('ant', 'bee')):
      d = root / split / c
      d.mkdir(parents=True)
      for j in range(6):
        img = (rng.random((16, 16, 3)) * 255).astype(np.uint8) // 2 + 60 * k
        Image.fromarray(img).save(d / f'{j:04d}.jpg', quality=95)
  bad = root / 'train' / 'bee' / '0002.jpg'
  blob = bad.read_bytes()
  bad.write_bytes(blob[:len(blob) // 2])  # What an interrupted copy leaves.
  return root, bad


def test_a_damaged_image_is_named_with_its_split(damaged):
  root, bad = damaged
  with pytest.raises(data.DamagedImageError) as err:
    data.load(f'image_folder:{root}', 'train', cache=False)
  msg = str(err.value)
  assert str(bad) in msg and "split 'train'" in msg and 'skip_damaged=True' in msg
  # Lazily, the error comes when the batch holding it is decoded, naming it too.
  ds = data.load(f'image_folder:{root}', 'train', lazy=True)
  assert len(ds) == 12
  ds.images[np.array([0, 1])]  # Readable rows decode.
  with pytest.raises(data.DamagedImageError, match='0002.jpg'):
    ds.images[np.arange(12)]


@pytest.mark.parametrize('lazy_load', [False, True])
def test_skip_damaged_leaves_the_file_out_and_keeps_the_rest_aligned(damaged, lazy_load):
  root, bad = damaged
  ds = data.load(f'image_folder:{root}', 'train', lazy=lazy_load, skip_damaged=True,
                 cache=False)
  assert ds.skipped == (str(bad),) and len(ds) == 11
  # Every kept row is its own file, with its own label.
  from PIL import Image
  files = sorted(p for p in (root / 'train').rglob('*.jpg') if p != bad)
  want = np.stack([np.asarray(Image.open(p).convert('RGB')) for p in files])
  np.testing.assert_array_equal(np.asarray(ds.images[np.arange(11)]), want)
  np.testing.assert_array_equal(ds.labels, [0] * 6 + [1] * 5)
  assert data.load(f'image_folder:{root}', 'test', skip_damaged=True, cache=False).skipped == ()
  # Subsets and relabelling keep the record of what was left out.
  assert data.balanced_subset(ds, 3, 0).skipped == (str(bad),)


def test_skip_damaged_scan_is_cached_with_the_arrays(damaged, tmp_path, monkeypatch):
  root, bad = damaged
  monkeypatch.setenv('NC_JAX_CACHE', str(tmp_path / 'cache'))
  first = data.load(f'image_folder:{root}', 'train', skip_damaged=True)
  first_lazy = data.load(f'image_folder:{root}', 'train', skip_damaged=True, lazy=True)
  calls = []
  monkeypatch.setattr(formats, 'damaged_files', lambda *a, **k: calls.append(1))
  monkeypatch.setattr(formats, 'decode_readable', lambda *a, **k: calls.append(1))
  again = data.load(f'image_folder:{root}', 'train', skip_damaged=True)
  again_lazy = data.load(f'image_folder:{root}', 'train', skip_damaged=True, lazy=True)
  assert not calls and again.skipped == first.skipped == (str(bad),)
  assert again_lazy.skipped == first_lazy.skipped == (str(bad),)
  np.testing.assert_array_equal(again.images, first.images)


def test_a_run_with_skip_damaged_counts_the_images_left_out(damaged, tmp_path):
  root, _ = damaged
  c = _config({'data.name': f'image_folder:{root}', 'data.loader.name': 'grain',
               'data.options.skip_damaged': True, 'evals.batch_size': 8},
              batch_size=8, num_epochs=1)
  summary = train.train_and_evaluate(c, str(tmp_path / 'run'))
  assert summary['skipped_images'] == {'test': 0, 'train': 1}
  assert summary['layers']['train']['penultimate']['num_examples'] == 11
