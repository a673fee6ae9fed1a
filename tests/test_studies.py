"""The studies package: sweep runner, reproduction contract, the generic studies end to end
(each paper's :runlocal study runs in its test_claims_p00X.py)."""

import json
import os

import ml_collections
import pytest
import study_contract

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


def test_every_paper_config_plans_every_variant():
  from nc_jax.studies import reproduce as rep
  trainer_keys = train.default_config().keys()
  for name in ('p000_vci', 'p001_transfer', 'p002_limits', 'p003_progressive',
               'p004_fine_grained'):
    for arg in ('', 'runlocal', 'gpu'):
      config = study_contract.paper_config(name, arg)
      runs = rep.paper_module(config.study).plan(config, '/tmp/nowhere')
      assert len({r.name for r in runs}) == len(runs) > 0, (name, arg)
      for run in runs:
        if run.config is not None and set(trainer_keys) <= set(run.config):
          train.check_config(run.config)  # Every trainer config is valid.
