"""Fine-tuning, initialisation from checkpoints and resume safety, on the one trainer.

A tiny MLP with BatchNorm is pretrained for one epoch on scikit-learn digits by
the real trainer; fine-tuning runs are trainer runs with ``init.workdir``.
Frozen parameters and frozen BatchNorm statistics must come out bit-identical,
trained ones must move; resume must be exact, refuse other configs and
survive a damaged checkpoint.
"""

import json
import os
import shutil

import jax
import numpy as np
import pytest
from flax import nnx

from nc_jax import models
from nc_jax import train
from nc_jax.train import checkpoints
from nc_jax.train import finetune


def _config(overrides=None, **top):
  """A 3 x 16 MLP (BatchNorm) on digits, 1 epoch; ``overrides`` dotted keys."""
  c = train.default_config()
  c.data.name = 'digits'
  c.model.name = 'mlp'
  c.model.kwargs = dict(width=16, depth=3, norm='batch')
  c.batch_size = 64
  c.evals.batch_size = 400
  c.num_epochs = 1
  c.optimizer.learning_rate = 0.05
  c.evals.track_collapse = False
  c.log.progress_bar = False
  c.log.plots = False
  c.checkpoint.keep = 5
  c.update(top)
  return train.config.override(c, overrides or {})


def _flat(model):
  """{path: array} of every variable (params and BatchNorm statistics)."""
  out = {}
  for kind in (nnx.Param, nnx.BatchStat):
    for p, v in jax.tree_util.tree_leaves_with_path(nnx.state(model, kind)):
      out[jax.tree_util.keystr(p)] = np.asarray(v)
  return out


def _records(workdir):
  """metrics.jsonl without the timing fields (they differ between runs)."""
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    rows = [json.loads(line) for line in f]
  return [{k: v for k, v in r.items() if not k.endswith('_time_s')} for r in rows]


@pytest.fixture(scope='module')
def pretrained(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp('pretrain'))
  train.train_and_evaluate(_config(), workdir)
  return workdir


def _ft(pretrained, variant, block='', overrides=None, **top):
  return _config({'init.workdir': pretrained, 'init.finetune': variant,
                  'init.finetune_block': block, **(overrides or {})}, seed=1,
                 **top)


@pytest.mark.parametrize('variant,block', [('layer', 'layer2'), ('scl', 'layer1'),
                                           ('linear_probe', '')])
def test_variant_trains_only_its_parameters(pretrained, tmp_path, variant, block):
  before = _flat(train.restore_model(pretrained))
  summary = train.train_and_evaluate(_ft(pretrained, variant, block), str(tmp_path))
  tuned = train.restore_model(str(tmp_path))
  after = _flat(tuned.base if variant == 'scl' else tuned)
  # The block is hidden layer l-1 of the MLP ('layer2' -> layers[1]).
  tuned_prefix = {'layer': "['layers'][1]", 'scl': "['layers'][0]"}.get(variant)
  for key, old in before.items():
    if key.startswith("['head']"):
      continue  # Replaced by a fresh downstream head.
    if tuned_prefix and key.startswith(tuned_prefix):
      assert not np.array_equal(after[key], old), f'{key} did not train'
    else:
      assert np.array_equal(after[key], old), f'{key} changed but is frozen'
  assert summary['test_accuracy'] > 0.3
  # Equal widths (16 -> 16): SCL's skip is the identity (paper 001, ViT case).
  trained = {'layer': 16 * 16 + 16 + 2 * 16 + 16 * 10 + 10,
             'scl': 64 * 16 + 16 + 2 * 16 + 16 * 10 + 10,
             'linear_probe': 16 * 10 + 10}[variant]
  assert summary['num_params'] == trained
  if variant == 'scl':
    assert tuned.identity and tuned.skip is None


def test_scl_with_different_widths_learns_a_linear_skip():
  resnet = models.create_model('resnet18', num_classes=10, rngs=nnx.Rngs(0), width=4,
                               input_shape=(8, 8, 3))
  dims = finetune.feature_dims(resnet, (8, 8, 3))
  scl = finetune.SCLModel(resnet, 'layer2.0', block_dim=dims['layer2.0'],
                          penultimate_dim=dims['penultimate'], num_classes=10,
                          rngs=nnx.Rngs(1))
  assert dims['layer2.0'] != dims['penultimate']
  assert not scl.identity
  assert scl.skip.kernel.shape == (dims['layer2.0'], dims['penultimate'])
  paths = finetune.trainable_paths(scl, 'scl', 'layer2.0')
  assert ('skip',) in paths and ('skip_norm',) in paths and ('head',) in paths


def test_init_from_restores_parameters_only_and_gives_the_same_features(pretrained):
  ds = train.load_data(_config())[1]
  info = finetune.read_model_info(pretrained)
  normalize = finetune.normalizer(info['mean'], info['std'])
  restored = train.restore_model(pretrained)
  # The trainer's own restore of the full state (optimiser included).
  mngr = checkpoints.manager(pretrained, create=False)
  state = mngr.restore(1)
  mngr.close()
  graphdef = nnx.split(restored, nnx.Param, ...)[0]
  reference = nnx.merge(graphdef, state['params'], state['rest'])
  reference.eval()
  a = train.extract_features(restored, ds, normalize=normalize, layers=('penultimate', 'logits'))
  b = train.extract_features(reference, ds, normalize=normalize, layers=('penultimate', 'logits'))
  for k in a:
    np.testing.assert_array_equal(a[k], b[k])
  # A fine-tuning model built from it starts from those features (full variant,
  # same classes, old head kept).
  model = finetune.build(_ft(pretrained, 'full', overrides={'init.new_head': False}), (8, 8, 1), 10)
  c = train.extract_features(model, ds, normalize=normalize, layers=('logits',))
  np.testing.assert_array_equal(c['logits'], a['logits'])


def test_finetune_kill_and_resume_equals_uninterrupted(pretrained, tmp_path):
  evals = {'evals.track_collapse': True, 'evals.every': 2,
           'evals.train_examples': 300, 'evals.test_examples': 200}
  config = _ft(pretrained, 'layer', 'layer2',
               {**evals, 'checkpoint.every': 0}, num_epochs=4)
  full = str(tmp_path / 'full')
  train.train_and_evaluate(config, full)
  assert checkpoints.epochs(full) == [4]  # checkpoint.every=0: the last one only.
  killed = str(tmp_path / 'killed')
  config_ckpt = _ft(pretrained, 'layer', 'layer2',
                    {**evals, 'checkpoint.every': 1}, num_epochs=4)
  config_ckpt.stop_after_epochs = 3
  assert train.train_and_evaluate(config_ckpt, killed) == {}
  config_ckpt.stop_after_epochs = 0
  train.train_and_evaluate(config_ckpt, killed)
  assert _records(killed) == _records(full)
  evals = [r for r in _records(full) if 'split' in r]
  assert {r['num_examples'] for r in evals if r['split'] == 'train'} == {300}
  assert {r['num_examples'] for r in evals if r['split'] == 'test'} == {200}


def test_resume_refuses_another_config_and_names_the_key(tmp_path):
  workdir = str(tmp_path)
  config = _config(num_epochs=2)
  config.stop_after_epochs = 1
  train.train_and_evaluate(config, workdir)
  other = _config({'optimizer.learning_rate': 0.3}, num_epochs=2)
  with pytest.raises(ValueError, match=r'optimizer\.learning_rate: 0\.05 -> 0\.3'):
    train.train_and_evaluate(other, workdir)
  # num_epochs is documented as safe to change; 'restart' starts afresh.
  train.train_and_evaluate(_config(num_epochs=3), workdir)
  other.on_config_change = 'restart'
  summary = train.train_and_evaluate(other, workdir)
  assert summary['epoch'] == 2
  with open(os.path.join(workdir, 'config.json')) as f:
    assert json.load(f)['optimizer']['learning_rate'] == 0.3


def test_damaged_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, capsys):
  config = _config({'evals.track_collapse': True}, num_epochs=3)
  config.stop_after_epochs = 2
  damaged, direct = str(tmp_path / 'damaged'), str(tmp_path / 'direct')
  train.train_and_evaluate(config, damaged)
  assert checkpoints.epochs(damaged) == [1, 2]
  shutil.copytree(damaged, direct)
  # `direct` is resumed from epoch 1 directly: its epoch-2 checkpoint removed.
  shutil.rmtree(os.path.join(direct, 'checkpoints', '2'))
  # In `damaged`, epoch 2's array data is corrupted.
  ckpt = os.path.join(damaged, 'checkpoints', '2')
  for root, _, files in os.walk(ckpt):
    for name in files:
      if 'manifest' in name or name.endswith('.ocdbt') or 'd/' in root + '/':
        with open(os.path.join(root, name), 'wb') as f:
          f.write(b'garbage')
  config.stop_after_epochs = 0
  train.train_and_evaluate(config, damaged)
  out = capsys.readouterr().out
  assert 'cannot be restored' in out and 'checkpoints/2' in out
  train.train_and_evaluate(config, direct)
  assert _records(damaged) == _records(direct)


def test_no_restorable_checkpoint_is_a_one_line_error(tmp_path):
  config = _config(num_epochs=2)
  config.stop_after_epochs = 1
  train.train_and_evaluate(config, str(tmp_path))
  for root, _, files in os.walk(tmp_path / 'checkpoints'):
    for name in files:
      with open(os.path.join(root, name), 'wb') as f:
        f.write(b'garbage')
  config.stop_after_epochs = 0
  with pytest.raises(checkpoints.CheckpointError, match='no checkpoint restores') as err:
    train.train_and_evaluate(config, str(tmp_path))
  assert err.value.__cause__ is None and '\n' not in str(err.value)


def test_label_noise_touches_the_training_split_only():
  clean_train, clean_test = train.load_data(_config())
  train_ds, test_ds = train.load_data(_config({'data.label_noise': 0.5}))
  np.testing.assert_array_equal(test_ds.labels, clean_test.labels)
  assert test_ds.clean_labels is None
  np.testing.assert_array_equal(train_ds.clean_labels, clean_train.labels)
  assert 0.45 < np.mean(train_ds.labels != clean_train.labels) < 0.55


def test_noisy_run_measures_test_accuracy_against_clean_test_labels(tmp_path):
  summary = train.train_and_evaluate(
      _config({'data.label_noise': 0.4, 'evals.label_sets': ('clean',),
               'evals.track_collapse': True}, num_epochs=3), str(tmp_path))
  test_ds = train.load_data(_config())[1]
  model = train.restore_model(str(tmp_path))
  info = finetune.read_model_info(str(tmp_path))
  logits = train.extract_features(model, test_ds, layers=('logits',),
                                  normalize=finetune.normalizer(info['mean'], info['std']))
  z = np.sort(logits['logits'], axis=-1)
  accuracy = float(np.mean(logits['logits'].argmax(-1) == test_ds.labels))
  # Two programs (the trainer's evaluation, extract_features) may round the
  # logits differently: only a near-tie of the top two can flip a prediction.
  near_ties = np.sum(z[:, -1] - z[:, -2] < 1e-5 * np.abs(z).max())
  assert summary['test_accuracy'] == pytest.approx(accuracy, abs=near_ties / len(z) + 1e-9)
  clean = [r for r in _records(str(tmp_path)) if r.get('labels') == 'clean']
  assert {r['split'] for r in clean} == {'train', 'test'} and 'nc1' in clean[0]


def test_label_map_and_eval_sets(tmp_path):
  config = _config({'data.label_map': 'mod:5', 'evals.label_sets': ('fine',),
                    'evals.track_collapse': True})
  config.evals.sets.noisy = dict(split='test', corruption='gaussian_noise', severity=3,
                                 examples=100)
  train.train_and_evaluate(config, str(tmp_path))
  recs = [r for r in _records(str(tmp_path)) if 'split' in r]
  assert {r['split'] for r in recs} == {'train', 'test', 'noisy'}
  fine = [r for r in recs if r.get('labels') == 'fine']
  assert fine and all('nc1' in r for r in fine)
  with open(tmp_path / 'model.json') as f:
    assert json.load(f)['num_classes'] == 5


def test_eval_sets_options_and_like_train_read_the_evaluated_images():
  """``like_train`` is the subset 'train' evaluates (before the corruption);
  ``options`` go to data.load over data.options."""
  config = _config({'data.corruption.name': 'gaussian_noise', 'data.corruption.severity': 5,
                    'evals.train_examples': 200})
  config.evals.sets.clean = dict(like_train=True)
  config.evals.sets.framed = dict(dataset='digits', split='test', examples=50,
                                  options=dict(image_size=(20, 20), padding=4))
  train.check_config(config)
  tr, te = train.load_data(config)
  sets = train.eval_sets(config, tr, te)
  assert len(sets['train']) == len(sets['clean']) == 200
  np.testing.assert_array_equal(sets['clean'].labels, sets['train'].labels)
  clean_all = train.load_data(config, corrupt=False)[0]
  # The same images as 'train', clean: each one is its clean training image.
  idx = [np.flatnonzero((clean_all.images == x).all(axis=(1, 2, 3)))
         for x in sets['clean'].images[:20]]
  assert all(len(i) >= 1 for i in idx)
  assert not np.array_equal(sets['clean'].images, sets['train'].images)  # train is corrupted
  noise = sets['train'].images.astype(float) - sets['clean'].images
  assert 5 < np.abs(noise).mean() < 40  # Gaussian noise of std 0.1 on [0, 1], clipped
  assert sets['framed'].images.shape == (50, 28, 28, 1)


def test_config_errors_name_the_problem():
  with pytest.raises(ValueError, match='needs config.init.workdir'):
    train.check_config(_config({'init.finetune': 'layer',
                                'init.finetune_block': 'layer1'}))
  with pytest.raises(ValueError, match='evals.label_sets'):
    train.check_config(_config({'evals.label_sets': ('dirty',)}))
  with pytest.raises(ValueError, match='label_map'):
    train.check_config(_config({'data.label_map': 'mod'}))
  with pytest.raises(ValueError, match=r"evals\.sets\.x: unknown keys \['splt'\]"):
    train.check_config(_config({'evals.sets': {'x': {'splt': 'test'}}}))


def test_model_blocks():
  resnet = nnx.eval_shape(lambda: models.create_model(  # abstract: no init cost
      'resnet18', num_classes=10, rngs=nnx.Rngs(0), width=4, input_shape=(8, 8, 3)))
  assert resnet.block('layer3.0') is resnet.blocks[4]
  assert resnet.block('stem') is resnet.stem
  mlp = models.create_model('mlp', num_classes=3, rngs=nnx.Rngs(0), input_shape=(4, 5),
                            width=8, depth=2)
  assert mlp(np.zeros((2, 4, 5), np.float32))[0].shape == (2, 3)  # in_features = 20
  assert mlp.block('penultimate') is mlp.layers[1]
  with pytest.raises(ValueError, match='not a layer'):
    mlp.block('layer9')


# ---------------------------------------------------------------------------
# Paper 001's model fixes: a classifier-side head, SupCon views, FGSM / PGD.
# ---------------------------------------------------------------------------


def test_head_layers_train_and_transfer_features_are_pre_head(tmp_path):
  config = _config({'model.kwargs': dict(width=16, depth=2, norm='batch', head_depth=2),
                    'evals.track_collapse': True, 'checkpoint.init': True},
                   num_epochs=2)
  train.train_and_evaluate(config, str(tmp_path))
  start = _flat(train.restore_model(str(tmp_path), 0))
  end = _flat(train.restore_model(str(tmp_path)))
  for key in start:
    if key.startswith("['head_layers']"):
      assert not np.array_equal(start[key], end[key]), f'{key} got no gradient'
  model = train.restore_model(str(tmp_path))
  assert models.feature_names(model) == ('layer1', 'pre_head', 'head1', 'penultimate')
  x = np.random.default_rng(0).random((4, 8, 8, 1)).astype(np.float32)
  _, feats = model(x)
  # pre_head is the encoder output; the classifier reads the last head layer.
  np.testing.assert_allclose(feats['pre_head'], model.encode(x)['penultimate'])
  w, b = models.classifier_params(model)
  h, w, b = (np.asarray(a, np.float64) for a in (feats['penultimate'], w, b))
  # float32 rounding of a length-p dot product plus bias: (p + 1) eps (|h| |W|^T + |b|).
  bound = (h.shape[1] + 1) * np.finfo(np.float32).eps * (np.abs(h) @ np.abs(w).T + np.abs(b))
  assert np.all(np.abs(np.asarray(model(x)[0], np.float64) - (h @ w.T + b)) <= bound)


def test_supcon_needs_augmentation_and_its_two_views_differ():
  with pytest.raises(ValueError, match='two augmented views'):
    train.check_config(_config({'loss': train.loss('supcon'),
                                'model.kwargs.projection': 'mlp'}))
  from nc_jax.train import input as input_lib
  import jax.numpy as jnp
  x = jnp.full((3, 4, 4, 1), 0.5)
  k1, k2 = jax.random.split(jax.random.key(0))
  a = input_lib.augment(k1, x, crop_padding=0, flip=False, noise=0.1)
  b = input_lib.augment(k2, x, crop_padding=0, flip=False, noise=0.1)
  assert not np.allclose(a, b) and float(jnp.min(a)) >= 0 and float(jnp.max(a)) <= 1
  assert abs(float(jnp.std(a - x)) - 0.1) < 0.03
  # Without noise the augmentation is unchanged (same key, same crop/flip).
  c = input_lib.augment(k1, x, crop_padding=1, flip=True)
  d = input_lib.augment(k1, x, crop_padding=1, flip=True, noise=0.0)
  np.testing.assert_array_equal(c, d)


@pytest.mark.parametrize('steps', [1, 5])
def test_adversarial_inputs_stay_in_the_ball_and_raise_the_loss(pretrained, steps):
  import jax.numpy as jnp
  from nc_jax.train import input as input_lib
  config = _config()
  model = train.restore_model(pretrained)
  model.train()
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  ds = train.load_data(config)[1]
  x = input_lib.to_unit(jnp.asarray(ds.images[:64]))
  y = jnp.asarray(ds.labels[:64])
  info = finetune.read_model_info(pretrained)
  normalize = finetune.normalizer(info['mean'], info['std'])
  loss = lambda z: train.objective(
      nnx.merge(graphdef, params, rest, copy=True), normalize(z), y,
      loss='ce', kwargs=dict(config.loss.kwargs), cosine_reg=None,
      num_classes=10)[0]
  xa = train.adversarial(loss, x, eps=0.1, steps=steps, key=jax.random.key(0))
  assert float(jnp.max(jnp.abs(xa - x))) <= 0.1 + 1e-6
  assert float(jnp.min(xa)) >= 0 and float(jnp.max(xa)) <= 1
  assert float(loss(xa)) > float(loss(x))


def test_adversarial_training_runs_and_differs_from_clean(tmp_path):
  clean = train.train_and_evaluate(_config(num_epochs=1), str(tmp_path / 'clean'))
  adv = train.train_and_evaluate(_config({'augment.adversarial_eps': 0.05}),
                                 str(tmp_path / 'adv'))
  assert adv['test_accuracy'] != clean['test_accuracy']


def test_resume_accepts_keys_added_since_at_their_default(tmp_path):
  """A run started before the trainer gained a key resumes when the key is at
  its default, and is refused when it is not."""
  config = _config(num_epochs=2)
  config.stop_after_epochs = 1
  train.train_and_evaluate(config, str(tmp_path))
  path = tmp_path / 'config.json'
  old = json.loads(path.read_text())
  del old['augment']['noise']  # As if written before augment.noise existed.
  path.write_text(json.dumps(old))
  with pytest.raises(ValueError, match='augment.noise: None -> 0.1'):
    train.train_and_evaluate(_config({'augment.noise': 0.1}, num_epochs=2),
                             str(tmp_path))
  assert train.train_and_evaluate(_config(num_epochs=2), str(tmp_path))['epoch'] == 2
