"""The studies package: sweep runner, reproduction contract, and the studies end to end."""

import json
import os

import ml_collections
import numpy as np
import pytest

from configs import common
from nc_jax import train
from nc_jax.studies import fine_grained
from nc_jax.studies import reproduce
from nc_jax.studies import sweep
from nc_jax.studies import transfer


def _config(**groups):
  """A tiny trainer config; keywords as `configs.common.trainer`'s (``data__label_map=``)."""
  return common.trainer(
      'digits', 'mlp', epochs=1, model_kwargs=dict(width=16, depth=3, norm='batch'),
      optimizer=train.optimizer('sgd', learning_rate=0.05, momentum=0.9),
      **dict(dict(batch_size=64, evals__batch_size=400, log__progress_bar=False,
                  log__plots=False, checkpoint__keep=5), **groups))


class _Killed(Exception):
  pass


def test_sweep_resumes_after_a_kill_and_skips_finished_runs(tmp_path):
  calls = []

  def execute(run, rdir):
    calls.append(run.name)
    if run.name == 'b' and calls.count('b') == 1:
      raise _Killed
    return {'value': run.overrides['x'] * 2}

  runs = [sweep.Run(n, execute, overrides={'x': i}) for i, n in enumerate('abc')]
  with pytest.raises(_Killed):
    sweep.run_all(runs, str(tmp_path), say=lambda _: None)
  assert calls == ['a', 'b']
  records = sweep.run_all(runs, str(tmp_path), say=lambda _: None)
  assert calls == ['a', 'b', 'b', 'c']  # 'a' was finished and skipped.
  assert {k: r['final']['value'] for k, r in records.items()} == {'a': 0, 'b': 2, 'c': 4}
  with pytest.raises(ValueError, match="no run named 'd'"):
    sweep.run_all(runs, str(tmp_path), only='d')
  with pytest.raises(ValueError, match='unique'):
    sweep.run_all(runs + runs[:1], str(tmp_path))


def test_only_reruns_one_run_with_identical_numbers(tmp_path):
  base = _config(num_epochs=2)
  runs = [sweep.Run(f'lr{lr}', sweep.train(),
                    sweep.with_overrides(base, {'optimizer.learning_rate': lr}),
                    overrides={'optimizer.learning_rate': lr}) for lr in (0.05, 0.1)]
  first = sweep.run_all(runs, str(tmp_path), say=lambda _: None)
  again = sweep.run_all(runs, str(tmp_path), only='lr0.1', say=lambda _: None)
  assert list(again) == ['lr0.1']
  for key in ('test_accuracy', 'train_accuracy', 'train_nc1', 'test_vci'):
    assert again['lr0.1']['final'][key] == first['lr0.1']['final'][key], key
  assert first['lr0.05']['final']['train_nc1'] != first['lr0.1']['final']['train_nc1']


def test_with_overrides_rejects_unknown_keys():
  c = sweep.with_overrides(_config(), {'model.kwargs.width': 8, 'seed': 3})
  assert c.model.kwargs.width == 8 and c.seed == 3
  with pytest.raises(KeyError, match="did you mean 'optimizer.learning_rate'"):
    sweep.with_overrides(_config(), {'optimizer.learning_rat': 0.1})
  with pytest.raises(KeyError, match='learning_rate'):  # An old flat key.
    sweep.with_overrides(_config(), {'learning_rate': 0.1})


def test_verdict_rules():
  assert reproduce.verdict({'a': True, 'b': True}) == 'reproduced'
  assert reproduce.verdict({'a': True, 'b': False}) == 'not reproduced'
  assert reproduce.verdict({'a': True, 'b': None}) == 'inconclusive'
  assert reproduce.verdict({'a': None, 'b': False}) == 'not reproduced'


def test_report_is_rendered_from_results():
  results = dict(paper='004', title='T', variant='cpu', command='python x', claims={
      '004a': dict(claim='C', paper='P', setting='S', criterion='K', verdict='reproduced',
                   evidence={'msdr': 1.23456}, figures=['f.png'], notes='')},
      runs={'r': dict(seed=0, overrides={'a': 1}, seconds=3.0, final={})})
  md = reproduce.render_report(results)
  assert '| [004a](#004a) | **reproduced** | C |' in md
  assert '| msdr | 1.235 |' in md and '![f.png](f.png)' in md and '| r | 0 |' in md


def _probe_cfg():
  return ml_collections.ConfigDict(dict(l2_grid_size=1, l2_min=1e-2, l2_max=1e-2,
                                        val_fraction=0.2, max_iters=200))


def test_fine_grained_study_smoke(tmp_path):
  config = ml_collections.ConfigDict(dict(
      train=_config(data__label_map='mod:5', checkpoint__init=True),
      analysis_epochs=(0, 1), analysis_train_examples=600,
      clp=ml_collections.ConfigDict(dict(embedding='pca', max_per_superclass=0,
                                         perplexity=30.0, kmeans_restarts=2,
                                         num_threads=1)),
      probe=_probe_cfg()))
  summary = fine_grained.fine_grained_study(config, str(tmp_path))
  for name in ('class_distances.png', 'tsne_superclasses.png', 'clp.png',
               'summary.json', 'coarse/summary.json'):
    assert os.path.exists(tmp_path / name), name
  assert set(summary['msdr_by_epoch']) == {'0', '1'}
  assert 0.1 < summary['clp_accuracy'] <= 1 and 0.5 < summary['lpo_accuracy'] <= 1


def test_transfer_study_smoke(tmp_path):
  pre = str(tmp_path / 'pre')
  train.train_and_evaluate(_config(), pre)
  config = ml_collections.ConfigDict(dict(
      pretrain=_config(), pretrain_workdir=pre,  # reuses the trainer run
      downstream=_config(data__examples_per_class=60, seed=2),
      variants=('linear_probe',), blocks=('layer1',), probe=_probe_cfg()))
  summary = transfer.transfer_study(config, str(tmp_path / 'study'))
  assert set(summary['finetune_test_accuracy']) == {'L-BFGS probe', 'linear_probe'}
  # Every layer but a projection, from input to output; the probe of the transfer layer.
  assert list(summary['probe_top1_by_layer']) == ['layer1', 'layer2', 'penultimate']
  assert summary['finetune_test_accuracy']['L-BFGS probe'] == (
      summary['probe_top1_by_layer'][transfer.transfer_layer(summary['probe_top1_by_layer'])])
  ft = [r for r in transfer.plan(config, str(tmp_path / 'study')) if r.tags]
  assert [(r.name, r.tags, r.config.init.finetune_block) for r in ft] == [
      ('finetune_linear_probe', dict(kind='finetune', variant='linear_probe'), '')]
  assert -1 <= summary['spearman_nc1_vs_probe'] <= 1
  study = tmp_path / 'study'
  for name in ('layerwise.png', 'finetune.png', 'runs/finetune_linear_probe/summary.json'):
    assert os.path.exists(study / name), name
  with open(study / 'runs/finetune_linear_probe/run.json') as f:
    assert json.load(f)['final']['num_params'] == 16 * 10 + 10  # the new head only


def _paper_config(name, arg='runlocal'):
  import importlib
  if arg == 'runlocal':  # The studies read the real data sets.
    from nc_jax import data
    root = data.default_data_root()
    for sub in ('mnist', 'fashion_mnist', 'cifar10_jpeg'):
      if root is None or not (root / sub).is_dir():
        pytest.skip(f'REAL DATA MISSING: {sub}/ not found under the data root ({root}); '
                    'set NC_JAX_DATA_DIR or provide ../shared/data to run this test')
  return importlib.import_module(f'configs.papers.{name}').get_config(arg)


def _check_claims(results, tmp_path, ids):
  """REPRODUCTIONS.md's fields of every claim, gates included, and the figures on disk."""
  assert set(results['claims']) == set(ids)
  for cid, claim in results['claims'].items():
    assert claim['verdict'] in reproduce.VERDICTS, cid
    for key in ('claim', 'paper', 'setting', 'criterion', 'evidence', 'gates'):
      assert claim[key], (cid, key)
    for name, gate in claim['gates'].items():
      assert {'value', 'threshold', 'ok'} <= set(gate), (cid, name)
      assert type(gate['ok']) is bool, (cid, name)  # pylint: disable=unidiomatic-typecheck
    if not all(g['ok'] for g in claim['gates'].values()):
      assert claim['verdict'] == 'inconclusive', cid
    for check in claim['evidence']['checks'].values():
      assert check is None or type(check) is bool, cid  # pylint: disable=unidiomatic-typecheck
    for fig in claim['figures']:
      assert os.path.exists(tmp_path / fig), fig
  report = (tmp_path / 'report.md').read_text()
  for cid in ids:
    assert f'## {cid}' in report


@pytest.mark.slow
def test_p004_runlocal_writes_the_contract_and_only_reproduces_a_run(tmp_path):
  """REPRODUCTIONS.md: results.json structure, report.md, figures; --config.only."""
  config = _paper_config('p004_fine_grained')
  results = reproduce.reproduce(config, str(tmp_path), command='test', say=lambda _: None)
  _check_claims(results, tmp_path, ('004a', '004b', '004c'))
  with open(tmp_path / 'results.json') as f:
    on_disk = json.load(f)
  assert on_disk['claims'].keys() == results['claims'].keys()
  assert (tmp_path / 'report.md').read_text().count('## 004') == 3
  run = 'fine_mlp_seed0'
  recorded = on_disk['runs'][run]
  assert set(recorded) == {'seed', 'overrides', 'seconds', 'final'}
  config.only = run
  again = reproduce.reproduce(config, str(tmp_path), command='test', say=lambda _: None)
  assert again['claims'] == {} and list(again['runs']) == [run]
  assert again['runs'][run]['final'] == recorded['final']


@pytest.mark.slow
def test_p002_runlocal_writes_the_contract(tmp_path):
  config = _paper_config('p002_limits')
  results = reproduce.reproduce(config, str(tmp_path), command='test', say=lambda _: None)
  _check_claims(results, tmp_path, ('002a', '002b', '002c', '002d'))
  # Fine-tuning runs start from the pretraining run's checkpoints.
  with open(tmp_path / 'runs/mnist_finetune_e2_lr0.05/config.json') as f:
    ft = json.load(f)
  assert ft['init']['workdir'].endswith('runs/mnist_pretrain') and ft['init']['epoch'] == 2


def test_paper_002_train_variance_uses_the_final_means():
  from nc_jax.studies.papers import p002_limits
  rng = np.random.default_rng(0)
  y = np.arange(60) % 3
  final = np.eye(3)[y] * 4 + rng.normal(size=(60, 3)) * 0.1
  now = final + rng.normal(size=(60, 3))
  mu = np.stack([final[y == k].mean(0) for k in range(3)])
  want = np.mean(np.sum((now - mu[y]) ** 2, 1)) / np.mean(np.sum((mu - mu.mean(0)) ** 2, 1))
  assert p002_limits.final_means_variance(now, final, y, 3) == pytest.approx(want)
  # At t = T it is the train variance with the current means (balanced classes).
  from nc_jax import metrics
  assert p002_limits.final_means_variance(final, final, y, 3) == pytest.approx(
      float(metrics.train_variance(final, y, num_classes=3)), rel=1e-5)


@pytest.mark.slow
def test_p000_runlocal_writes_the_contract(tmp_path):
  config = _paper_config('p000_vci')
  results = reproduce.reproduce(config, str(tmp_path), command='test', say=lambda _: None)
  _check_claims(results, tmp_path, ('000a', '000b', '000c', '000d', '000e'))
  # Thm 5.1 on real features holds to float64 precision whatever the scale.
  assert results['claims']['000a']['verdict'] == 'reproduced'
  assert results['claims']['000b']['evidence']['example_fuzziness'] == pytest.approx([1, 2])


def test_least_squares_probe_loss_is_the_closed_form():
  """000a's fitted probe against Thm 5.1 on synthetic data (independent of training)."""
  import jax
  import jax.numpy as jnp
  from nc_jax import metrics
  from nc_jax.studies.papers import p000_vci
  rng = np.random.default_rng(0)
  y = np.repeat(np.arange(4), [30, 10, 20, 40])
  h = rng.normal(size=(4, 6))[y] * 2 + rng.normal(size=(100, 6))
  with jax.enable_x64(True):
    closed = float(metrics.linear_probe_mse(metrics.class_moments(
        jnp.asarray(h), jnp.asarray(y), num_classes=4)))
  assert p000_vci.least_squares_probe_loss(h, y, 4) == pytest.approx(closed, rel=1e-9)


@pytest.mark.slow
def test_p003_runlocal_writes_the_contract(tmp_path):
  config = _paper_config('p003_progressive')
  results = reproduce.reproduce(config, str(tmp_path), command='test', say=lambda _: None)
  _check_claims(results, tmp_path, ('003a', '003b', '003c', '003d'))
  # The memorization ratio is CDNV(clean labels) / CDNV(noisy labels), per layer.
  f = results['runs']['noise0.4_seed0']['final']
  np.testing.assert_allclose(f['memorization_ratio'],
                             np.array(f['cdnv_clean_labels']) / np.array(f['cdnv']))
  # Without noise the two label sets coincide: the ratio is 1.
  np.testing.assert_allclose(results['runs']['noise0_seed0']['final']['memorization_ratio'], 1.0)


def test_every_paper_config_plans_every_variant():
  from nc_jax.studies import reproduce as rep
  trainer_keys = train.default_config().keys()
  for name in ('p000_vci', 'p001_transfer', 'p002_limits', 'p003_progressive',
               'p004_fine_grained'):
    for arg in ('', 'runlocal', 'gpu'):
      config = _paper_config(name, arg)
      runs = rep.paper_module(config.study).plan(config, '/tmp/nowhere')
      assert len({r.name for r in runs}) == len(runs) > 0, (name, arg)
      for run in runs:
        if run.config is not None and set(trainer_keys) <= set(run.config):
          train.check_config(run.config)  # Every trainer config is valid.


@pytest.mark.slow
def test_p001_runlocal_writes_the_contract(tmp_path):
  config = _paper_config('p001_transfer')
  results = reproduce.reproduce(config, str(tmp_path), command='test', say=lambda _: None)
  _check_claims(results, tmp_path, ('001a', '001b', '001c', '001d'))
  runs = results['runs']
  # Transfer reads the pre-head features when a classifier-side head is present.
  assert runs['ce_head1']['final']['layer'] == 'pre_head'
  assert runs['ce_seed0']['final']['layer'] == 'penultimate'
  # The linear probe variant trains the new head only (32 x 10 + 10).
  assert runs['ft_linear_probe_seed0']['final']['trained_params'] == 32 * 10 + 10
