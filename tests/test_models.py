"""Tests of nc_jax.models: feature dicts, parameter counts, modes, jit.

Parameter counts are checked on the full-size models through
``nnx.eval_shape`` (no arrays allocated) against figures counted by hand
below, independently of the model code. Everything that runs uses tiny
widths and images.

Random initialisation under JAX's default partitionable threefry compiles
slowly on small CPUs (seconds per distinct parameter shape); the tests build
models under ``jax.threefry_partitionable(False)``, which changes only the
random values drawn.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from nc_jax import models

B = 3  # batch
C = 5  # classes

# name -> (create_model kwargs, input shape without batch)
TINY = {
    'mlp': (dict(in_features=12, width=8, depth=3, norm='batch'), (2, 2, 3)),
    'resnet18': (dict(width=4), (8, 8, 3)),
    'resnet34': (dict(width=4), (8, 8, 3)),
    'resnet50': (dict(width=4, stem='imagenet'), (16, 16, 3)),
    'vgg11_bn': (dict(width=4), (32, 32, 3)),
    'vit': (dict(dim=8, depth=2, num_heads=2, image_size=8), (8, 8, 3)),
    'deit_tiny': (dict(dim=8, depth=2, num_heads=2, image_size=32),
                  (32, 32, 3)),
}


def _blocks(stages):
  return [f'layer{s + 1}.{b}' for s, n in enumerate(stages) for b in range(n)]


# The documented keys (input to output) and widths of the TINY models.
_R18 = _blocks((2, 2, 2, 2))
_R34 = _blocks((3, 4, 6, 3))
EXPECTED = {
    'mlp': {'layer1': 8, 'layer2': 8, 'penultimate': 8},
    'resnet18': dict(zip(['stem'] + _R18[:-1] + ['penultimate'],
                         [4, 4, 4, 8, 8, 16, 16, 32, 32])),
    'resnet34': dict(zip(['stem'] + _R34[:-1] + ['penultimate'],
                         [4] + [4] * 3 + [8] * 4 + [16] * 6 + [32] * 3)),
    'resnet50': dict(zip(['stem'] + _R34[:-1] + ['penultimate'],
                         [4] + [16] * 3 + [32] * 4 + [64] * 6 + [128] * 3)),
    'vgg11_bn': dict(zip([f'conv{i}' for i in range(1, 9)] + ['penultimate'],
                         [4, 8, 16, 16, 32, 32, 32, 32, 32])),
    'vit': {'block1': 8, 'block2': 8, 'penultimate': 8},
    'deit_tiny': {'block1': 8, 'block2': 8, 'penultimate': 8},
}


@pytest.fixture(autouse=True)
def _fast_init_and_strict_ranks():
  with jax.threefry_partitionable(False), jax.numpy_rank_promotion('raise'):
    yield


def _build(name, seed=0, **overrides):
  kwargs, _ = TINY[name]
  return models.create_model(name, num_classes=C, rngs=nnx.Rngs(seed),
                             **{**kwargs, **overrides})


def _input(name, seed=1):
  return jax.random.normal(jax.random.key(seed), (B,) + TINY[name][1])


@functools.cache
def _jit_outputs(name):
  """(model in eval mode, x, nnx.jit outputs), shared by tests: read-only."""
  model = _build(name)
  model.eval()
  x = _input(name)
  return model, x, nnx.jit(lambda m, x: m(x))(model, x)


# ------------------------------------------------------------ feature dicts


def _assert_head_reproduces(h, w, b, logits):
  """h W^T + b == logits up to float32 rounding: (p + 1) eps (|h| |W|^T + |b|) each.

  The model's fused head and a separate matmul may sum the p products in
  different orders (XLA's choice, per program and per CPU); a fixed atol
  ignores the size of the products where the logits cancel.
  """
  h, w, b, logits = (np.asarray(a, np.float64) for a in (h, w, b, logits))
  bound = (h.shape[-1] + 1) * np.finfo(np.float32).eps * (np.abs(h) @ np.abs(w).T + np.abs(b))
  err = np.abs(h @ w.T + b - logits)
  assert np.all(err <= bound), np.max(err / np.maximum(bound, 1e-300))


@pytest.mark.parametrize('name', models.MODEL_NAMES)
def test_features_have_documented_keys_and_shapes(name):
  model, _, (logits, features) = _jit_outputs(name)
  assert logits.shape == (B, C)
  assert models.feature_names(model) == tuple(EXPECTED[name])
  assert set(features) == set(EXPECTED[name])  # jit returns keys sorted
  for key, width in EXPECTED[name].items():
    assert features[key].shape == (B, width), key
    assert np.all(np.isfinite(features[key])), key


@pytest.mark.parametrize('name', models.MODEL_NAMES)
def test_penultimate_through_classifier_reproduces_logits(name):
  model, _, (logits, features) = _jit_outputs(name)
  w, b = models.classifier_params(model)
  assert w.shape == (C, features['penultimate'].shape[1]) and b.shape == (C,)
  _assert_head_reproduces(features['penultimate'], w, b, logits)


# Eager runs compile every primitive separately (slow on CPU): one model per
# kind of layer (BatchNorm MLP, residual convs, plain convs + pools, attention).
@pytest.mark.parametrize('name', ['mlp', 'resnet18', 'vgg11_bn', 'vit'])
def test_nnx_jit_matches_eager(name):
  model, x, (jlogits, jfeatures) = _jit_outputs(name)
  logits, features = model(x)
  assert tuple(features) == models.feature_names(model)  # eager keeps order
  np.testing.assert_allclose(jlogits, logits, rtol=1e-5, atol=1e-5)
  assert set(jfeatures) == set(features)
  for key in features:
    np.testing.assert_allclose(jfeatures[key], features[key], rtol=1e-5,
                               atol=1e-5, err_msg=key)


def test_split_merge_jax_jit_train_step_matches_eager():
  """A pure train-mode forward returns the BatchNorm updates eager applies."""
  model = _build('resnet18')
  x = _input('resnet18')
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)

  @jax.jit
  def forward(params, rest, x):
    m = nnx.merge(graphdef, params, rest)
    out = m(x)
    return out, nnx.state(m, nnx.BatchStat)

  (logits, features), new_stats = forward(params, rest, x)
  eager_logits, eager_features = model(x)  # train mode: updates model
  # Train-mode BatchNorm divides by small batch variances (3 samples at 1x1
  # in the last stage), so jit/eager rounding differences grow: looser tols.
  tols = dict(rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(logits, eager_logits, **tols)
  for key in eager_features:
    np.testing.assert_allclose(features[key], eager_features[key], **tols,
                               err_msg=key)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, **tols),
               new_stats, nnx.state(model, nnx.BatchStat))


# ------------------------------------------------------------ train / eval


def _stats(model):
  return jax.tree.map(np.asarray, nnx.state(model, nnx.BatchStat))


@pytest.mark.parametrize('name', ['resnet18', 'mlp'])
def test_batchnorm_train_updates_stats_eval_does_not(name):
  model = nnx.clone(_jit_outputs(name)[0])
  x = _input(name)
  before = _stats(model)
  assert jax.tree.leaves(before)

  model.train()
  model(x)
  after_train = _stats(model)
  changed = jax.tree.map(lambda a, b: not np.allclose(a, b), before,
                         after_train)
  assert all(jax.tree.leaves(changed))  # every BatchNorm moved

  model.eval()
  logits1, _ = model(x)
  logits2, _ = model(x)
  np.testing.assert_array_equal(logits1, logits2)
  jax.tree.map(np.testing.assert_array_equal, after_train, _stats(model))
  # Eval mode treats samples independently of the rest of the batch.
  single, _ = model(x[:1])
  np.testing.assert_allclose(single, logits1[:1], rtol=1e-5, atol=1e-5)


def test_train_mode_uses_batch_statistics():
  model = nnx.clone(_jit_outputs('resnet18')[0])
  x = _input('resnet18')
  model.train()
  batch_logits, _ = model(x)
  single_logits, _ = model(x[:1])
  assert not np.allclose(batch_logits[:1], single_logits)


def test_dropout_and_drop_path_active_only_in_train_mode():
  model = _build('vit', dropout_rate=0.3, drop_path_rate=0.5)
  x = _input('vit')
  model.train()
  a, _ = model(x)
  b, _ = model(x)
  assert not np.allclose(a, b)
  model.eval()
  c, _ = model(x)
  d, _ = model(x)
  np.testing.assert_array_equal(c, d)


def test_models_start_in_train_mode():
  model = _build('mlp', dropout_rate=0.5)
  assert model.layers[0].norm.use_running_average is False
  assert model.layers[0].dropout.deterministic is False


# ------------------------------------------------------------ projection heads


@pytest.mark.parametrize('kind', ['linear', 'mlp'])
def test_projection_head_returned_alongside(kind):
  model = _build('mlp', projection=kind, projection_dim=6)
  model.eval()
  logits, features = model(_input('mlp'))
  assert models.feature_names(model) == ('layer1', 'layer2', 'penultimate',
                                         'projection')
  assert logits.shape == (B, C) and features['projection'].shape == (B, 6)
  p = 8
  expected = p * 6 + 6 if kind == 'linear' else (p * p + p) + (p * 6 + 6)
  assert models.count_params(model.projection) == expected
  # The classifier still reads the penultimate features.
  w, b = models.classifier_params(model)
  _assert_head_reproduces(features['penultimate'], w, b, logits)


def test_projection_kind_is_checked():
  with pytest.raises(ValueError, match='kind'):
    models.ProjectionHead(4, 2, kind='conv', rngs=nnx.Rngs(0))


# ------------------------------------------------------------ parameter counts
# Counted by hand: conv k*k*cin*cout (no bias in ResNets), BatchNorm and
# LayerNorm 2*c (scale, bias; running statistics are not parameters).


def _abstract(name, num_classes, **kwargs):
  return _abstract_cached(name, num_classes, tuple(sorted(kwargs.items())))


@functools.cache
def _abstract_cached(name, num_classes, kwargs):
  return nnx.eval_shape(lambda: models.create_model(
      name, num_classes=num_classes, rngs=nnx.Rngs(0), **dict(kwargs)))


def _resnet_hand_count(stages, bottleneck, stem_kernel, num_classes):
  total = stem_kernel**2 * 3 * 64 + 2 * 64  # stem conv + BN
  cin = 64
  for s, n in enumerate(stages):
    planes = 64 * 2**s
    cout = planes * (4 if bottleneck else 1)
    for b in range(n):
      stride = 2 if s > 0 and b == 0 else 1
      if bottleneck:
        total += cin * planes + 9 * planes * planes + planes * cout
        total += 2 * (planes + planes + cout)
      else:
        total += 9 * cin * planes + 9 * planes * cout + 2 * (planes + cout)
      if stride != 1 or cin != cout:
        total += cin * cout + 2 * cout  # 1x1 projection shortcut + BN
      cin = cout
  return total + cin * num_classes + num_classes


def test_resnet18_cifar_param_count():
  expected = _resnet_hand_count((2, 2, 2, 2), False, 3, 10)
  assert expected == 11_173_962
  assert models.count_params(_abstract('resnet18', 10)) == expected


def test_resnet50_imagenet_param_count():
  expected = _resnet_hand_count((3, 4, 6, 3), True, 7, 1000)
  assert expected == 25_557_032
  model = _abstract('resnet50', 1000, stem='imagenet')
  assert models.count_params(model) == expected


def test_resnet34_cifar_param_count():
  expected = _resnet_hand_count((3, 4, 6, 3), False, 3, 10)
  assert models.count_params(_abstract('resnet34', 10)) == expected


def test_vgg11_bn_cifar_param_count():
  channels = [64, 128, 256, 256, 512, 512, 512, 512]
  cin, expected = 3, 0
  for cout in channels:
    expected += 9 * cin * cout + cout + 2 * cout  # conv with bias + BN
    cin = cout
  expected += 512 * 10 + 10  # classifier on the 1x1x512 map
  assert expected == 9_231_114
  assert models.count_params(_abstract('vgg11_bn', 10)) == expected


def test_deit_tiny_param_count():
  d, depth, hidden, patch, tokens = 192, 12, 4 * 192, 16, (224 // 16)**2 + 1
  embed = patch * patch * 3 * d + d + d + tokens * d  # patch conv, cls, pos
  block = (2 * d            # LayerNorm 1
           + 4 * (d * d + d)  # q, k, v, out projections
           + 2 * d            # LayerNorm 2
           + d * hidden + hidden + hidden * d + d)  # MLP
  expected = embed + depth * block + 2 * d + d * 1000 + 1000
  assert expected == 5_717_416
  assert models.count_params(_abstract('deit_tiny', 1000)) == expected


def test_mlp_paper_size_param_count():
  width, depth, c = 3072, 12, 100
  expected = (3072 * width + width + (depth - 1) * (width * width + width)
              + width * c + c)
  model = _abstract('mlp', c, in_features=3072, width=width, depth=depth)
  assert models.count_params(model) == expected
  assert models.feature_names(model)[-2:] == ('layer11', 'penultimate')


# ------------------------------------------------------------ factory, misc


def test_factory_names_and_errors():
  assert set(models.MODEL_NAMES) == {'mlp', 'resnet18', 'resnet34', 'resnet50',
                                     'vgg11_bn', 'vit', 'deit_tiny'}
  with pytest.raises(ValueError, match='unknown model'):
    models.create_model('resnet101', num_classes=10, rngs=nnx.Rngs(0))
  with pytest.raises(ValueError, match='stem'):
    _abstract('resnet18', 10, stem='tiny')
  with pytest.raises(ValueError, match='pool'):
    _abstract('vit', 10, pool='max')


def test_presets_and_overrides():
  deit = _abstract('deit_tiny', 1000)
  assert deit.pos_embed.shape == (1, 197, 192) and len(deit.blocks) == 12
  vit = _abstract('vit', 10)
  assert vit.pos_embed.shape == (1, 65, 192)  # 32 px, patch 4, cls token
  small = _abstract('vit', 10, depth=3, pool='mean')
  assert small.cls_token is None and small.pos_embed.shape == (1, 64, 192)
  assert models.feature_names(small) == ('block1', 'block2', 'block3',
                                         'penultimate')


def test_wrong_input_size_is_an_error():
  model, _, _ = _jit_outputs('mlp')
  with pytest.raises(ValueError, match='features'):
    model(jnp.ones((B, 5)))


def test_bfloat16_compute():
  model = _build('mlp', dtype=jnp.bfloat16)
  logits, features = model(_input('mlp'))
  assert logits.dtype == jnp.bfloat16
  assert features['penultimate'].dtype == jnp.bfloat16
  assert jax.tree.leaves(nnx.state(model, nnx.Param))[0].dtype == jnp.float32
