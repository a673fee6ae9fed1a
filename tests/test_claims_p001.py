"""Paper 001's claims on synthetic evidence: each reads reproduced, not reproduced, inconclusive.

The evidence is built by hand in the shape each claim's ``evidence(study)``
returns; no training runs. The last tests read a fake study (the plan's runs
with made-up records) through the claims' tags, and check the plan and the
computed setting text.

The file's last section runs the paper's ``:runlocal`` study end to end
(REPRODUCTIONS.md's contract; `study_contract`).
"""

import dataclasses
import importlib

import numpy as np
import pytest
import study_contract

from nc_jax.studies import reproduce
from nc_jax.studies import spread
from nc_jax.studies.papers import p001_transfer

SPECS = {spec.id: spec for spec in p001_transfer.CLAIMS}
LOSSES = ('mse', 'ce', 'supcon_linear', 'supcon_mlp')


def _assess(cid, ev):
  """`reproduce.assess` (its verdict raises TypeError on a check that is no Python bool)."""
  return reproduce.assess(SPECS[cid], ev)


def _seeds(mean, n=3, step=0.002):
  return [mean + step * (i - 1) for i in range(n)]


def _common(ref=0.87, source=None, nonfinite=()):
  source = dict(source or {})
  source.setdefault('ce_seed0', ref)
  return dict(reference_accuracy=spread.quantity(_seeds(ref)), source_accuracy=source,
              nonfinite=list(nonfinite))


def test_every_claim_has_its_parts_and_criterion_text():
  assert list(SPECS) == ['001a', '001b', '001c', '001d']
  assert not hasattr(p001_transfer, 'analyze') and not hasattr(p001_transfer, 'CRITERIA')
  for spec in p001_transfer.CLAIMS:
    text = spec.criterion_text()  # Every placeholder is a constant.
    assert '{' not in text and 'Gates' in text, spec.id
  spec = dataclasses.replace(SPECS['001c'], constants=dict(SPECS['001c'].constants,
                                                           pearson_max=-0.7))
  assert 'below -0.7 by more than 2' in spec.criterion_text()


# ---------------------------------------------------------------------------
# 001a: the loss table.
# ---------------------------------------------------------------------------

NC1 = dict(mse=0.02, ce=0.70, supcon_linear=0.75, supcon_mlp=0.85)
TRANSFER = dict(mse=0.80, ce=0.86, supcon_linear=0.87, supcon_mlp=0.90)


def _ev_001a(nc1=None, transfer=None, init=3.0, n=3, source=None, **kw):
  nc1, transfer = dict(NC1, **(nc1 or {})), dict(TRANSFER, **(transfer or {}))
  init = init if isinstance(init, dict) else {l: init for l in LOSSES}
  source = source or {f'{l}_seed{s}': 0.87 for l in LOSSES for s in range(n)}
  return dict(losses=list(LOSSES),
              source_nc1={l: spread.quantity(_seeds(nc1[l], n, 0.005)) for l in LOSSES},
              source_nc1_init={l: spread.quantity(_seeds(init[l], n, 0.05)) for l in LOSSES},
              transfer={l: spread.quantity(_seeds(transfer[l], n)) for l in LOSSES},
              **_common(source=source, **kw))


def test_001a_three_verdicts():
  a = _assess('001a', _ev_001a())
  assert a.verdict == 'reproduced' and not a.failed_gates
  # SupCon-MLP transfers no better than SupCon-linear (inside the noise).
  a = _assess('001a', _ev_001a(transfer=dict(supcon_mlp=0.871)))
  assert a.verdict == 'not reproduced'
  assert a.checks['supcon_mlp_best_transfer'] is False and a.checks['mse_worst_transfer']
  # The committed first pass: MSE ended at 0.205 / 0.195 source accuracy, CE 0.87.
  source = {'mse_seed0': 0.205, 'mse_seed1': 0.195, 'mse_seed2': 0.2, 'ce_seed0': 0.87}
  a = _assess('001a', _ev_001a(source=source))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['runs_trained']
  assert a.checks['mse_most_collapsed'] and a.checks['mse_worst_transfer']  # Not read.
  assert a.gates['runs_trained'].value == pytest.approx(0.195 / 0.87)


def test_001a_gates_untrained_networks_seeds_and_nans():
  # NC1 at its value at initialisation: the collapse compared is not the training's.
  init = dict(NC1, mse=3.0, supcon_linear=3.0, supcon_mlp=3.0)
  a = _assess('001a', _ev_001a(init=init))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['nc1_below_init_ce']
  # The reference itself did not train.
  a = _assess('001a', _ev_001a(ref=0.3, source={'ce_seed0': 0.3}))
  assert a.verdict == 'inconclusive' and 'reference_trained' in a.failed_gates
  # Two seeds (the committed first pass): too few to order four losses.
  a = _assess('001a', _ev_001a(n=2))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['seeds']
  # One seed: no noise estimate, neither for the order nor for the drop from init.
  a = _assess('001a', _ev_001a(n=1))
  assert a.verdict == 'inconclusive' and 'seeds' in a.failed_gates
  assert all(v is None for v in a.checks.values())
  a = _assess('001a', _ev_001a(nonfinite=['mse_seed0: source_nc1']))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['finite']


# ---------------------------------------------------------------------------
# 001b: head layers.
# ---------------------------------------------------------------------------


def _ev_001b(ce=((0.70, 0.80, 0.90), (0.86, 0.87, 0.88)),
             mse=((0.02, 0.50, 0.90), (0.80, 0.84, 0.85)),
             supcon=((0.75, 0.85), (0.87, 0.89)), n=3, source=None, **kw):
  group = lambda nc1, acc: dict(source_nc1=[spread.quantity(_seeds(m, n)) for m in nc1],
                                transfer=[spread.quantity(_seeds(m, n)) for m in acc])
  return dict(head_depths=[0, 1, 2], ce=group(*ce), mse=group(*mse),
              supcon=dict(head_layers=[1, 2], **group(*supcon)),
              **_common(source=source, **kw))


def test_001b_three_verdicts():
  a = _assess('001b', _ev_001b())
  assert a.verdict == 'reproduced' and not a.failed_gates
  assert set(a.checks) == {f'{g}_{k}_rises' for g in ('ce', 'mse', 'supcon')
                           for k in ('nc1', 'transfer')}
  # CE's transfer falls with head layers (the committed 0.894 -> 0.865).
  a = _assess('001b', _ev_001b(ce=((0.68, 0.82, 0.85), (0.894, 0.88, 0.865))))
  assert a.verdict == 'not reproduced' and a.checks['ce_transfer_rises'] is False
  # The committed design: one seed per head depth.
  a = _assess('001b', _ev_001b(n=1))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['seeds']


def test_001b_supcon_fall_is_a_python_false_not_a_pass():
  """The first pass compared NumPy means: ``np.False_ is False`` is False, so a fall passed."""
  ev = _ev_001b(supcon=((0.747, 0.829), (0.8895, 0.883)))
  for k in ('source_nc1', 'transfer'):  # NumPy numbers in the evidence.
    ev['supcon'][k] = [dict(q, values=list(np.asarray(q['values'], np.float64)))
                       for q in ev['supcon'][k]]
  a = _assess('001b', ev)
  assert a.checks['supcon_transfer_rises'] is False
  assert a.checks['supcon_nc1_rises'] is True
  assert a.verdict == 'not reproduced'


def test_001b_mse_rise_against_an_untrained_baseline_is_inconclusive():
  # MSE without a head did not train (source 0.2): its NC1 0.02 is no baseline.
  source = {'mse_seed0': 0.205, 'mse_head2': 0.849, 'ce_seed0': 0.87}
  a = _assess('001b', _ev_001b(source=source))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['runs_trained']


# ---------------------------------------------------------------------------
# 001c: downstream NC1 against transfer, the pooled Pearson test.
# ---------------------------------------------------------------------------


def _points(nc1, acc):
  return [dict(downstream_nc1=x, transfer=y) for x, y in zip(nc1, acc)]


def _line(n_points, slope=-1.0, noise=0.0, seed=0):
  """One seed's points: NC1 rising, transfer moving with ``slope`` (plus noise)."""
  rng = np.random.default_rng(seed)
  nc1 = [1.5 + 0.2 * i for i in range(n_points)]
  acc = [0.89 + slope * 0.01 * i + noise * rng.normal() for i in range(n_points)]
  return _points(nc1, acc)


def _ev_001c(models=None, layers=None, n=3, source=None, **kw):
  group = p001_transfer.group_evidence
  models = models or [_line(7, seed=s) for s in range(n)]
  layers = layers or [_line(8, seed=10 + s) for s in range(n)]
  groups = dict(models=group(list(range(7)), models, 'model'),
                layers=group([f'layer{i}' for i in range(8)], layers, 'layer'),
                augmentation=group(list(range(5)), [m[:5] for m in models], 'level'),
                adversarial=group([0, 1, 2], [m[5:] for m in models], 'eps'))
  return dict(groups=groups, tested=['models', 'layers'], seeds=list(range(n)),
              other_targets={}, **_common(source=source, **kw))


def test_pooled_pearson_is_numpys_r_over_every_point():
  rng = np.random.default_rng(3)
  nc1 = rng.uniform(1, 3, (3, 6)).tolist()
  acc = (0.9 - 0.05 * np.asarray(nc1) + rng.normal(0, 0.02, (3, 6))).tolist()
  q = p001_transfer.pooled_pearson(nc1, acc)
  expect = np.corrcoef(np.ravel(nc1), np.ravel(acc))[0, 1]
  assert q['mean'] == pytest.approx(expect, abs=1e-12) and q['n'] == 3
  assert 0 < q['se'] < 0.5
  # Exactly linear points: r = -1 in every resample, so no noise.
  exact = p001_transfer.pooled_pearson([[1, 2, 3], [1.5, 2.5, 3.5]],
                                       [[0.9, 0.8, 0.7], [0.85, 0.75, 0.65]])
  assert exact['mean'] == pytest.approx(-1) and exact['se'] == pytest.approx(0, abs=1e-12)
  # One seed: no resampling spread, no SE (a check reading it cannot tell).
  one = p001_transfer.pooled_pearson([[1, 2, 3]], [[0.9, 0.8, 0.7]])
  assert one['mean'] is None and spread.below(one, -0.5) is None


def test_001c_three_verdicts():
  a = _assess('001c', _ev_001c())
  assert a.verdict == 'reproduced' and not a.failed_gates
  assert a.checks == dict(models_negative=True, layers_negative=True)
  # Transfer rises with downstream NC1 across the models (the first pass's augmentation +0.4).
  a = _assess('001c', _ev_001c(models=[_line(7, slope=+1.0, seed=s) for s in range(3)]))
  assert a.verdict == 'not reproduced' and a.checks['models_negative'] is False
  assert a.checks['layers_negative'] is True
  # The first pass's design: one seed per strength.
  a = _assess('001c', _ev_001c(n=1))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['seeds']
  assert a.checks['models_negative'] is None


def test_001c_a_weak_correlation_inside_its_noise_does_not_pass():
  # r near -0.5 with seed noise as large as the trend: not below -0.5 by 2 SE.
  models = [_line(7, slope=-0.3, noise=0.01, seed=s) for s in range(3)]
  ev = _ev_001c(models=models)
  r = ev['groups']['models']['pearson']
  assert -0.9 < r['mean'] < 0 and r['se'] > 0.05
  a = _assess('001c', ev)
  assert a.checks['models_negative'] is False and a.verdict == 'not reproduced'


def test_001c_a_pgd_run_that_did_not_train_is_inconclusive():
  a = _assess('001c', _ev_001c(source={'pgd8_seed2': 0.3, 'ce_seed0': 0.87}))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['runs_trained']


# ---------------------------------------------------------------------------
# 001d: fine-tuning variants against the L-BFGS probe.
# ---------------------------------------------------------------------------


def _ev_001d(probe=0.86, layer=0.92, scl=0.93, full=0.94, lbfgs=0.88, n=5, step=0.002,
             **kw):
  acc = dict(linear_probe=probe, layer=layer, scl=scl, full=full)
  acc = {v: a if isinstance(a, list) else _seeds(a, n, step) for v, a in acc.items()}
  lbfgs = lbfgs if isinstance(lbfgs, list) else _seeds(lbfgs, n, step)
  q = {v: spread.quantity(a) for v, a in acc.items()}
  return dict(variants=list(acc), seeds=list(range(n)), lbfgs_probe=spread.quantity(lbfgs),
              test_accuracy=q, best_block=dict(linear_probe='', layer='layer1', scl='layer1',
                                               full=''),
              by_block={v: {'': x} for v, x in q.items()}, scl_minus_layer=None, **_common(**kw))


def test_001d_three_verdicts():
  a = _assess('001d', _ev_001d())
  assert a.verdict == 'reproduced' and not a.failed_gates
  # Layer FT only 0.012 above the L-BFGS probe (the first pass's margin): not ">>".
  a = _assess('001d', _ev_001d(layer=0.892, scl=0.90))
  assert a.verdict == 'not reproduced' and a.checks['layer_well_above_probe'] is False
  # Too few pretraining seeds.
  a = _assess('001d', _ev_001d(n=2))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['seeds']


def test_001d_a_tie_inside_the_seed_spread_is_no_pass():
  """The first pass's SCL 0.9125 / 0.903 vs layer FT 0.9085 / 0.904 (three more seeds each,
  inside that spread): its -0.005 tolerance turned the tie into a pass."""
  scl, layer = [0.9125, 0.903, 0.899, 0.905, 0.907], [0.9085, 0.904, 0.910, 0.903, 0.906]
  assert np.mean(scl) >= np.mean(layer) - 0.005  # The first pass's criterion.
  a = _assess('001d', _ev_001d(scl=scl, layer=layer, lbfgs=0.87))
  assert a.checks['scl_above_layer'] is False and a.verdict == 'not reproduced'
  # Paired: a small SCL lead on every seed counts even where the seeds spread widely.
  layer = [0.90, 0.92, 0.94, 0.91, 0.93]
  a = _assess('001d', _ev_001d(layer=layer, scl=[x + 0.004 for x in layer], lbfgs=0.87))
  assert a.checks['scl_above_layer'] is True
  assert spread.exceeds([x + 0.004 for x in layer], layer) is False  # Unpaired: no.


def test_001d_gates_an_untrained_finetune():
  a = _assess('001d', _ev_001d(full=[0.94, 0.12, 0.94, 0.94, 0.94]))  # One near chance.
  assert a.verdict == 'inconclusive' and a.failed_gates == ['finetunes_trained']


# ---------------------------------------------------------------------------
# The MSE rate rule.
# ---------------------------------------------------------------------------


def test_lr_rule_takes_the_lowest_final_loss_among_rates_whose_loss_falls_every_epoch():
  pilots = {0.05: dict(train_loss=[1.0, 0.9, 0.95, 0.05]),   # Rises once: out.
            0.02: dict(train_loss=[1.0, 0.8, 0.6, 0.45]),    # Falls, ends at 0.45.
            0.01: dict(train_loss=[1.0, 0.5, 0.3, 0.2]),     # Falls, ends lowest: chosen.
            0.005: dict(train_loss=[1.0, 0.7, 0.5, 0.3])}
  rate, ok = p001_transfer.lr_rule(pilots, epochs=3)
  assert rate == 0.01 and ok == {0.05: False, 0.02: True, 0.01: True, 0.005: True}
  # The committed pilots: 0.05 stalls at the loss of predicting the class prior (0.375)
  # while falling every epoch, the case the first rule (largest rate, half the initial
  # loss) accepted; 0.02 rises in epoch 3.
  real = {0.05: dict(train_loss=[1.390, 0.3757, 0.3748, 0.3656]),
          0.02: dict(train_loss=[1.390, 0.1098, 0.0880, 0.0981]),
          0.01: dict(train_loss=[1.390, 0.1018, 0.0829, 0.0634]),
          0.005: dict(train_loss=[1.390, 0.1231, 0.0899, 0.0754])}
  assert p001_transfer.lr_rule(real, epochs=3)[0] == 0.01
  nan = {0.05: dict(train_loss=[1.0, float('nan'), 0.1, 0.1])}
  assert p001_transfer.lr_rule(nan, epochs=3) == (None, {0.05: False})
  # A diverged pilot as results.json stores it (the trainer stopped it; NaN as 'nan').
  stored = {0.05: dict(train_loss=[1.0, 0.5, 'nan']), 0.01: dict(train_loss=[1.0, 0.6, 0.4])}
  assert p001_transfer.lr_rule(stored, epochs=2) == (0.01, {0.05: False, 0.01: True})
  short = {0.05: dict(train_loss=[1.0, 0.4])}  # A pilot that stopped early.
  assert p001_transfer.lr_rule(short, epochs=3)[0] is None


# ---------------------------------------------------------------------------
# The claims read a study through tags; the plan and the computed setting.
# ---------------------------------------------------------------------------


def _config(arg=''):
  return importlib.import_module('configs.papers.p001_transfer').get_config(arg)


def _final(run, config):
  """Made-up records that reproduce every claim, a function of the run's tags."""
  t, s = run.all_tags, run.seed
  if t['kind'] == 'lr_rule':  # 0.05 rises; of the others 0.02 ends lowest.
    rate = t['learning_rate']
    loss = [1.0, 0.9, 0.95, 0.9] if rate > 0.03 else [1.0, 0.6, 0.4, 0.3 - rate]
    return dict(learning_rate=rate, epochs=[0, 1, 2, 3], train_loss=loss)
  if t['kind'] == 'finetune':
    acc = dict(linear_probe=0.86, layer=0.92, scl=0.93, full=0.94)[t['variant']]
    acc += 0.005 * (t['block'] == 'layer2')
    return dict(test_accuracy=acc + 0.001 * s, train_accuracy=1.0, train_loss=0.01,
                trained_params=1)
  da = t['aug'] - config.base_aug
  primary = dict(transfer=(TRANSFER[t['loss']] + 0.01 * t['head_depth'] + 0.01 * da
                           - 3 * t['adv_eps'] + 0.001 * s),
                 downstream_nc1=1.8 - 0.1 * da + 50 * t['adv_eps'] + 0.01 * s)
  out = dict(test_accuracy=0.87 + 0.001 * s, train_accuracy=0.9, train_loss=0.3,
             layer='pre_head' if t['head_depth'] else 'penultimate',
             source_nc1=NC1[t['loss']] + 0.1 * t['head_depth'] + 0.002 * s,
             source_nc1_init=3.0 + 0.01 * s, **primary,
             targets={'fmnist_fine': primary, 'mnist': dict(transfer=0.9, downstream_nc1=1.0)})
  if t['net'] == 'deep':
    out['by_layer'] = {l: dict(transfer=0.89 - 0.01 * i + 0.001 * s,
                               downstream_nc1=1.5 + 0.2 * i, source_nc1=0.5,
                               source_nc1_init=None)
                       for i, l in enumerate(['layer1', 'layer2', 'penultimate'])}
  return out


def test_claims_read_runs_through_tags(tmp_path):
  config = _config()
  runs = p001_transfer.plan(config, str(tmp_path))
  records = {r.name: dict(final=_final(r, config)) for r in runs}
  study = reproduce.Study(config=config, workdir=str(tmp_path), runs=runs, records=records)
  claims = {spec.id: reproduce.judge(spec, study) for spec in p001_transfer.CLAIMS}
  assert {c: v.verdict for c, v in claims.items()} == dict.fromkeys(SPECS, 'reproduced')
  for c in claims.values():
    for fig in c.figures:
      assert (tmp_path / fig).exists(), fig
  ev = claims['001c'].evidence
  assert ev['groups']['layers']['x'] == ['layer1', 'layer2', 'penultimate']
  assert ev['groups']['models']['x'] == ['aug none', 'aug crop', 'aug flip', 'aug jitter',
                                         'aug erase', 'PGD 2/255', 'PGD 4/255', 'PGD 8/255']
  assert len(ev['groups']['models']['downstream_nc1']) == 3
  ev = claims['001d'].evidence
  assert ev['best_block'] == dict(linear_probe='', layer='layer2', scl='layer2', full='')
  assert ev['lbfgs_probe']['n'] == 5 and ev['test_accuracy']['scl']['n'] == 5
  assert ev['scl_minus_layer']['mean'] == pytest.approx(0.01)
  assert claims['001b'].evidence['ce']['source_nc1'][3]['n'] == 3
  ev = claims['001a'].evidence
  assert ev['mse_rule']['chosen'] == 0.02
  assert ev['transfer_by_target']['mnist']['ce']['mean'] == pytest.approx(0.9)
  assert 'rate by the rule: 0.02' in SPECS['001a'].notes(ev, config)
  # MSE did not train: the claims that read MSE turn inconclusive, the others do not.
  for s in config.seeds:
    records[f'mse_seed{s}']['final']['test_accuracy'] = 0.2
  again = {spec.id: reproduce.assess(spec, spec.evidence(study)) for spec in p001_transfer.CLAIMS}
  assert {c: a.verdict for c, a in again.items()} == {
      '001a': 'inconclusive', '001b': 'inconclusive', '001c': 'reproduced',
      '001d': 'reproduced'}
  assert again['001a'].failed_gates == again['001b'].failed_gates == ['runs_trained']
  ev = SPECS['001a'].evidence(study)
  assert 'mse_seed0 (0.200)' in SPECS['001a'].notes(ev, config)
  # A non-finite probe on the second target is caught by the finite gate.
  records['ce_seed0']['final']['targets']['mnist']['transfer'] = float('nan')
  a = reproduce.assess(SPECS['001c'], SPECS['001c'].evidence(study))
  assert 'finite' in a.failed_gates


def test_mse_runs_train_at_the_rules_rate(tmp_path):
  config = _config('runlocal')
  runs = {r.name: r for r in p001_transfer.plan(config, str(tmp_path))}
  mse = runs['mse_seed0']
  assert set(mse.deps) == {p001_transfer.rule_name(r) for r in config.mse_lr_grid}
  assert mse.config.optimizer.learning_rate == min(config.mse_lr_grid)  # Until the rule.
  assert 'rate rule' in mse.overrides['optimizer.learning_rate']  # What results.json says.
  for rate in config.mse_lr_grid:  # Pilots as they would finish: 0.05 ends lowest.
    loss = [1.0, 0.4] if rate == 0.05 else [1.0, 0.9]
    rdir = tmp_path / 'runs' / p001_transfer.rule_name(rate)
    rdir.mkdir(parents=True)
    (rdir / 'run.json').write_text(
        '{"final": {"train_loss": %s}}' % loss)
  assert p001_transfer.chosen_mse_rate(config, str(tmp_path)) == 0.05
  seen = {}

  def fake_train(run, rdir):
    seen['rate'] = run.config.optimizer.learning_rate
    return dict(test_accuracy=0.9)

  wrapped = p001_transfer.at_rule_rate(config, fake_train)
  out = wrapped(mse, str(tmp_path / 'runs' / 'mse_seed0'))
  assert seen['rate'] == 0.05 and out['learning_rate'] == 0.05


def test_plan_tags_every_run_and_gives_every_group_its_seeds():
  config = _config()
  runs = p001_transfer.plan(config, '/tmp/nowhere')
  # 4 pilots; 4 losses, 3 + 3 head depths, 4 ladder levels, 3 PGD radii, deep: x 3 seeds;
  # CE for seeds 3, 4; 6 fine-tunings x 5 seeds.
  assert len(runs) == 4 + 3 * (4 + 6 + 4 + 3 + 1) + 2 + 6 * 5
  assert len({r.name for r in runs}) == len(runs)
  study = reproduce.Study(config=config, workdir='', runs=runs,
                          records={r.name: dict(final={}) for r in runs})
  coords = lambda **kw: p001_transfer.coords(config, **kw)
  groups = ([coords(loss=l, head_depth=d) for l in ('ce', 'mse') for d in (1, 2, 3)] +
            [coords(loss=l) for l in LOSSES if l != 'ce'] +
            [coords(aug=k) for k in range(5) if k != config.base_aug] +
            [coords(adv_eps=e) for e in config.adv_eps if e] + [coords(net='deep')])
  for tags in groups:
    assert sorted(r.seed for r in study.where(**tags)) == [0, 1, 2], tags
  assert sorted(r.seed for r in study.where(**coords())) == [0, 1, 2, 3, 4]
  for v, blocks in (('linear_probe', ['']), ('layer', ['layer1', 'layer2']),
                    ('scl', ['layer1', 'layer2']), ('full', [''])):
    for b in blocks:
      found = [r for r in runs if r.matches(kind='finetune', variant=v, block=b)]
      assert sorted(r.seed for r in found) == [0, 1, 2, 3, 4], (v, b)
      assert all(r.deps == (f'ce_seed{r.seed}',) for r in found)
  by_name = {r.name: r for r in runs}
  run_config = lambda seed=0, **tags: by_name[study.one(**coords(**tags), seed=seed).name].config
  assert study.one(**coords(aug=0), seed=1).name == 'aug_none_seed1'
  assert study.one(**coords(adv_eps=8 / 255), seed=0).name == 'pgd8_seed0'
  pgd = run_config(adv_eps=2 / 255).augment
  assert pgd.adversarial_steps == 3 and pgd.adversarial_eps == pytest.approx(2 / 255)
  erase = run_config(aug=4).augment
  assert (erase.crop_padding, erase.flip, erase.jitter, erase.erase) == (2, True, 0.4, 0.5)
  none = run_config(aug=0).augment
  assert (none.crop_padding, none.flip, none.jitter, none.erase) == (0, False, 0.0, 0.0)
  sc = run_config(loss='supcon_mlp')
  assert sc.num_epochs == 2 * config.pretrain.num_epochs and sc.augment.erase == 0.5
  assert sc.loss.kwargs.temperature == 0.1
  assert run_config().data.label_map == 'table:0,1,0,1,0,2,0,2,3,2'
  from nc_jax import train  # pylint: disable=g-import-not-at-top
  for arg in ('', 'runlocal', 'gpu'):  # Every trainer config of every variant is valid.
    for run in p001_transfer.plan(_config(arg), '/tmp/nowhere'):
      train.check_config(run.config)
  local = p001_transfer.plan(_config('runlocal'), '/tmp/nowhere')
  assert [r.name for r in local] == [
      'mse_lr_rule_lr0.05', 'mse_lr_rule_lr0.01', 'ce_seed0', 'mse_seed0',
      'supcon_linear_seed0', 'supcon_mlp_seed0', 'ce_head1_seed0', 'mse_head1_seed0',
      'aug_none_seed0', 'pgd4_seed0', 'deep_seed0',
      'ft_linear_probe_seed0', 'ft_layer_layer1_seed0', 'ft_scl_layer1_seed0',
      'ft_full_seed0']


def test_setting_is_computed_from_the_variants_config():
  plain, local = _config(), _config('runlocal')
  for spec in p001_transfer.CLAIMS:
    assert spec.setting(plain) != spec.setting(local), spec.id
  a_plain, a_local = SPECS['001a'].setting(plain), SPECS['001a'].setting(local)
  assert '20 epochs' in a_plain and 'Fashion-MNIST, 2,500 training images per class' in a_plain
  assert 'grouping classes 0/2/4/6, 1/3, 5/7/9, 8' in a_plain
  assert 'probe fit on test[:5000], 200 per class, tested on test[5000:]' in a_plain
  assert 'MSE at the rate of {0.05, 0.02, 0.01, 0.005} whose pilot' in a_plain
  assert 'SupCon: temperature 0.1, two views of crop (padding 2), flip' in a_plain
  assert 'random erasing (p 0.5), 40 epochs' in a_plain
  assert 'seeds 0, 1, 2' in a_plain
  assert '2 epochs' in a_local and '20 epochs' not in a_local and 'seed 0.' in a_local
  assert 'MLP 3 x 32' in a_local and '75 training images per class' in a_local
  assert 'ResNet-18' in SPECS['001a'].setting(_config('gpu'))
  c_plain = SPECS['001c'].setting(plain)
  assert '0 none: no augmentation; 1 crop: crop (padding 2);' in c_plain
  assert '4 erase: crop (padding 2), flip, brightness/contrast jitter 0.4, random erasing' in c_plain
  assert 'PGD training (3 steps) at eps 2/255, 4/255, 8/255' in c_plain
  d_plain, d_local = SPECS['001d'].setting(plain), SPECS['001d'].setting(local)
  assert 'seeds 0, 1, 2, 3, 4' in d_plain and 'blocks layer1, layer2' in d_plain
  assert 'test images from index 5,000 on' in d_plain
  assert '2 epochs' in d_local


# ---------------------------------------------------------------------------
# The :runlocal study end to end (REPRODUCTIONS.md's contract).
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_p001_runlocal_writes_the_contract(tmp_path):
  config = study_contract.paper_config('p001_transfer')
  results = reproduce.reproduce(config, str(tmp_path), command='test', say=lambda _: None)
  study_contract.check_claims(results, tmp_path, ('001a', '001b', '001c', '001d'))
  runs = results['runs']
  # Transfer reads the pre-head features when a classifier-side head is present.
  assert runs['ce_head1_seed0']['final']['layer'] == 'pre_head'
  assert runs['ce_seed0']['final']['layer'] == 'penultimate'
  assert set(runs['ce_seed0']['final']['targets']) == set(config.targets) == {'fmnist_fine'}
  # The MSE runs trained at the rule's rate, which the pilots' records decide.
  rule = results['claims']['001a']['evidence']['mse_rule']
  rate = rule['chosen'] if rule['chosen'] is not None else min(config.mse_lr_grid)
  assert runs['mse_seed0']['final']['learning_rate'] == rate
  # The linear probe variant trains the new head only (32 x 10 + 10).
  assert runs['ft_linear_probe_seed0']['final']['trained_params'] == 32 * 10 + 10
