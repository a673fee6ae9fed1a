"""Paper 002's claims on synthetic evidence: gates, typed checks, verdicts.

For every claim: one case that must read "reproduced", one "not reproduced",
one "inconclusive" through a named gate; then the failures issue 20 names for
this paper (runs that never collapsed, one pretraining seed, an untrained
network, NumPy bools), and the evidence read from runs by their tags only.

The file's last section runs the paper's ``:runlocal`` study end to end
(REPRODUCTIONS.md's contract; `study_contract`).
"""

import dataclasses
import json

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


def test_claims_keep_their_ids_and_criteria_are_formatted_from_the_constants():
  assert list(SPECS) == ['002a', '002b', '002c', '002d']
  for spec in p002.CLAIMS:
    text = spec.criterion_text()
    assert '{' not in text and '}' not in text, spec.id
    assert str(spec.constants['collapse_max']) in text, spec.id
  assert '5 x the train variance' in SPECS['002a'].criterion_text()
  assert '0.8' in SPECS['002b'].criterion_text()
  assert 'exceeds 0.5 by > 2 SE' in SPECS['002c'].criterion_text()
  # The thresholds fixed before the first run are unchanged.
  assert p002.CRITERIA['gap_min'] == 5.0 and p002.CRITERIA['train_fall_max'] == 0.5
  assert p002.CRITERIA['test_level_min'] == 0.7 and p002.CRITERIA['size_rho_min'] == 0.8
  assert p002.CRITERIA['transfer_rho_min'] == 0.5


# ---------------------------------------------------------------------------
# 002a: train collapse without test collapse.
# ---------------------------------------------------------------------------


def ev_002a(**changes):
  ev = dict(
      layer='penultimate', seeds=[0, 1, 2],
      train_accuracy=q(1.0, 1.0, 1.0), test_accuracy=q(0.95, 0.94, 0.96),
      end_epoch=[1000] * 3, mid_epoch=[500] * 3,
      train_variance_init=q(5.0, 5.2, 4.9),
      train_variance_mid=q(0.05, 0.06, 0.05),
      train_variance_end=q(0.010, 0.012, 0.011),
      train_variance_final_means_end=q(0.010, 0.012, 0.011),
      strong_test_variance_mid=q(1.0, 1.1, 0.95),
      strong_test_variance_end=q(0.95, 1.05, 0.9),
      weak_test_variance_end=q(0.8, 0.85, 0.75))
  ev.update(changes)
  return ev


def test_002a_reproduced():
  a = assess('002a', ev_002a())
  assert a.verdict == 'reproduced', (a.checks, a.failed_gates)
  assert set(a.gates) == {'seeds', 'runs_fitted', 'runs_trained', 'finite', 'train_collapse',
                          'train_variance_fell'}


def test_002a_not_reproduced_when_the_test_variance_collapses_with_the_train_variance():
  a = assess('002a', ev_002a(strong_test_variance_end=q(0.03, 0.04, 0.035),
                             strong_test_variance_mid=q(0.2, 0.25, 0.22)))
  assert a.verdict == 'not reproduced' and not a.failed_gates
  assert a.checks['strong_test_far_above_train'] is False
  assert a.checks['test_levels_off'] is False
  assert a.checks['weak_test_far_above_train'] is True


def test_002a_inconclusive_when_a_run_did_not_fit_its_training_set():
  a = assess('002a', ev_002a(train_accuracy=q(1.0, 0.62, 1.0)))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['runs_fitted']
  assert a.gates['runs_fitted'].value == pytest.approx(0.62)


def test_002a_committed_first_pass_reads_inconclusive_no_train_collapse():
  # The first pass: the last hidden layer ends at 1.25 / 1.41 (no collapse);
  # it read "not reproduced", judged on runs outside the paper's regime.
  ev = ev_002a(train_variance_end=q(1.245, 1.407, 1.3),
               train_variance_final_means_end=q(1.245, 1.407, 1.3),
               train_variance_mid=q(1.25, 1.41, 1.31),
               strong_test_variance_end=q(1.47, 1.63, 1.5),
               weak_test_variance_end=q(1.28, 1.40, 1.3))
  a = assess('002a', ev)
  assert a.verdict == 'inconclusive' and 'train_collapse' in a.failed_gates
  assert a.gates['train_collapse'].value == pytest.approx(1.407)


def test_002a_an_untrained_network_cannot_pass():
  # Variances that never moved from initialisation (already small, so the
  # absolute collapse level passes): the fall from initialisation fails.
  same = q(0.05, 0.06, 0.055)
  a = assess('002a', ev_002a(train_variance_init=same, train_variance_mid=same,
                             train_variance_end=same, train_variance_final_means_end=same))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['train_variance_fell']


def test_002a_one_seed_is_inconclusive_and_no_check_passes_on_it():
  one = {k: (q(v['values'][0]) if isinstance(v, dict) else v) for k, v in ev_002a().items()}
  a = assess('002a', one)
  assert a.verdict == 'inconclusive' and 'seeds' in a.failed_gates
  assert set(a.checks.values()) == {None}  # One seed: no spread, no difference counted.


def test_002a_a_difference_inside_the_noise_does_not_count():
  # Mean strong test variance 5.7 x the train variance, but one seed below 5 x:
  # the paired difference is not 2 SE above zero.
  a = assess('002a', ev_002a(train_variance_end=q(0.1, 0.1, 0.1),
                             train_variance_final_means_end=q(0.1, 0.1, 0.1),
                             train_variance_mid=q(0.3, 0.3, 0.3),
                             strong_test_variance_end=q(0.45, 0.6, 0.66)))
  assert a.checks['strong_test_far_above_train'] is False


# ---------------------------------------------------------------------------
# 002b: more data, weaker train collapse, stronger test collapse.
# ---------------------------------------------------------------------------


def ev_002b(tv=None, st=None, **changes):
  tv = tv or [(0.010, 0.011, 0.012), (0.020, 0.021, 0.019), (0.040, 0.042, 0.041),
              (0.080, 0.078, 0.082)]
  st = st or [(0.90, 0.92, 0.88), (0.70, 0.72, 0.69), (0.50, 0.52, 0.51), (0.30, 0.31, 0.29)]
  ev = dict(sizes=[1000, 2000, 4000, 8000], stop_at_train_loss=1e-3,
            train_variance=[q(*v) for v in tv], strong_test_variance=[q(*v) for v in st],
            train_accuracy=[q(1.0, 1.0, 1.0)] * 4, test_accuracy=[q(0.8, 0.81, 0.82)] * 4,
            reached_loss=[[True] * 3] * 4, final_running_loss=[[9e-4] * 3] * 4,
            epochs=[[200] * 3] * 4)
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


def test_002b_inconclusive_when_a_run_stopped_before_the_loss():
  a = assess('002b', ev_002b(reached_loss=[[True] * 3, [True, False, True]] + [[True] * 3] * 2))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['reached_the_loss']
  assert a.gates['reached_the_loss'].value == 1


def test_002b_committed_first_pass_reads_inconclusive_no_train_collapse():
  # Train variance 0.65-0.81 at the end (first pass, 2 seeds): never collapsed.
  tv = [(0.666, 0.672), (0.648, 0.676), (0.725, 0.709), (0.813, 0.809)]
  st = [(0.770, 0.796), (0.725, 0.796), (0.824, 0.822), (0.885, 0.904)]
  a = assess('002b', ev_002b(tv=tv, st=st))
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


def ev_002c(rhos=(0.9, 0.8, 1.0), **changes):
  n = len(rhos)
  group = dict(seeds=list(range(n)), chains=[],
               spearman=q(*rhos), pretrain_train_accuracy=q(*[1.0] * n),
               most_collapsed_train_variance=q(*[0.02 + 0.01 * i for i in range(n)]),
               selected_test_accuracy=q(*[0.87, 0.86, 0.88, 0.85] * n),
               checkpoints_without_a_run=0)
  group.update(changes)
  return dict(mnist=group)


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
  a = assess('002c', ev_002c(most_collapsed_train_variance=q(5.62, 5.4, 5.9)))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['mnist_train_collapse']


def test_002c_a_mean_correlation_inside_its_noise_does_not_pass():
  # Mean 0.6 >= 0.5, but its SE (0.2) puts 0.5 well inside the noise.
  a = assess('002c', ev_002c(rhos=(0.2, 0.8, 0.8)))
  assert a.checks['mnist_more_collapse_worse_transfer'] is False


# ---------------------------------------------------------------------------
# 002d: cascading collapse.
# ---------------------------------------------------------------------------

LAYERS = ['layer1', 'layer2', 'penultimate']


def ev_002d(end=None, half=None, init=None, **changes):
  end = end or dict(layer1=(0.50, 0.55, 0.52), layer2=(0.10, 0.12, 0.11),
                    penultimate=(0.010, 0.012, 0.011))
  init = init or dict(layer1=(3.0, 3.1, 2.9), layer2=(4.0, 4.2, 3.9),
                      penultimate=(5.0, 5.2, 4.9))
  half = half or dict(layer1=[100, 200, 100], layer2=[30, 30, 100], penultimate=[10, 10, 30])
  ev = dict(layers=LAYERS, seeds=[0, 1, 2], train_accuracy=q(1.0, 1.0, 1.0),
            test_accuracy=q(0.95, 0.94, 0.96),
            train_variance_init={l: q(*v) for l, v in init.items()},
            train_variance_end={l: q(*v) for l, v in end.items()},
            train_variance_final_means_end={l: q(*v) for l, v in end.items()},
            half_epoch=half)
  ev.update(changes)
  return ev


def test_002d_reproduced():
  a = assess('002d', ev_002d())
  assert a.verdict == 'reproduced', (a.checks, a.failed_gates)


def test_002d_not_reproduced_when_an_earlier_layer_falls_first():
  a = assess('002d', ev_002d(half=dict(layer1=[10, 200, 100], layer2=[30, 30, 100],
                                       penultimate=[30, 10, 30])))
  assert a.verdict == 'not reproduced' and not a.failed_gates
  assert a.checks == {'last_layer_furthest': True, 'last_layer_first': False}
  # A last layer that never halves is not first either.
  a = assess('002d', ev_002d(half=dict(layer1=[10, 10, 10], layer2=[10, 10, 10],
                                       penultimate=[None, 10, 10])))
  assert a.checks['last_layer_first'] is False


def test_002d_inconclusive_when_a_run_did_not_learn():
  a = assess('002d', ev_002d(test_accuracy=q(0.95, 0.11, 0.96)))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['runs_trained']


def test_002d_committed_first_pass_reads_inconclusive_not_reproduced():
  # The first pass read "reproduced": the last layer lowest (1.25 / 1.41) and
  # first to halve, but nothing collapsed.
  ev = ev_002d(end=dict(layer1=(3.17, 3.41, 3.3), layer2=(2.13, 2.36, 2.2),
                        penultimate=(1.245, 1.407, 1.3)),
               init=dict(layer1=(6.0, 6.3, 6.1), layer2=(7.0, 7.2, 7.1),
                         penultimate=(8.0, 8.3, 8.1)))
  a = assess('002d', ev)
  assert a.checks == {'last_layer_furthest': True, 'last_layer_first': True}
  assert a.verdict == 'inconclusive' and a.failed_gates == ['train_collapse']


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
  ev = {k: np_q(v) if isinstance(v, dict) else v for k, v in ev.items()}
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


def _final(run, seed):
  """Synthetic final numbers of a run, in the study's regime, chosen by its tags."""
  t, e = run.tags, [0, 10, 30, 100, 200, 300, 500, 700, 1000]
  jitter = 1 + 0.03 * seed
  if t['kind'] == 'cascade':
    curve = lambda start, end: list(np.geomspace(start, end * jitter, len(e)))
    out = dict(epochs=e, train_accuracy=1.0, test_accuracy=0.95, train_loss=1e-3,
               terminal_phase_epoch=50,
               strong_test_variance=[2.0] + [1.0 * jitter] * 8,
               weak_test_variance=[2.0] + [0.8 * jitter] * 8)
    for l, end in zip(LAYERS, (0.5, 0.1, 0.001)):
      out[f'train_variance_{l}'] = out[f'train_variance_final_means_{l}'] = curve(5.0, end)
    return out
  if t['kind'] == 'size':
    x = np.log2(t['train_size'] / 1000)
    return dict(train_accuracy=1.0, test_accuracy=0.8, train_squared_distance=0.01 * 2 ** x *
                jitter, test_squared_distance=(0.9 - 0.2 * x) * jitter, epoch=100,
                stopped_at_train_loss=True, final_running_loss=9e-4)
  if t['kind'] == 'pretrain':
    eps = [1, 10, 30, 100, 300, 700]
    return dict(train_accuracy=1.0, test_accuracy=0.9, train_loss=1e-3, checkpoint_epochs=eps,
                checkpoint_train_variance=[20.0 * 10.0 ** -i * jitter for i in range(6)])
  if t['learning_rate'] == 0.25:
    return dict(diverged=True, val_accuracy=None, test_accuracy=None, train_accuracy=None)
  acc = 0.9 - 0.01 * [1, 10, 30, 100, 300, 700].index(t['init_epoch']) - t['learning_rate']
  return dict(diverged=False, val_accuracy=acc, test_accuracy=acc, train_accuracy=1.0)


def test_evidence_reads_the_plain_plan_by_tags_not_names():
  config = config_lib.get_config('')
  runs = p002.plan(config, '/tmp/nowhere')
  assert len(runs) == 3 + 4 * 3 + 3 * (1 + 6 * 4)
  # Rename every run: a claim that parsed or rebuilt names would find nothing.
  runs = [dataclasses.replace(r, name=f'run{i:03d}') for i, r in enumerate(runs)]
  records = {r.name: dict(final=_final(r, r.seed)) for r in runs}
  study = reproduce.Study(config=config, workdir='/tmp/nowhere', runs=runs, records=records)
  for spec in p002.CLAIMS:
    ev = spec.evidence(study)
    a = assess(spec.id, ev)
    assert a.verdict == 'reproduced', (spec.id, a.checks, a.failed_gates)
  ev = SPECS['002c'].evidence(study)['mnist']
  assert [ch['seed'] for ch in ev['chains']] == [0, 1, 2]
  rows = ev['chains'][0]['checkpoints']
  assert [r['best_lr'] for r in rows] == [0.0005] * 6  # The smallest lr scores best here.
  assert rows[0]['diverged_lrs'] == [0.25]
  ev = SPECS['002b'].evidence(study)
  assert ev['sizes'] == [1000, 2000, 4000, 8000] and ev['train_variance'][0]['n'] == 3
  ev = SPECS['002a'].evidence(study)
  assert ev['mid_epoch'] == [500] * 3 and ev['train_variance_init']['values'][0] == 5.0


def test_settings_are_computed_from_the_variant():
  plain, local = config_lib.get_config(''), config_lib.get_config('runlocal')
  for spec in p002.CLAIMS:
    assert spec.setting(plain) != spec.setting(local), spec.id
  assert '1,000 epochs (7,000 iterations)' in SPECS['002a'].setting(plain)
  assert '6 epochs' in SPECS['002a'].setting(local)
  assert '1,000 epochs' not in SPECS['002a'].setting(local)
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
