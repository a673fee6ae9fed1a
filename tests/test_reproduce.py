"""The reproduction framework: gates, typed checks, seeds with spread, tags, claims in parts."""

import math

import numpy as np
import pytest
import scipy.stats

from nc_jax.studies import reproduce
from nc_jax.studies import spread
from nc_jax.studies import sweep


# ---------------------------------------------------------------------------
# Checks are bool or None; gates come first.
# ---------------------------------------------------------------------------


def test_verdict_refuses_numpy_bools_and_numbers():
  with pytest.raises(TypeError, match="check 'b' is numpy.bool"):
    reproduce.verdict({'a': True, 'b': np.bool_(False)})
  with pytest.raises(TypeError, match="check 'a'"):
    reproduce.verdict({'a': np.mean([1.0]) > 0})
  with pytest.raises(TypeError, match="check 'a' is int"):
    reproduce.verdict({'a': 1})
  with pytest.raises(TypeError):
    reproduce.verdict(np.bool_(False))  # Not even a mapping.


def test_a_failed_gate_makes_the_claim_inconclusive_whatever_the_checks():
  ok = reproduce.at_least(0.9, 0.5)
  bad = reproduce.at_most(1.25, 0.5)
  assert ok.ok and not bad.ok
  assert reproduce.verdict({'a': True}, {'g': ok}) == 'reproduced'
  assert reproduce.verdict({'a': False}, {'g': ok}) == 'not reproduced'
  assert reproduce.verdict({'a': True}, {'g': ok, 'h': bad}) == 'inconclusive'
  assert reproduce.verdict({'a': False}, {'h': bad}) == 'inconclusive'
  # Unmeasured values fail a gate.
  assert not reproduce.at_least(None, 0.5).ok
  assert not reproduce.at_least(float('nan'), 0.5).ok
  # Boundaries: >= and <= include the threshold, > does not.
  assert reproduce.at_least(0.5, 0.5).ok and reproduce.at_most(0.5, 0.5).ok
  assert not reproduce.Gate(2.0, 2.0, '>').ok
  with pytest.raises(ValueError, match='op'):
    reproduce.Gate(1.0, 1.0, '=>')


def test_changed_gate_needs_the_change_beyond_its_noise():
  # MSDR at initialisation 1.18 +- small; trained well above: passes.
  assert reproduce.changed_gate([2.0, 2.1, 1.9], [1.18, 1.17, 1.19]).ok
  # Trained equal to the untrained value within noise: fails.
  assert not reproduce.changed_gate([1.20, 1.15, 1.22], [1.18, 1.17, 1.19]).ok
  assert reproduce.seeds_gate(3).ok and not reproduce.seeds_gate(1).ok


# ---------------------------------------------------------------------------
# Seeds and spread.
# ---------------------------------------------------------------------------


def test_estimate_against_numpy_and_scipy():
  x = [0.91, 0.85, 0.88, 0.87]
  e = spread.estimate(x)
  assert e.n == 4 and e.mean == pytest.approx(np.mean(x))
  assert e.se == pytest.approx(scipy.stats.sem(x))
  assert math.isnan(spread.estimate([1.0]).se)
  with pytest.raises(ValueError, match='finite'):
    spread.estimate([1.0, float('nan')])
  with pytest.raises(ValueError, match='non-empty'):
    spread.estimate([])


def test_exceeds_is_mean_difference_over_two_standard_errors():
  a, b = np.array([0.91, 0.90, 0.92]), np.array([0.85, 0.86, 0.84])
  se = math.hypot(scipy.stats.sem(a), scipy.stats.sem(b))
  assert (a.mean() - b.mean()) / se == pytest.approx(spread.z_score(a, b))
  assert spread.exceeds(a, b) is True and spread.exceeds(b, a) is False
  # Inside the noise: neither exceeds the other.
  c, d = [0.91, 0.85, 0.88], [0.87, 0.90, 0.86]
  assert spread.exceeds(c, d) is False and spread.exceeds(d, c) is False
  # Exactly at 2 SE does not count (strictly greater).
  base = np.array([0.0, 1.0, 2.0])  # SE = 1 / sqrt(3)
  at_two = base + 2 * scipy.stats.sem(base)
  assert spread.exceeds(at_two + 1e-9, 1.0) is True
  assert spread.exceeds(at_two - 1e-9, 1.0) is False
  # One seed: no noise estimate, cannot tell.
  assert spread.exceeds([0.9], [0.8]) is None
  # Paired: the same seeds; the per-seed difference is steady though each side varies.
  p, q = [0.5, 0.7, 0.9], [0.49, 0.69, 0.89]
  assert spread.exceeds(p, q) is False and spread.exceeds(p, q, paired=True) is True
  # Missing or non-finite values, or unequal pairs: cannot tell.
  assert spread.exceeds([1, 2, 3], [1, 2], paired=True) is None
  assert spread.exceeds([1, None, 3], 0.0) is None
  assert spread.exceeds([1, float('nan'), 3], [0, 0, 0.1]) is None
  assert math.isnan(spread.z_score([1, None], [0, 1]))
  with pytest.raises(ValueError, match='equal lengths'):
    spread.difference([1, 2, 3], [1, 2], paired=True)
  # A constant on either side; a quantity dict stands for its values.
  assert spread.below(0.5, [0.9, 0.91, 0.92]) is True
  assert spread.exceeds(1.0, [0.9, 0.91, 0.92]) is True
  q = spread.quantity([0.9, 0.91, 0.92])
  assert q['n'] == 3 and q['mean'] == pytest.approx(0.91)
  assert spread.exceeds(q, 0.5) is True
  assert spread.quantity([0.9, None]) == dict(values=[0.9, None], mean=None, se=None, n=2)
  assert spread.all_of([True, None]) is None and spread.all_of([True, False, None]) is False
  assert spread.any_of([False, True, None]) is True and spread.any_of([]) is None
  assert spread.increasing([[1, 1.1, 0.9], [2, 2.1, 1.9], [3, 3.1, 2.9]]) is True
  assert spread.increasing([[1, 1.1, 0.9], [2, 2.1, 1.9], [2, 2.1, 1.9]]) is False
  assert spread.summary([1.0, 3.0]) == dict(mean=2.0, se=1.0, n=2)


def test_bootstrap_se_against_the_closed_form_and_its_use_in_exceeds():
  rng = np.random.default_rng(1)
  x = rng.normal(size=8)
  # The bootstrap SE of a mean tends to std(ddof=0) / sqrt(n) (Efron & Tibshirani 6.9).
  b = spread.bootstrap(lambda g: g[0].mean(), [x], draws=20000)
  assert b['mean'] == pytest.approx(x.mean()) and b['n'] == 8 and b['draws'] == 20000
  assert b['se'] == pytest.approx(x.std() / math.sqrt(8), rel=0.03)
  # Groups are resampled independently: the SE of a difference of two means adds in
  # quadrature.
  y = 3 + 2 * rng.normal(size=5)
  d = spread.bootstrap(lambda g: g[1].mean() - g[0].mean(), [x, y], draws=20000)
  want = math.hypot(x.std() / math.sqrt(8), y.std() / math.sqrt(5))
  assert d['se'] == pytest.approx(want, rel=0.03)
  # Rows of a paired group move together: Pearson r of perfectly correlated rows is 1.
  rows = [[[0.0, 1.0], [0.1, 1.2]], [[1.0, 3.0], [1.1, 3.2]], [[2.0, 5.0], [2.1, 5.2]]]
  r = spread.bootstrap(lambda g: np.corrcoef(*np.array([a.mean(0) for a in g]).T)[0, 1],
                       rows, draws=200)
  assert r['mean'] == pytest.approx(1.0) and r['se'] < 1e-6
  # Reproducible, and unmeasurable with one seed or a NaN.
  assert spread.bootstrap(lambda g: g[0].mean(), [x], draws=100) == spread.bootstrap(
      lambda g: g[0].mean(), [x], draws=100)
  assert spread.bootstrap(lambda g: g[0].mean(), [[1.0]])['se'] is None
  assert spread.bootstrap(lambda g: g[0].mean(), [[1.0, np.nan]])['mean'] is None
  # exceeds / below read it as a statistic with its SE.
  est = dict(mean=0.9, se=0.1, n=3, draws=2000)
  assert spread.exceeds(est, 0.5) is True and spread.below(0.5, est) is True
  assert spread.exceeds(dict(est, se=0.25), 0.5) is False
  assert spread.z_score(est, 0.5) == pytest.approx(4.0)
  assert spread.exceeds(est, [0.4, 0.5, 0.6]) is True  # SE 0.058: z = 0.4 / 0.115.
  assert spread.exceeds(dict(est, mean=None), 0.5) is None
  with pytest.raises(ValueError, match='pair'):
    spread.difference(est, 0.5, paired=True)


# ---------------------------------------------------------------------------
# Runs with tags.
# ---------------------------------------------------------------------------


def test_where_selects_runs_by_tags_not_names(tmp_path):
  runs = [sweep.Run(f'r{i}', None, seed=s, tags=dict(kind=k, train_size=n))
          for i, (k, n, s) in enumerate([('size', 1000, 0), ('size', 4000, 0),
                                          ('size', 4000, 1), ('depth', 4000, 0)])]
  records = {r.name: dict(final=dict(acc=i / 10)) for i, r in enumerate(runs[:3])}
  found = sweep.where(runs, records, str(tmp_path), kind='size', train_size=4000.0)
  assert [r.name for r in found] == ['r1', 'r2']
  assert [r['acc'] for r in found] == [0.1, 0.2]
  assert found[1].tags == dict(kind='size', train_size=4000, seed=1)
  assert found[0].path == str(tmp_path / 'runs' / 'r1')
  # Seed matches the run's seed; unfinished runs (r3) and unknown tags match nothing.
  assert [r.name for r in sweep.where(runs, records, '', seed=1)] == ['r2']
  assert sweep.where(runs, records, '', kind='depth') == []
  assert sweep.where(runs, records, '', lr=0.1) == []
  study = reproduce.Study(config=None, workdir='', runs=runs, records=records)
  assert study.one(train_size=1000).name == 'r0'
  with pytest.raises(LookupError, match="r1', 'r2"):
    study.one(kind='size', train_size=4000)


def test_train_executor_keeps_chosen_summary_keys(tmp_path, monkeypatch):
  from nc_jax import train
  monkeypatch.setattr(train, 'train_and_evaluate',
                      lambda config, rdir: dict(test_accuracy=0.9, train_nc1=0.1, curve=[1, 2]))
  run = sweep.Run('a', sweep.train(), config=None)
  assert sweep.train()(run, str(tmp_path)) == dict(test_accuracy=0.9, train_nc1=0.1)
  assert sweep.train(keep=('test_accuracy', 'gone'))(run, '') == dict(test_accuracy=0.9,
                                                                      gone=None)
  then = sweep.train(keep=('train_nc1',), then=lambda run, rdir: dict(extra=rdir))
  assert then(run, 'x') == dict(train_nc1=0.1, extra='x')


# ---------------------------------------------------------------------------
# Claims in parts.
# ---------------------------------------------------------------------------


def _spec():
  def gates(ev, c):
    return dict(runs_trained=reproduce.at_least(min(ev['acc']), c['acc_min']))

  def checks(ev, c):
    return dict(above=spread.exceeds(ev['msdr'], c['msdr_min']))

  return reproduce.ClaimSpec(
      id='999a', claim='MSDR exceeds {x}.', paper='Fig 1.',
      criterion='Mean MSDR exceeds {msdr_min} by 2 SE; every run >= {acc_min} accuracy.',
      constants=dict(msdr_min=1.1, acc_min=0.5),
      evidence=lambda study: dict(msdr=[r['msdr'] for r in study.where(kind='m')],
                                  acc=[r['acc'] for r in study.where(kind='m')]),
      gates=gates, checks=checks,
      setting=lambda config: f'{config["epochs"]} epochs',
      figure=lambda ev, study: ['fig.png'])


def test_assess_on_synthetic_evidence_reads_all_three_verdicts():
  spec = _spec()
  assert reproduce.assess(spec, dict(msdr=[2, 2.1, 1.9], acc=[0.9] * 3)).verdict == 'reproduced'
  assert reproduce.assess(spec, dict(msdr=[1, 1.2, 1.1], acc=[0.9] * 3)).verdict == \
      'not reproduced'
  a = reproduce.assess(spec, dict(msdr=[2, 2.1, 1.9], acc=[0.9, 0.2, 0.9]))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['runs_trained']
  assert spec.criterion_text() == ('Mean MSDR exceeds 1.1 by 2 SE; every run >= 0.5 '
                                   'accuracy.')


def test_judge_writes_gates_checks_and_computed_text(tmp_path):
  runs = [sweep.Run(f'm{s}', None, seed=s, tags=dict(kind='m')) for s in range(3)]
  records = {f'm{s}': dict(final=dict(msdr=2.0 + s / 10, acc=0.3 if s == 1 else 0.9))
             for s in range(3)}
  study = reproduce.Study(config=dict(epochs=7), workdir=str(tmp_path), runs=runs,
                          records=records)
  claim = reproduce.judge(_spec(), study)
  assert claim.verdict == 'inconclusive' and claim.setting == '7 epochs'
  assert claim.gates == dict(runs_trained=dict(value=0.3, threshold=0.5, ok=False, op='>=',
                                               about=''))
  assert claim.evidence['checks'] == dict(above=True)
  assert 'runs_trained (0.3 >= 0.5 fails)' in claim.notes
  results = dict(paper='999', title='T', variant='cpu', command='c',
                 claims={'999a': reproduce.dataclasses.asdict(claim)}, runs={})
  md = reproduce.render_report(results)
  assert '| runs_trained | 0.3 | >= 0.5 | **no** |' in md
  assert '| above | yes |' in md
  assert md.index('| runs_trained |') < md.index('**Verdict: inconclusive.**')
  assert 'Since the first pass' not in md
  md = reproduce.render_report(dict(results, history='- The regulariser now adds.'))
  assert md.index('## Since the first pass') < md.index('## 999a')
  assert '- The regulariser now adds.' in md


def test_gates_tolerate_missing_values_and_report_escapes_pipes():
  g = reproduce.changed_gate([1.0, None, 1.2], [0.1, 0.2, 0.1])
  assert not g.ok and math.isnan(g.value)
  assert reproduce.changed_gate([2.0, 2.1, 1.9], [1.0, 1.05, 0.95], paired=True).ok
  assert reproduce.finite_gate([1.0, 2.0]).ok
  bad = reproduce.finite_gate([1.0, None, float('inf')])
  assert not bad.ok and bad.value == 2
  results = dict(paper='999', title='T', variant='cpu', command='c', runs={}, claims={
      '999a': dict(claim='C', paper='P', setting='S', criterion='K', verdict='inconclusive',
                   evidence={'checks': {}, 'x': 'a|b'}, figures=[], notes='',
                   gates={'g': dict(value=1.0, threshold=0.0, ok=False, op='<=',
                                    about='|z| of a')})})
  md = reproduce.render_report(results)
  assert '(\\|z\\| of a)' in md and '| x | a\\|b |' in md
