"""Paper 002's claims on synthetic evidence: gates, typed checks, verdicts.

For every claim: one case that must read "reproduced", one "not reproduced",
one "inconclusive" through a named gate; then the failures issue 20 names for
this paper (runs that never collapsed, one pretraining seed, an untrained
network, NumPy bools), and the evidence read from runs by their tags only.

The file's last section runs the paper's ``:runlocal`` study end to end
(REPRODUCTIONS.md's contract; `study_contract`).
"""

import json
import dataclasses

import numpy as np
import pytest
import study_contract

from configs.papers import p002_limits as config_lib
from nc_jax.studies import reproduce
from nc_jax.studies import spread
from nc_jax.studies.papers import p002_limits as p002

SPECS = {s.id: s for s in p002.CLAIMS}


def q(*values):
  """Per-seed values as the study's evidence holds them (`spread.quantity`)."""
  return spread.quantity(values)


def assess(cid, ev):
  """`reproduce.assess`, which raises TypeError on a check that is not a bool or None."""
  return reproduce.assess(SPECS[cid], ev)


CHOSEN = config_lib.CHOSEN


def prestudy(chosen_by_rule=CHOSEN, chosen_in_config=CHOSEN):
  """The pre-study's evidence as `criteria.prestudy_evidence` writes it."""
  return dict(rows=[], chosen_by_rule=chosen_by_rule, chosen_in_config=chosen_in_config)


def test_claims_keep_their_ids_and_criteria_are_formatted_from_the_constants():
  assert list(SPECS) == ['002a', '002b', '002c', '002d']
  for spec in p002.CLAIMS:
    text = spec.criterion_text()
    assert '{' not in text and '}' not in text, spec.id
    assert str(spec.constants['collapse_max']) in text, spec.id
    assert 'pre-study' in text and 'no test number was read' in text, spec.id
  assert '5 x the train variance' in SPECS['002a'].criterion_text()
  assert '0.5 x the train variance\'s decades' in SPECS['002a'].criterion_text()
  assert '0.8' in SPECS['002b'].criterion_text()
  assert 'exceeds 0.5 by > 2 SE' in SPECS['002c'].criterion_text()
  assert 'span >= 100x' in SPECS['002c'].criterion_text()
  # The thresholds fixed before the first run, and before the second pass (issue 24).
  assert p002.CRITERIA['gap_min'] == 5.0 and p002.CRITERIA['size_rho_min'] == 0.8
  assert p002.CRITERIA['transfer_rho_min'] == 0.5 and p002.CRITERIA['level_ratio'] == 0.5
  assert p002.CRITERIA['span_min'] == 100.0 and p002.CRITERIA['collapse_fall'] == 0.1
  assert p002.COLLAPSE_MAX == 0.1 and p002.COLLAPSE_FALL == 0.1


# ---------------------------------------------------------------------------
# The pre-study's rule.
# ---------------------------------------------------------------------------


def row(setting, acc=1.0, tv=0.5, diverged=False):
  return dict(setting=setting, train_accuracy=acc, final_train_variance=tv, diverged=diverged)


def test_the_rule_chooses_the_smallest_train_variance_among_runs_that_fitted():
  rows = [row('a', tv=1.4), row('b', tv=0.3), row('c', acc=0.9, tv=0.01),
          row('d', tv=None, acc=None, diverged=True), row('e', tv=0.05)]
  assert p002.choose(rows) == 'e'  # 'c' is lower but never fitted; 'd' diverged.
  assert p002.choose([row('a', tv=0.2), row('b', tv=0.2)]) == 'a'  # Ties: listed first.
  assert p002.choose([row('a', acc=0.5), row('b', diverged=True)]) is None
  assert p002.choose([row('a', tv=float('nan')), row('b', tv=0.9)]) == 'b'


def test_a_setting_the_rule_did_not_choose_is_inconclusive():
  a = assess('002a', ev_002a(prestudy=prestudy(chosen_by_rule='first_pass')))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['setting_chosen_by_rule']
  a = assess('002b', ev_002b(prestudy=prestudy(chosen_by_rule=None)))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['setting_chosen_by_rule']


def test_the_configs_setting_is_a_candidate_and_the_pre_study_runs_at_its_own_seed():
  config = config_lib.get_config('')
  pre = config.prestudy
  assert pre.chosen in pre.order and set(pre.order) == set(pre.candidates)
  assert pre.seed not in config.cascade_seeds + config.size_seeds
  runs = [r for r in p002.plan(config, '/tmp/nowhere') if r.tags['kind'] == 'prestudy']
  assert [r.tags['setting'] for r in runs] == list(pre.order)
  assert {r.seed for r in runs} == {pre.seed}
  by = {r.tags['setting']: r.config for r in runs}
  for name, cand in config_lib.CANDIDATES.items():
    assert by[name].optimizer.learning_rate == cand['learning_rate']
    assert by[name].optimizer.weight_decay == cand['weight_decay']
    assert (by[name].model.kwargs.get('norm') or '') == cand['norm']
  # The study's runs are in the chosen setting.
  chosen = config_lib.CANDIDATES[pre.chosen]
  for t in (config.cascade, config.size, config.transfer.mnist.pretrain,
            config.transfer.mnist.finetune):
    assert t.optimizer.weight_decay == chosen['weight_decay']
    assert (t.model.kwargs.get('norm') or '') == chosen['norm']


# ---------------------------------------------------------------------------
# 002a: train collapse without test collapse.
# ---------------------------------------------------------------------------


def _decades(fit, end):
  return q(*[float(np.log10(a / b)) for a, b in zip(fit, end)])


def ev_002a(train=((1.5, 1.6, 1.4), (0.010, 0.012, 0.011)),
            strong=((1.6, 1.7, 1.5), (1.2, 1.25, 1.1)),
            weak=((1.3, 1.4, 1.2), (1.0, 1.05, 0.95)), **changes):
  ev = dict(
      layer='penultimate', seeds=[0, 1, 2], prestudy=prestudy(),
      train_accuracy=q(1.0, 1.0, 1.0), test_accuracy=q(0.95, 0.94, 0.96),
      fit_epoch=[8, 8, 12], fit_train_variance=q(*train[0]),
      fit_checkpoint_epoch=[8, 8, 16], end_epoch=[256] * 3,
      train_variance_init=q(5.0, 5.2, 4.9))
  for name, (fit, end) in (('train', train), ('strong_test', strong), ('weak_test', weak)):
    ev[f'{name}_variance_at_fit'] = q(*fit)
    ev[f'{name}_variance_end'] = q(*end)
    ev[f'{name}_decades_fallen'] = _decades(fit, end)
  ev.update(changes)
  return ev


def test_002a_reproduced():
  a = assess('002a', ev_002a())
  assert a.verdict == 'reproduced', (a.checks, a.failed_gates)
  assert set(a.gates) == {'setting_chosen_by_rule', 'seeds', 'runs_fitted', 'runs_trained',
                          'finite', 'train_collapse', 'train_collapse_from_fit',
                          'train_variance_fell'}
  assert set(a.checks) == {'strong_test_far_above_train', 'strong_test_levels_off',
                           'weak_test_far_above_train', 'weak_test_levels_off'}


def test_002a_not_reproduced_when_the_test_variance_collapses_with_the_train_variance():
  a = assess('002a', ev_002a(strong=((1.6, 1.7, 1.5), (0.03, 0.04, 0.035))))
  assert a.verdict == 'not reproduced' and not a.failed_gates
  assert a.checks['strong_test_far_above_train'] is False
  assert a.checks['strong_test_levels_off'] is False
  assert a.checks['weak_test_far_above_train'] is True
  assert a.checks['weak_test_levels_off'] is True


def test_002a_a_test_variance_falling_half_as_many_decades_does_not_level_off():
  # Train falls 2.2 decades; the weak test variance 1.2 (> half): not levelled off,
  # though it stays far above the train variance.
  a = assess('002a', ev_002a(weak=((1.3, 1.4, 1.2), (0.08, 0.09, 0.07))))
  assert a.checks['weak_test_far_above_train'] is True
  assert a.checks['weak_test_levels_off'] is False
  assert a.verdict == 'not reproduced'


def test_002a_inconclusive_when_a_run_did_not_fit_its_training_set():
  a = assess('002a', ev_002a(train_accuracy=q(1.0, 0.62, 1.0)))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['runs_fitted']
  assert a.gates['runs_fitted'].value == pytest.approx(0.62)


def test_002a_committed_first_pass_reads_inconclusive_no_train_collapse():
  # The first pass: the last hidden layer ends at 1.25 / 1.41, fitted at ~1.7.
  ev = ev_002a(train=((1.69, 1.75, 1.7), (1.245, 1.407, 1.3)),
               strong=((1.6, 1.7, 1.65), (1.47, 1.63, 1.5)),
               weak=((1.4, 1.5, 1.45), (1.28, 1.40, 1.3)))
  a = assess('002a', ev)
  assert a.verdict == 'inconclusive'
  assert {'train_collapse', 'train_collapse_from_fit'} <= set(a.failed_gates)
  assert a.gates['train_collapse'].value == pytest.approx(1.407)


def test_002a_small_but_not_fallen_since_the_fit_is_inconclusive():
  # Already 0.08 when first fitted, 0.05 at the end: small, but no terminal-phase collapse.
  a = assess('002a', ev_002a(train=((0.08, 0.09, 0.085), (0.05, 0.06, 0.055))))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['train_collapse_from_fit']


def test_002a_an_untrained_network_cannot_pass():
  # Variances that never moved from initialisation: the fall from initialisation fails.
  a = assess('002a', ev_002a(train_variance_init=q(0.010, 0.012, 0.011)))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['train_variance_fell']


def test_002a_one_seed_is_inconclusive_and_no_check_passes_on_it():
  one = {k: (q(v['values'][0]) if isinstance(v, dict) and 'values' in v else v)
         for k, v in ev_002a().items()}
  a = assess('002a', one)
  assert a.verdict == 'inconclusive' and 'seeds' in a.failed_gates
  assert set(a.checks.values()) == {None}  # One seed: no spread, no difference counted.


def test_002a_a_difference_inside_the_noise_does_not_count():
  # Mean strong test variance 5.7 x the train variance, but one seed below 5 x:
  # the paired difference is not 2 SE above zero.
  a = assess('002a', ev_002a(train=((1.5, 1.5, 1.5), (0.1, 0.1, 0.1)),
                             strong=((1.6, 1.7, 1.5), (0.45, 0.6, 0.66))))
  assert a.checks['strong_test_far_above_train'] is False


# ---------------------------------------------------------------------------
# 002b: more data, weaker train collapse, stronger test collapse.
# ---------------------------------------------------------------------------


def ev_002b(tv=None, st=None, fit=None, **changes):
  tv = tv or [(0.010, 0.011, 0.012), (0.020, 0.021, 0.019), (0.040, 0.042, 0.041),
              (0.080, 0.078, 0.082)]
  st = st or [(0.90, 0.92, 0.88), (0.70, 0.72, 0.69), (0.50, 0.52, 0.51), (0.30, 0.31, 0.29)]
  fit = fit or [[1.5] * 3] * 4
  ev = dict(sizes=[500, 1000, 2000, 4000], images_seen=256_000, prestudy=prestudy(),
            train_variance=[q(*v) for v in tv], strong_test_variance=[q(*v) for v in st],
            train_accuracy=[q(1.0, 1.0, 1.0)] * 4, test_accuracy=[q(0.8, 0.81, 0.82)] * 4,
            fit_train_variance=fit, fit_epoch=[[8] * 3] * 4, epochs=[[64] * 3] * 4)
  ev.update(changes)
  return ev


def test_002b_reproduced():
  a = assess('002b', ev_002b())
  assert a.verdict == 'reproduced', (a.checks, a.failed_gates)


def test_002b_not_reproduced_when_test_collapse_weakens_with_size():
  st = [(0.70, 0.72, 0.69), (0.72, 0.73, 0.71), (0.80, 0.82, 0.81), (0.88, 0.90, 0.89)]
  a = assess('002b', ev_002b(st=st))
  assert a.verdict == 'not reproduced' and not a.failed_gates
  assert a.checks['test_variance_falls_with_size'] is False
  assert a.checks['train_variance_rises_with_size'] is True


def test_002b_inconclusive_when_a_run_never_fitted_its_training_set():
  # A run that never fitted has no value at the fit: no ratio, the gate fails.
  fit = [[1.5] * 3, [1.5, None, 1.5]] + [[1.5] * 3] * 2
  a = assess('002b', ev_002b(fit=fit))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['train_collapse_from_fit']


def test_002b_committed_first_pass_reads_inconclusive_no_train_collapse():
  # Train variance 0.65-0.81 at the end (first pass, 2 seeds): never collapsed.
  tv = [(0.666, 0.672), (0.648, 0.676), (0.725, 0.709), (0.813, 0.809)]
  st = [(0.770, 0.796), (0.725, 0.796), (0.824, 0.822), (0.885, 0.904)]
  a = assess('002b', ev_002b(tv=tv, st=st, fit=[[1.5] * 2] * 4))
  assert a.verdict == 'inconclusive'
  assert {'train_collapse', 'seeds'} <= set(a.failed_gates)


def test_002b_a_rank_correlation_of_means_inside_the_noise_is_not_a_trend():
  # Seed means rise monotonically (Spearman 1) but the end points overlap.
  tv = [(0.01, 0.05, 0.03), (0.02, 0.05, 0.03), (0.02, 0.06, 0.03), (0.01, 0.07, 0.04)]
  a = assess('002b', ev_002b(tv=tv))
  assert a.checks['train_variance_rises_with_size'] is True
  assert a.checks['train_variance_largest_exceeds_smallest'] is False
  assert a.verdict == 'not reproduced'


# ---------------------------------------------------------------------------
# 002c: more collapse in the pretraining, worse transfer.
# ---------------------------------------------------------------------------


def ev_002c(rhos=(0.9, 0.8, 1.0), prestudy_ev=None, **changes):
  n = len(rhos)
  group = dict(seeds=list(range(n)), chains=[],
               spearman=q(*rhos), probe_spearman=q(*rhos),
               span=q(*[300.0 + i for i in range(n)]),
               fit_train_variance=q(*[2.0] * n),
               pretrain_train_accuracy=q(*[1.0] * n),
               most_collapsed_train_variance=q(*[0.02 + 0.01 * i for i in range(n)]),
               selected_test_accuracy=q(*[0.87, 0.86, 0.88, 0.85] * n),
               selected_train_accuracy=q(*[1.0] * 4 * n),
               checkpoints_without_a_run=0)
  group.update(changes)
  return dict(prestudy=prestudy_ev or prestudy(), mnist=group)


def test_002c_reproduced():
  a = assess('002c', ev_002c())
  assert a.verdict == 'reproduced', (a.checks, a.failed_gates)
  assert a.checks == {'mnist_more_collapse_worse_transfer': True}


def test_002c_not_reproduced_when_transfer_does_not_follow_collapse():
  a = assess('002c', ev_002c(rhos=(-0.2, 0.1, 0.0)))
  assert a.verdict == 'not reproduced' and not a.failed_gates


def test_002c_inconclusive_when_every_learning_rate_of_a_checkpoint_diverged():
  a = assess('002c', ev_002c(checkpoints_without_a_run=1))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['mnist_every_checkpoint_fine_tuned']


def test_002c_one_pretraining_seed_is_inconclusive():
  # The first pass: one chain, Spearman -0.086 over its checkpoints.
  a = assess('002c', ev_002c(rhos=(-0.086,), most_collapsed_train_variance=q(0.05)))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['mnist_seeds']
  assert a.checks['mnist_more_collapse_worse_transfer'] is None
  # Even a perfect correlation on one seed does not count.
  assert assess('002c', ev_002c(rhos=(1.0,))).verdict == 'inconclusive'


def test_002c_checkpoints_that_never_collapsed_are_inconclusive():
  # The first pass's parity checkpoints: 17.2 -> 5.6 (K = 2, no collapse).
  a = assess('002c', ev_002c(most_collapsed_train_variance=q(5.62, 5.4, 5.9),
                             fit_train_variance=q(7.9, 7.5, 8.0), span=q(3.1, 3.0, 3.2)))
  assert a.verdict == 'inconclusive'
  assert set(a.failed_gates) == {'mnist_train_collapse', 'mnist_train_collapse_from_fit',
                                 'mnist_checkpoints_span'}


def test_002c_checkpoints_within_one_decade_are_inconclusive():
  a = assess('002c', ev_002c(span=q(300.0, 40.0, 500.0)))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['mnist_checkpoints_span']
  assert a.gates['mnist_checkpoints_span'].value == pytest.approx(40.0)


def test_002c_inconclusive_when_a_chosen_fine_tuning_run_did_not_converge():
  a = assess('002c', ev_002c(selected_train_accuracy=q(*[1.0] * 11, 0.93)))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['mnist_fine_tuning_converged']


def test_002c_reads_the_pre_study():
  a = assess('002c', ev_002c(prestudy_ev=prestudy(chosen_in_config='wd')))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['setting_chosen_by_rule']


def test_002c_a_mean_correlation_inside_its_noise_does_not_pass():
  # Mean 0.6 >= 0.5, but its SE (0.2) puts 0.5 well inside the noise.
  a = assess('002c', ev_002c(rhos=(0.2, 0.8, 0.8)))
  assert a.checks['mnist_more_collapse_worse_transfer'] is False


# ---------------------------------------------------------------------------
# 002d: cascading collapse.
# ---------------------------------------------------------------------------

LAYERS = ['layer1', 'layer2', 'penultimate']


def ev_002d(end=None, collapse=None, init=None, **changes):
  end = end or dict(layer1=(0.50, 0.55, 0.52), layer2=(0.10, 0.12, 0.11),
                    penultimate=(0.010, 0.012, 0.011))
  init = init or dict(layer1=(3.0, 3.1, 2.9), layer2=(4.0, 4.2, 3.9),
                      penultimate=(5.0, 5.2, 4.9))
  collapse = collapse or dict(layer1=[None, None, 200], layer2=[60, 100, 100],
                              penultimate=[20, 24, 40])
  ev = dict(layers=LAYERS, seeds=[0, 1, 2], prestudy=prestudy(),
            train_accuracy=q(1.0, 1.0, 1.0), test_accuracy=q(0.95, 0.94, 0.96),
            fit_epoch=[8, 8, 12], fit_train_variance=q(1.5, 1.6, 1.4),
            train_variance_init={l: q(*v) for l, v in init.items()},
            train_variance_end={l: q(*v) for l, v in end.items()},
            collapse_epoch=collapse)
  ev.update(changes)
  return ev


def test_002d_reproduced():
  a = assess('002d', ev_002d())
  assert a.verdict == 'reproduced', (a.checks, a.failed_gates)


def test_002d_not_reproduced_when_an_earlier_layer_collapses_first():
  a = assess('002d', ev_002d(collapse=dict(layer1=[None, None, 200], layer2=[60, 20, 100],
                                           penultimate=[20, 24, 40])))
  assert a.verdict == 'not reproduced' and not a.failed_gates
  assert a.checks == {'last_layer_furthest': True, 'collapse_in_cascade_order': False}
  # A last layer that never collapses is not first either.
  a = assess('002d', ev_002d(collapse=dict(layer1=[None] * 3, layer2=[None] * 3,
                                           penultimate=[None, 24, 40])))
  assert a.checks['collapse_in_cascade_order'] is False
  # The first layer before the middle one breaks the order too.
  a = assess('002d', ev_002d(collapse=dict(layer1=[40, None, 200], layer2=[60, 100, 100],
                                           penultimate=[20, 24, 40])))
  assert a.checks['collapse_in_cascade_order'] is False


def test_002d_inconclusive_when_a_run_did_not_learn():
  a = assess('002d', ev_002d(test_accuracy=q(0.95, 0.11, 0.96)))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['runs_trained']


def test_002d_committed_first_pass_reads_inconclusive_not_reproduced():
  # The first pass read "reproduced": the last layer lowest (1.25 / 1.41) and
  # first to halve, but nothing collapsed.
  ev = ev_002d(end=dict(layer1=(3.17, 3.41, 3.3), layer2=(2.13, 2.36, 2.2),
                        penultimate=(1.245, 1.407, 1.3)),
               init=dict(layer1=(6.0, 6.3, 6.1), layer2=(7.0, 7.2, 7.1),
                         penultimate=(8.0, 8.3, 8.1)),
               fit_train_variance=q(1.69, 1.75, 1.7),
               collapse=dict(layer1=[None] * 3, layer2=[None] * 3, penultimate=[None] * 3))
  a = assess('002d', ev)
  assert a.checks == {'last_layer_furthest': True, 'collapse_in_cascade_order': False}
  assert a.verdict == 'inconclusive'
  assert set(a.failed_gates) == {'train_collapse', 'train_collapse_from_fit'}


def test_002d_an_order_inside_the_noise_is_not_an_order():
  a = assess('002d', ev_002d(end=dict(layer1=(0.50, 0.55, 0.52), layer2=(0.012, 0.013, 0.09),
                                      penultimate=(0.010, 0.012, 0.011))))
  assert a.checks['last_layer_furthest'] is False


def test_002d_an_untrained_network_cannot_pass():
  same = dict(layer1=(0.5, 0.55, 0.52), layer2=(0.1, 0.12, 0.11),
              penultimate=(0.010, 0.012, 0.011))
  a = assess('002d', ev_002d(end=same, init=same))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['train_variance_fell']


# ---------------------------------------------------------------------------
# Typed checks, and evidence read through the runs' tags.
# ---------------------------------------------------------------------------


def test_numpy_numbers_in_the_evidence_still_give_python_bools():
  def np_q(d):
    return dict(d, values=[np.float64(v) for v in d['values']])
  ev = ev_002a()
  ev = {k: np_q(v) if isinstance(v, dict) and 'values' in v else v for k, v in ev.items()}
  assert assess('002a', ev).verdict == 'reproduced'  # A NumPy bool check would raise.
  tv = [(0.010, 0.011, 0.012), (0.020, 0.021, 0.019), (0.040, 0.042, 0.041),
        (0.080, 0.078, 0.082)]
  ev = ev_002b()
  ev['train_variance'] = [np_q(q(*np.float32(v))) for v in tv]
  assert assess('002b', ev).verdict == 'reproduced'


def test_a_missing_or_nan_number_is_inconclusive_not_a_crash():
  ev = ev_002a(weak_test_variance_end=q(0.8, float('nan'), 0.7))
  a = assess('002a', ev)
  assert a.verdict == 'inconclusive' and a.failed_gates == ['finite']
  assert a.checks['weak_test_far_above_train'] is None


def _final(run, seed, config):
  """Synthetic final numbers of a run, in the study's regime, chosen by its tags."""
  t, e = run.tags, [0, 1, 2, 4, 8, 16, 32, 64, 128, 256]
  jitter = 1 + 0.03 * seed
  if t['kind'] == 'prestudy':
    tv = 0.01 if t['setting'] == config.prestudy.chosen else 0.5
    return dict(train_accuracy=1.0, test_accuracy=0.9, final_train_variance=tv,
                fit_epoch=8, fit_train_variance=1.5, diverged=False)
  if t['kind'] == 'cascade':
    # Train variances 5 at initialisation, 1.5 when fitted (epoch 8), then falling
    # to their end value; the test variances fall little after the fit.
    curve = lambda end: [5.0, 4.0, 3.0, 2.0, 1.5] + list(np.geomspace(1.0, end * jitter, 5))
    out = dict(epochs=e, train_accuracy=1.0, test_accuracy=0.95, train_loss=1e-3,
               fit_epoch=8, fit_train_variance=1.5,
               strong_test_variance_final_means=[2.0] * 5 + [1.2 * jitter] * 5,
               weak_test_variance_final_means=[1.8] * 5 + [1.0 * jitter] * 5)
    ee = list(range(0, 257, 4))
    out.update(eval_epochs=ee, eval_train_accuracy=[min(1.0, 0.1 + i / 8) for i in ee])
    for l, end, at in zip(LAYERS, (0.5, 0.1, 0.001), (None, 100, 20)):
      out[f'train_variance_{l}'] = out[f'train_variance_final_means_{l}'] = curve(end)
      # Per evaluation: 1.5 until the layer's collapse epoch, then 0.1 x that.
      out[f'eval_train_variance_{l}'] = [1.5 if at is None or i < at else 0.1 for i in ee]
    return out
  if t['kind'] == 'size':
    x = np.log2(t['train_size'] / 1000)
    return dict(train_accuracy=1.0, test_accuracy=0.8, train_squared_distance=0.01 * 2 ** x *
                jitter, test_squared_distance=(0.9 - 0.2 * x) * jitter, epoch=100,
                fit_epoch=4, fit_train_variance=1.5, final_train_variance=0.01)
  if t['kind'] == 'pretrain':
    eps = list(config.transfer.mnist.epochs)
    return dict(train_accuracy=1.0, test_accuracy=0.9, train_loss=1e-3, checkpoint_epochs=eps,
                checkpoint_train_variance=[20.0 * 10.0 ** -i * jitter for i in range(len(eps))],
                checkpoint_probe_accuracy=[0.9 - 0.01 * i for i in range(len(eps))],
                fit_epoch=1, fit_train_variance=10.0, final_train_variance=0.002)
  if t['learning_rate'] == 0.25:
    return dict(diverged=True, val_accuracy=None, test_accuracy=None, train_accuracy=None)
  acc = 0.9 - 0.01 * list(config.transfer.mnist.epochs).index(t['init_epoch']) - \
      t['learning_rate']
  return dict(diverged=False, val_accuracy=acc, test_accuracy=acc, train_accuracy=1.0)


def test_evidence_reads_the_plain_plan_by_tags_not_names():
  config = config_lib.get_config('')
  runs = p002.plan(config, '/tmp/nowhere')
  g = config.transfer.mnist
  assert len(runs) == 6 + 3 + 4 * 3 + 3 * (1 + len(g.epochs) * len(g.lrs))
  # Rename every run: a claim that parsed or rebuilt names would find nothing.
  runs = [dataclasses.replace(r, name=f'run{i:03d}') for i, r in enumerate(runs)]
  records = {r.name: dict(final=_final(r, r.seed, config)) for r in runs}
  study = reproduce.Study(config=config, workdir='/tmp/nowhere', runs=runs, records=records)
  for spec in p002.CLAIMS:
    ev = spec.evidence(study)
    a = assess(spec.id, ev)
    assert a.verdict == 'reproduced', (spec.id, a.checks, a.failed_gates)
  ev = SPECS['002c'].evidence(study)
  assert ev['prestudy']['chosen_by_rule'] == config.prestudy.chosen
  ev = ev['mnist']
  assert [ch['seed'] for ch in ev['chains']] == [0, 1, 2]
  rows = ev['chains'][0]['checkpoints']
  assert [r['best_lr'] for r in rows] == [0.0005] * len(g.epochs)  # The smallest lr wins here.
  assert rows[0]['diverged_lrs'] == [0.25]
  assert ev['probe_spearman']['mean'] == pytest.approx(1.0)  # Less collapse, better probe.
  ev = SPECS['002b'].evidence(study)
  assert ev['sizes'] == [500, 1000, 2000, 4000] and ev['train_variance'][0]['n'] == 3
  ev = SPECS['002a'].evidence(study)
  assert ev['fit_checkpoint_epoch'] == [8] * 3 and ev['train_variance_init']['values'][0] == 5.0
  assert ev['train_variance_at_fit']['values'][0] == 1.5
  ev = SPECS['002d'].evidence(study)
  assert ev['collapse_epoch'] == dict(layer1=[None] * 3, layer2=[100] * 3,
                                      penultimate=[20] * 3)


def test_size_runs_see_as_many_images_at_every_size():
  config = config_lib.get_config('')
  runs = [r for r in p002.plan(config, '/tmp/nowhere') if r.tags['kind'] == 'size']
  seen = {r.config.data.examples_per_class * 10 * r.config.num_epochs for r in runs}
  assert seen == {config.size_images_seen}


def test_settings_are_computed_from_the_variant():
  plain, local = config_lib.get_config(''), config_lib.get_config('runlocal')
  for spec in p002.CLAIMS:
    assert spec.setting(plain) != spec.setting(local), spec.id
  assert '256 epochs (1,792 iterations)' in SPECS['002a'].setting(plain)
  assert '6 epochs' in SPECS['002a'].setting(local)
  assert '256 epochs' not in SPECS['002a'].setting(local)
  assert 'seeds 0, 1, 2' in SPECS['002b'].setting(plain)
  assert not any(k.startswith('setting') for k in plain.keys())


# ---------------------------------------------------------------------------
# The :runlocal study end to end (REPRODUCTIONS.md's contract).
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_p002_runlocal_writes_the_contract(tmp_path):
  config = study_contract.paper_config('p002_limits')
  results = reproduce.reproduce(config, str(tmp_path), command='test', say=lambda _: None)
  study_contract.check_claims(results, tmp_path, ('002a', '002b', '002c', '002d'))
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


def test_paper_002_test_variances_use_the_final_means_and_centres():
  from nc_jax.studies.papers import p002_limits
  rng = np.random.default_rng(1)
  y = np.arange(90) % 3
  final = np.eye(3)[y] * 4 + rng.normal(size=(90, 3)) * 0.1
  now = final + rng.normal(size=(90, 3))
  centres = np.eye(3) * 4 + rng.normal(size=(3, 3)) * 0.05
  strong, weak = p002_limits.final_means_test_variances(now, final, y, 3, centres)
  mu = np.stack([final[y == k].mean(0) for k in range(3)])
  between = lambda c: np.mean(np.sum((c - c.mean(0)) ** 2, 1))
  assert strong == pytest.approx(np.mean(np.sum((now - mu[y]) ** 2, 1)) / between(mu))
  nearest = np.min(np.sum((now[:, None] - centres[None]) ** 2, -1), 1)
  assert weak == pytest.approx(np.mean(nearest) / between(centres))
  # At t = T with the true means as centres, weak <= strong (nearest centre vs own mean).
  s_T, w_T = p002_limits.final_means_test_variances(final, final, y, 3, mu)
  assert w_T <= s_T + 1e-12
