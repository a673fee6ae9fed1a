"""Paper 004's claims on synthetic evidence: gates, typed checks, spread, tags.

For every claim (004a-004d) one hand-made evidence dict that must read
"reproduced", one "not reproduced" and one "inconclusive" through a named
gate; plus the failures issue 20 names for this paper: checks that an
untrained network (or the input itself) passes (004a's MSDR > 1.1 holds at
initialisation; 004b's sigma^2, tau^2 and similar-vs-dissimilar checks hold
for MSDR = 1 + sigma^2), a fine-label run without the 2C collapse (004c),
one seed, differences inside their noise, NumPy numbers in the evidence.
The evidence functions are run on a `reproduce.Study` of hand-made records
(no training), under run names that say nothing, so they read tags only.

The file's last section runs the paper's ``:runlocal`` study end to end
(REPRODUCTIONS.md's contract; `study_contract`).
"""

import json
import math

import ml_collections
import numpy as np
import pytest
import study_contract

from nc_jax.studies import reproduce
from nc_jax.studies import spread
from nc_jax.studies import sweep
from nc_jax.studies.papers import p004_fine_grained as p004

SPECS = {s.id: s for s in p004.CLAIMS}
q = spread.quantity


def _assess(cid, ev):
  """Gates, checks and verdict; `reproduce.verdict` rejects a check that is not bool or None."""
  return reproduce.assess(SPECS[cid], ev)


def test_every_claim_is_in_parts_with_its_text():
  assert [s.id for s in p004.CLAIMS] == ['004a', '004b', '004d', '004c']
  assert not hasattr(p004, 'analyze')  # reproduce() judges CLAIMS.
  for s in p004.CLAIMS:
    text = s.criterion_text()  # Every placeholder is a constant.
    assert '{' not in text and 'Gates:' in text and 'Check' in text, s.id
  assert 'exceeds 1.1' in SPECS['004a'].criterion_text()
  assert 'exceeds 0.5 (collapse predicts 0)' in SPECS['004a'].criterion_text()
  assert 'NC1 <= 0.5 and <= 0.1 x' in SPECS['004c'].criterion_text()
  assert 'does not flip' in SPECS['004d'].criterion_text()


# ---------------------------------------------------------------------------
# 004a: coarse labels.
# ---------------------------------------------------------------------------


def group(**changes):
  """One tested model's numbers over 3 seeds (`evidence._coarse_group`'s keys)."""
  g = dict(
      seeds=[0, 1, 2], last_epoch=[60, 60, 60], terminal_phase_epoch=[10, 10, 20],
      train_accuracy=q([1.0, 1.0, 1.0]), test_accuracy=q([0.9, 0.9, 0.9]),
      train_nc1=q([0.13, 0.14, 0.12]), train_nc1_init=q([9.0, 9.0, 9.0]),
      msdr_init=q([1.179, 1.182, 1.180]), final_msdr=q([1.57, 1.50, 1.54]),
      msdr_kept=q([3.2, 2.8, 3.0]),
      clp_accuracy=q([0.93, 0.92, 0.94]), true_label_probe_accuracy=q([0.95, 0.95, 0.96]),
      reconstruction_accuracy=q([0.90, 0.88, 0.91]))
  g.update(changes)
  return g


def ev_004a(c1=None, c2=None):
  return dict(tested_models=['fmnist_c1', 'fmnist_c2'], msdr_models=['fmnist_c1'],
              by_model=dict(fmnist_c1=c1 or group(), fmnist_c2=c2 or group()),
              msdr_by_epoch={}, reported={})


def test_004a_reads_all_three_verdicts():
  a = _assess('004a', ev_004a())
  assert a.verdict == 'reproduced' and not a.failed_gates
  # The first pass's CLP (0.787, 0.842 against a probe at 0.95): not close enough.
  a = _assess('004a', ev_004a(c2=group(clp_accuracy=q([0.787, 0.842, 0.80]))))
  assert a.verdict == 'not reproduced' and a.checks['clp_close'] is False
  # Super-classes not collapsed under config #2: inconclusive, whatever the checks say.
  a = _assess('004a', ev_004a(c2=group(train_nc1=q([0.13, 1.4, 0.12]))))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['coarse_collapse']
  assert a.gates['coarse_collapse'].value == pytest.approx(1.4)


def test_004a_msdr_is_read_against_initialisation_and_for_config_1_only():
  # The first pass: MSDR 1.18 at initialisation already "> 1.1". An untrained
  # network (final = initial, kept fraction 1) passes both MSDR checks ...
  init = q([1.179, 1.182, 1.180])
  a = _assess('004a', ev_004a(c1=group(final_msdr=init, msdr_init=init,
                                       msdr_kept=q([1.0, 1.0, 1.0]))))
  assert a.checks['msdr'] is True and a.checks['msdr_kept_from_init'] is True
  assert a.verdict == 'inconclusive' and a.failed_gates == ['msdr_moved_by_training']
  # Training that left MSDR above 1.1 but erased three quarters of the
  # untrained network's structure (1.8 -> 1.2): not reproduced.
  a = _assess('004a', ev_004a(c1=group(final_msdr=q([1.2, 1.21, 1.19]),
                                       msdr_init=q([1.8, 1.8, 1.79]),
                                       msdr_kept=q([0.25, 0.26, 0.24]))))
  assert a.checks['msdr'] is True and a.checks['msdr_kept_from_init'] is False
  assert a.verdict == 'not reproduced'
  # Training that erased the structure (MSDR ~1).
  a = _assess('004a', ev_004a(c1=group(final_msdr=q([1.01, 1.02, 1.00]))))
  assert a.verdict == 'not reproduced' and a.checks['msdr'] is False
  # Config #2's MSDR is not judged (the paper: its distance matrix barely shows it).
  a = _assess('004a', ev_004a(c2=group(final_msdr=q([1.01, 1.02, 1.00]),
                                       msdr_kept=q([0.05, 0.1, 0.0]))))
  assert a.verdict == 'reproduced'


def test_004a_seeds_noise_and_terminal_phase():
  one = {k: (q(v['values'][:1]) if isinstance(v, dict) else v[:1]) for k, v in group().items()}
  a = _assess('004a', ev_004a(c2=one))
  assert a.verdict == 'inconclusive' and 'seeds' in a.failed_gates
  # Reconstruction 0.8034 and 0.867 (mean 0.835 > 0.8): inside the noise, no pass.
  a = _assess('004a', ev_004a(c2=group(reconstruction_accuracy=q([0.8034, 0.867, 0.82]))))
  assert a.checks['subclusters'] is False and a.verdict == 'not reproduced'
  # Trained only 1.5x past the first 100%-accuracy epoch.
  a = _assess('004a', ev_004a(c1=group(terminal_phase_epoch=[10, 10, 40])))
  assert a.failed_gates == ['terminal_phase'] and a.gates['terminal_phase'].value == \
      pytest.approx(60 / 40)
  # Never at 100% train accuracy.
  a = _assess('004a', ev_004a(c1=group(terminal_phase_epoch=[10, None, 10])))
  assert a.failed_gates == ['terminal_phase']
  # NumPy numbers in the evidence still give Python bools.
  a = _assess('004a', ev_004a(c1=group(final_msdr=q(np.array([1.57, 1.50, 1.54], np.float32)))))
  assert a.checks['msdr'] is True and a.verdict == 'reproduced'


def _coarse_study(tmp_path):
  def final(seed, init=1.18, clp=0.93):
    out = dict(epoch=60, terminal_phase_epoch=10, train_accuracy=1.0, test_accuracy=0.9,
               train_nc1=0.13, train_nc1_init=9.0,
               msdr_by_epoch={'0': init, '5': 1.3, '20': 1.45, '60': 1.5 + seed / 20})
    if clp is not None:
      out.update(clp_accuracy=clp, lpo_accuracy=0.95, clp_reconstruction_accuracy=0.9)
    return out
  rows = [('fmnist_c1', True, True, True, s, final(s)) for s in range(3)]
  rows += [('fmnist_c2', True, False, True, s, final(s, init=1.3)) for s in range(3)]
  rows += [('mnist_c1', False, False, True, 0, final(0, clp=0.7)),
           ('cnn', False, False, False, 0, final(0, clp=None))]
  runs, records = [], {}
  for i, (model, tested, msdr_tested, clp, seed, f) in enumerate(rows):
    runs.append(sweep.Run(f'r{i}', None, seed=seed, tags=dict(
        kind='coarse', model=model, tested=tested, msdr_tested=msdr_tested, clp=clp)))
    records[f'r{i}'] = dict(final=f)
  runs.append(sweep.Run('r99', None, seed=3, tags=dict(kind='fine', model='mlp')))
  records['r99'] = dict(final=dict(train_accuracy=0.1))
  return reproduce.Study(config=None, workdir=str(tmp_path), runs=runs, records=records)


def test_004a_evidence_reads_the_runs_by_their_tags(tmp_path):
  ev = p004.evidence_004a(_coarse_study(tmp_path))
  assert ev['tested_models'] == ['fmnist_c1', 'fmnist_c2'] and ev['msdr_models'] == ['fmnist_c1']
  c1 = ev['by_model']['fmnist_c1']
  assert c1['seeds'] == [0, 1, 2]
  assert c1['final_msdr']['values'] == pytest.approx([1.5, 1.55, 1.6])
  assert c1['msdr_kept']['values'] == pytest.approx([0.5 / 0.18, 0.55 / 0.18, 0.6 / 0.18])
  assert ev['by_model']['fmnist_c2']['msdr_init']['values'] == [1.3] * 3
  assert c1['clp_over_probe']['mean'] == pytest.approx(0.93 / 0.95)
  assert list(ev['reported']) == ['mnist_c1', 'cnn']
  assert ev['reported']['mnist_c1']['clp_accuracy'] == pytest.approx(0.7)
  assert 'clp_accuracy' not in ev['reported']['cnn']
  assert len(ev['msdr_by_epoch']) == 8
  assert reproduce.assess(SPECS['004a'], ev).verdict == 'reproduced'
  assert p004.kept(1.5, 1.25) == pytest.approx(2.0) and p004.kept(1.5, 1.0) is None


# ---------------------------------------------------------------------------
# 004b: the Gaussian mixture.
# ---------------------------------------------------------------------------

LR = dict(rows=[], chosen_by_rule=0.01, used=[0.01])


def ev_004b(**changes):
  lines = ['input_dim:d_input=32', 'input_dim:d_input=64', 'weight_decay:wd=0',
           'similarity:tau2']
  ev = dict(
      num_seeds=3, num_nonfinite=0, weight_decay_strength=3.0, learning_rate=LR,
      min_train_accuracy_by_sigma2={'0.25': 0.8, '1': 1.0, '4': 1.0, '32': 1.0},
      msdr_at_largest_x={k: dict(x=32.0, trained=q([20.0, 22.0, 21.0]),
                                 initial=q([30.0, 31.0, 30.5])) for k in lines},
      spearman_sigma2_kept={k: q([1.0, 1.0, 0.98]) for k in lines[:3]},
      input_dim_trend=q([0.8, 0.9, 0.85]), weight_decay_spread=q([0.05, 0.04, 0.06]),
      similar_kept_less=q([0.3, 0.35, 0.32]), spearman_tau2_kept=q([1.0, 1.0, 0.9]))
  ev.update(changes)
  return ev


def test_004b_reads_all_three_verdicts():
  a = _assess('004b', ev_004b())
  assert a.verdict == 'reproduced' and not a.failed_gates
  a = _assess('004b', ev_004b(input_dim_trend=q([-1.0, -1.0, -0.8])))
  assert a.verdict == 'not reproduced' and a.checks['input_dim'] is False
  # The first pass's weight-decay grid (lr 0.01 x wd <= 0.01 x 1,000 steps = 0.1):
  # "no effect" nearly guaranteed, so the claim cannot be judged.
  a = _assess('004b', ev_004b(weight_decay_strength=0.1))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['weight_decay_effective']


def test_004b_learning_rate_comes_from_the_rule():
  a = _assess('004b', ev_004b(learning_rate=dict(rows=[], chosen_by_rule=None, used=[0.3])))
  assert a.failed_gates == ['learning_rate_by_rule']
  a = _assess('004b', ev_004b(learning_rate=dict(rows=[], chosen_by_rule=0.01, used=[0.1])))
  assert a.failed_gates == ['learning_rate_by_rule']
  rows = [dict(learning_rate=0.001, min_train_accuracy=0.7, finite=True),
          dict(learning_rate=0.01, min_train_accuracy=1.0, finite=True),
          dict(learning_rate=0.003, min_train_accuracy=1.0, finite=False),
          dict(learning_rate=0.1, min_train_accuracy=1.0, finite=True)]
  assert p004.choose_learning_rate(rows) == 0.01  # The smallest that fitted, finite.
  assert p004.choose_learning_rate(rows[:1]) is None


def test_004b_gates_and_noise():
  # Separable points that did not fit: the runs did not train.
  a = _assess('004b', ev_004b(min_train_accuracy_by_sigma2={'0.1': 0.5, '1': 0.9, '4': 1.0}))
  assert a.failed_gates == ['runs_trained'] and a.gates['runs_trained'].value == 0.9
  # Low accuracy only where the clusters overlap (sigma^2 < 1) does not count.
  a = _assess('004b', ev_004b(min_train_accuracy_by_sigma2={'0.1': 0.5, '1': 1.0}))
  assert not a.failed_gates
  a = _assess('004b', ev_004b(num_nonfinite=3))
  assert a.failed_gates == ['finite']
  a = _assess('004b', ev_004b(num_seeds=1))
  assert a.failed_gates == ['seeds']
  # A constant line (Spearman undefined): cannot tell.
  rhos = dict(ev_004b()['spearman_sigma2_kept'], **{'weight_decay:wd=0.1': q([1.0, None, 1.0])})
  a = _assess('004b', ev_004b(spearman_sigma2_kept=rhos))
  assert a.checks['sigma2_beyond_input'] is None and a.verdict == 'inconclusive'
  # Weight decay moves MSDR by 30% on average: it has an effect.
  a = _assess('004b', ev_004b(weight_decay_spread=q([0.3, 0.28, 0.33])))
  assert a.checks['weight_decay'] is False
  # Similar sub-classes keep as much as dissimilar ones, within the noise.
  a = _assess('004b', ev_004b(similar_kept_less=q([0.3, -0.2, 0.1])))
  assert a.checks['similar_kept_less'] is False


def _mixture_cfg():
  return ml_collections.ConfigDict(dict(
      num_clusters=8, samples_per_cluster=20, num_superclasses=4, input_dim=16,
      hidden_dim=16, weight_decay=0.0, learning_rate=0.01, num_steps=1000, num_seeds=3,
      sigma2=(0.5, 4.0, 16.0), input_dims=(8, 16, 32), hidden_dims=(8, 16, 32),
      weight_decays=(0.0, 0.1), similarity=dict(sigma2=4.0, tau2=(0.01, 0.1, 1.0, 8.0),
                                                num_similar=2)))


def _mixture_records(m, part, kept=lambda x: x / (1 + x), trend=1.0, accuracy=1.0):
  """metrics.jsonl of simulations.mixture_study. The input's MSDR is 1 + sigma^2
  (1 + tau^2 for similar sub-classes); trained, MSDR = 1 + kept(x) (input - 1),
  times (1 + trend x dim / 100); at initialisation as the input. ``kept=None``:
  the trained network is the input itself."""
  out = []
  for line in p004.mixture_lines(m, part):
    for x in line['x']:
      for s in range(m.num_seeds):
        r = dict(line['match'], seed=s, step=m.num_steps, loss=0.01, train_accuracy=accuracy,
                 nc1=0.1)
        r[line['x_key']] = x
        sigma2 = r['sigma2']
        dim = r['hidden_dim'] if part == 'hidden_dim' else r['input_dim']
        wobble = 1 + 0.01 * s
        r['msdr_input'] = r['msdr_init'] = 1 + sigma2 * wobble
        k = 1.0 if kept is None else kept(sigma2)
        r['msdr'] = (1 + k * sigma2 * wobble) * (1 + trend * dim / 100 if kept else 1)
        if part == 'similarity':
          r['msdr_input_similar'] = 1 + x * wobble
          r['msdr_input_dissimilar'] = 1 + sigma2 * wobble
          ks = 1.0 if kept is None else kept(x) / 2  # similar: less kept, rising with tau^2
          r['msdr_similar'] = 1 + ks * x * wobble
          r['msdr_dissimilar'] = 1 + (1.0 if kept is None else 0.8) * sigma2 * wobble
        out.append(r)
  out.append(dict(seed=0, step=0, sigma2=99.0))  # A record of no line.
  return out


def _mixture_study(tmp_path, m, **kw):
  runs, records = [], {}
  for lr, acc in ((0.003, 0.9), (0.01, 1.0), (0.1, 1.0)):
    runs.append(sweep.Run(f'lr{lr}', None, tags=dict(kind='mixture', role='lr_rule',
                                                     learning_rate=lr)))
    records[f'lr{lr}'] = dict(final=dict(
        learning_rate=lr, lines=p004.mixture_tables(
            m, 'hidden_dim', _mixture_records(m, 'hidden_dim', accuracy=acc))))
  for i, part in enumerate(p004.MIXTURE_PARTS):
    runs.append(sweep.Run(f'm{i}', None, tags=dict(kind='mixture', role='test', part=part)))
    records[f'm{i}'] = dict(final=dict(
        part=part, learning_rate=0.01, init='torch_uniform', num_steps=m.num_steps,
        num_seeds=m.num_seeds, lines=p004.mixture_tables(m, part,
                                                         _mixture_records(m, part, **kw))))
  return reproduce.Study(config=None, workdir=str(tmp_path), runs=runs, records=records)


def test_004b_evidence_from_mixture_records(tmp_path):
  m = _mixture_cfg()
  tables = p004.mixture_tables(m, 'weight_decay', _mixture_records(m, 'weight_decay'))
  assert list(tables) == ['wd=0', 'wd=0.1']
  assert tables['wd=0']['x'] == [0.5, 4.0, 16.0]
  assert np.shape(tables['wd=0.1']['msdr']) == (3, 3)  # [sigma^2, seeds]
  assert tables['wd=0']['msdr_input'][1] == pytest.approx([5.0, 5.04, 5.08])
  ev = p004.evidence_004b(_mixture_study(tmp_path, m))
  assert ev['learning_rate']['chosen_by_rule'] == 0.01 and ev['learning_rate']['used'] == [0.01]
  assert ev['num_seeds'] == 3 and ev['weight_decay_strength'] == pytest.approx(1.0)
  assert ev['num_nonfinite'] == 0 and ev['min_train_accuracy_by_sigma2']['4'] == 1.0
  assert 'hidden_dim:d_hidden=8' not in ev['spearman_sigma2_kept']  # 004d's line.
  assert ev['spearman_sigma2_raw']['input_dim:d_input=8']['values'] == [1.0, 1.0, 1.0]
  # kept = x / (1 + x) times the dimension factor: rises with sigma^2.
  assert ev['spearman_sigma2_kept']['input_dim:d_input=8']['values'] == [1.0, 1.0, 1.0]
  assert ev['input_dim_trend']['values'] == [1.0, 1.0, 1.0]
  # Dissimilar keeps 0.8; similar keeps tau2 / (1 + tau2) / 2 at tau2 = 0.1, 1.
  want = np.mean([0.8 - 0.1 / 1.1 / 2, 0.8 - 0.5 / 2])
  assert ev['similar_kept_less']['values'] == pytest.approx([want] * 3, rel=1e-4)
  assert ev['spearman_tau2_kept']['values'] == [1.0] * 3
  a = reproduce.assess(SPECS['004b'], ev)
  assert a.verdict == 'reproduced', (a.gates, a.checks)


def test_004b_the_input_itself_does_not_pass(tmp_path):
  # A network that is its input (MSDR = input MSDR = 1 + sigma^2): MSDR rises
  # with sigma^2 (the first pass's check) ...
  m = _mixture_cfg()
  ev = p004.evidence_004b(_mixture_study(tmp_path, m, kept=None))
  assert ev['spearman_sigma2_raw']['input_dim:d_input=8']['values'] == [1.0, 1.0, 1.0]
  # ... but its kept fraction is 1 everywhere: no trend, no similar-vs-dissimilar gap.
  a = reproduce.assess(SPECS['004b'], ev)
  assert a.checks['sigma2_beyond_input'] is None and a.checks['similar_kept_less'] is False
  assert a.verdict == 'inconclusive' and a.failed_gates == ['msdr_moved_by_training']


# ---------------------------------------------------------------------------
# 004d: the hidden width.
# ---------------------------------------------------------------------------


def ev_004d(**changes):
  ev = dict(
      learning_rate=LR, num_seeds=3,
      min_train_accuracy_by_sigma2={'0.25': 0.7, '1': 1.0, '32': 1.0},
      hidden_dim_trend=q([0.8, 0.9, 0.85]),
      msdr_at_largest_x={'d_hidden=32': dict(trained=q([20.0, 22.0, 21.0]),
                                             initial=q([30.0, 31.0, 30.5]))},
      table=[], fitted_cells=4, sign_flips=0, init_check={})
  ev.update(changes)
  return ev


def test_004d_reads_all_three_verdicts():
  a = _assess('004d', ev_004d())
  assert a.verdict == 'reproduced' and not a.failed_gates
  # The first pass: MSDR falls with the hidden width.
  a = _assess('004d', ev_004d(hidden_dim_trend=q([-1.0, -1.0, -0.8])))
  assert a.verdict == 'not reproduced' and a.checks['hidden_dim'] is False
  # The sign changes between (rate, init) cells: the paper's unstated choices decide.
  a = _assess('004d', ev_004d(sign_flips=1))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['width_sign_stable']
  a = _assess('004d', ev_004d(sign_flips=None))  # No cell fitted.
  assert a.failed_gates == ['width_sign_stable']
  # A width trend whose mean (0.63) clears 0.5 by less than 2 SE: no pass.
  a = _assess('004d', ev_004d(hidden_dim_trend=q([0.9, 0.3, 0.7])))
  assert a.checks['hidden_dim'] is False


def test_004d_evidence_tabulates_the_sign(tmp_path):
  m = _mixture_cfg()
  study = _mixture_study(tmp_path, m)
  cells = [(0.003, 'torch_uniform', 1.0, 1.0), (0.01, 'he_normal', -1.0, 1.0),
           (0.1, 'he_normal', -1.0, 0.5)]
  for i, (lr, init, trend, acc) in enumerate(cells):
    study.runs.append(sweep.Run(f'w{i}', None, tags=dict(kind='mixture', role='width_table',
                                                         learning_rate=lr, init=init)))
    study.records[f'w{i}'] = dict(final=dict(
        learning_rate=lr, init=init, num_seeds=3, lines=p004.mixture_tables(
            m, 'hidden_dim', _mixture_records(m, 'hidden_dim', trend=trend, accuracy=acc))))
  for init, k in (('torch_uniform', 0.9), ('he_normal', 0.3)):
    study.runs.append(sweep.Run(f'i{init}', None, tags=dict(kind='mixture', role='init_check',
                                                            init=init)))
    c = m.copy_and_resolve_references()
    c.sigma2 = (2.0,)
    c.hidden_dims = (16,)
    study.records[f'i{init}'] = dict(final=dict(lines=p004.mixture_tables(
        c, 'hidden_dim', _mixture_records(c, 'hidden_dim', kept=lambda x, k=k: k, trend=0.0))))
  ev = p004.evidence_004d(study)
  assert ev['hidden_dim_trend']['values'] == [1.0] * 3
  assert [c['sign'] for c in ev['table']] == [1, -1, -1]
  assert ev['fitted_cells'] == 2 and ev['sign_flips'] == 1
  a = reproduce.assess(SPECS['004d'], ev)
  assert a.verdict == 'inconclusive' and a.failed_gates == ['width_sign_stable']
  assert ev['init_check']['he_normal']['msdr']['values'] == pytest.approx([1.6, 1.606, 1.612])
  assert ev['init_check']['torch_uniform']['msdr_input']['mean'] == pytest.approx(3.02)
  assert 'He-normal' in SPECS['004d'].notes(ev, None)
  # The down cell that did not fit is not read; the fitted ones disagree. Drop
  # the fitted down cell: the sign is stable.
  del study.runs[-4]
  ev = p004.evidence_004d(study)
  assert ev['fitted_cells'] == 1 and ev['sign_flips'] == 0
  assert reproduce.assess(SPECS['004d'], ev).verdict == 'reproduced'


# ---------------------------------------------------------------------------
# 004c: fine labels.
# ---------------------------------------------------------------------------


def ev_004c(**changes):
  ev = dict(
      seeds=[0, 1, 2], train_accuracy=q([1.0, 1.0, 1.0]), train_nc1=q([0.2, 0.25, 0.22]),
      fine_nc1_fall=q([0.02, 0.03, 0.025]),
      msdr_init=q([1.001, 1.002, 1.001]), early_msdr=q([1.007, 1.008, 1.006]),
      early_separation=q([2.23, 2.22, 2.25]), final_msdr=q([2.6, 2.5, 2.7]),
      final_separation=q([1.4, 1.45, 1.38]), growth=q([2.58, 2.48, 2.68]))
  ev.update(changes)
  return ev


def test_004c_reads_all_three_verdicts():
  a = _assess('004c', ev_004c())
  assert a.verdict == 'reproduced' and not a.failed_gates
  # The C-class structure gone at the end.
  a = _assess('004c', ev_004c(final_separation=q([1.0, 1.02, 0.99])))
  assert a.verdict == 'not reproduced' and a.checks['c_structure_at_end'] is False
  # The first pass: halves only 16% apart after 150 epochs; no 2C collapse, so
  # "the C-class structure survives" has nothing to survive: inconclusive.
  a = _assess('004c', ev_004c(final_msdr=q([1.162, 1.155, 1.16]),
                              growth=q([1.154, 1.146, 1.15]), train_nc1=q([2.1, 2.3, 2.0]),
                              fine_nc1_fall=q([0.5, 0.6, 0.55]),
                              final_separation=q([2.37, 2.39, 2.38])))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['fine_collapse', 'fine_nc1_fell']
  assert all(a.checks.values())  # The first pass's checks all held.


def test_004c_notes_say_how_weak_the_early_c_phase_was():
  ev = ev_004c(early_separation=q([1.48, 1.46, 1.51]), separation_init=q([1.2, 1.19, 1.2]),
               by_epoch={'seed0': dict(separation={'0': 1.2, '5': 1.48, '300': 1.16})})
  a = _assess('004c', ev)
  assert a.checks['early_classes_apart'] is False and a.verdict == 'not reproduced'
  text = SPECS['004c'].notes(ev, None)
  assert '1.48x' in text and 'criterion 1.5' in text and 'at most 1.48' in text
  assert SPECS['004c'].notes(ev_004c(), None) == ''


def test_004c_gates_and_noise():
  a = _assess('004c', ev_004c(seeds=[0, 1]))
  assert a.failed_gates == ['seeds']
  a = _assess('004c', ev_004c(train_accuracy=q([1.0, 0.9, 1.0])))
  assert a.failed_gates == ['runs_trained']
  # Small final NC1 that was small already at the early epoch: not a 2C collapse.
  a = _assess('004c', ev_004c(fine_nc1_fall=q([0.3, 0.05, 0.05])))
  assert a.failed_gates == ['fine_nc1_fell'] and a.gates['fine_nc1_fell'].value == 0.3
  # MSDR not above its value at initialisation (no move toward 2C from training).
  a = _assess('004c', ev_004c(final_msdr=q([1.001, 1.002, 1.001])))
  assert 'msdr_rose_from_initialisation' in a.failed_gates
  # MSDR far below its value at initialisation: a fall, not the rise toward 2C.
  a = _assess('004c', ev_004c(final_msdr=q([0.5, 0.6, 0.55]), msdr_init=q([1.18, 1.2, 1.19])))
  assert a.failed_gates == ['msdr_rose_from_initialisation']
  # A growth whose mean (1.13) clears 1.1 by less than 2 SE.
  a = _assess('004c', ev_004c(growth=q([1.05, 1.2, 1.14])))
  assert a.checks['toward_2c'] is False


def test_004c_evidence_reads_the_runs_by_their_tags(tmp_path):
  runs, records = [], {}
  for s in range(3):
    runs.append(sweep.Run(f'x{s}', None, seed=s, tags=dict(kind='fine', model='mlp')))
    records[f'x{s}'] = dict(final=dict(
        train_accuracy=1.0, train_nc1=0.2, train_nc1_init=40.0, terminal_phase_epoch=60,
        msdr_original_by_epoch={'0': 1.0, '2': 1.01, '10': 1.3, '150': 2.0 + s / 10},
        separation_by_epoch={'0': 2.2, '2': 2.2, '10': 1.8, '150': 1.4},
        fine_nc1_by_epoch={'0': 30.0, '2': 10.0, '10': 2.0, '150': 0.1 * (s + 1)}))
  study = reproduce.Study(config=ml_collections.ConfigDict(dict(fine_early_epoch=2)),
                          workdir=str(tmp_path), runs=runs, records=records)
  ev = p004.evidence_004c(study)
  assert ev['early_msdr']['values'] == [1.01] * 3
  assert ev['final_msdr']['values'] == pytest.approx([2.0, 2.1, 2.2])
  assert ev['growth']['values'] == pytest.approx([2.0 / 1.01, 2.1 / 1.01, 2.2 / 1.01])
  assert ev['fine_nc1_fall']['values'] == pytest.approx([0.01, 0.02, 0.03])
  assert ev['last_epoch'] == [150] * 3
  assert ev['by_epoch']['seed2']['fine_nc1']['150'] == pytest.approx(0.3)
  assert reproduce.assess(SPECS['004c'], ev).verdict == 'reproduced'


# ---------------------------------------------------------------------------
# Helpers, text.
# ---------------------------------------------------------------------------


def test_missing_or_nan_values_cannot_tell():
  # A seed whose MSDR is NaN: no check or gate decides on it (no exception).
  nan = float('nan')
  a = _assess('004a', ev_004a(c1=group(final_msdr=q([1.57, nan, 1.54]))))
  assert a.checks['msdr'] is None and a.failed_gates == ['msdr_moved_by_training']
  assert a.gates['msdr_moved_by_training'].value is None
  a = _assess('004c', ev_004c(early_msdr=q([1.007, None, 1.006]), growth=q([nan] * 3)))
  assert a.checks['early_halves_indistinct'] is None and a.checks['toward_2c'] is None
  assert a.verdict == 'inconclusive' and not a.failed_gates


def test_moved_gate_needs_a_change_beyond_the_noise_on_every_line():
  g = p004.moved_gate([([1.0, 1.0], [1.0, 1.0])], 'x')
  assert g.value is None and not g.ok  # Untrained: no change, no z.
  assert p004.moved_gate([([0.5, 0.6, 0.55], [1.18, 1.2, 1.19])], 'x').ok  # Downwards counts.
  assert math.isinf(p004.moved_gate([([2.0, 2.1], [1.0, 1.1])], 'x').value)
  # The weakest line decides.
  g = p004.moved_gate([([2.0, 2.1], [1.0, 1.1]), ([1.0, 1.1, 0.9], [1.0, 1.0, 1.0])], 'x')
  assert not g.ok and g.value == pytest.approx(0.0)


def test_setting_is_computed_from_the_variant():
  from configs.papers import p004_fine_grained as cfg
  plain, local = cfg.get_config(''), cfg.get_config('runlocal')
  for key in ('setting_004a', 'setting_004b', 'setting_004c', 'notes_004b', 'seeds'):
    assert key not in plain, key
  text = SPECS['004a'].setting(plain)
  assert '150 epochs' in text and 'seeds 0, 1, 2' in text and '10,000 training images' in text
  assert 'coarse labels grouping classes 1/8, 0/6, 4/7, 2/3, 5/9' in text  # the random pairing
  assert 'weight decay 5e-05' in text and 'weight decay 0.0005' in text  # configs #2 and #1
  text = SPECS['004a'].setting(local)
  assert '2 epochs' in text and '150 epochs' not in text and 'seed 0' in text
  assert '1,000 steps' in SPECS['004b'].setting(plain)
  assert '100 steps' in SPECS['004b'].setting(local)
  assert 'he_normal' in SPECS['004d'].setting(plain)
  assert '300 epochs' in SPECS['004c'].setting(plain)
  assert 'fine classes on 1,000 training images' in SPECS['004c'].setting(plain)
  assert '300 epochs' not in SPECS['004c'].setting(local)


def test_gate_descriptions_fit_in_the_report_table():
  for cid, ev in (('004a', ev_004a()), ('004b', ev_004b()), ('004c', ev_004c()),
                  ('004d', ev_004d())):
    for name, gate in reproduce.assess(SPECS[cid], ev).gates.items():
      assert '|' not in gate.about, (cid, name)  # A pipe would split report.md's cell.


def test_every_analysed_epoch_is_checkpointed_and_kept():
  """The analyses read each analysis epoch back: saved (epoch 0: checkpoint.init)
  and kept for good (checkpoint.epochs), whatever checkpoint.keep is."""
  from configs.papers import p004_fine_grained as cfg
  for arg in ('', 'runlocal', 'gpu'):
    config = cfg.get_config(arg)
    for t, epochs in ((config.coarse, config.coarse_epochs),
                      (config.fine, config.fine_epochs)):
      assert t.checkpoint.init and set(epochs) <= set(t.checkpoint.epochs), arg


# ---------------------------------------------------------------------------
# The :runlocal study end to end (REPRODUCTIONS.md's contract).
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_p004_runlocal_writes_the_contract_and_only_reproduces_a_run(tmp_path):
  """REPRODUCTIONS.md: results.json structure, report.md, figures; --config.only."""
  config = study_contract.paper_config('p004_fine_grained')
  results = reproduce.reproduce(config, str(tmp_path), command='test', say=lambda _: None)
  study_contract.check_claims(results, tmp_path, ('004a', '004b', '004d', '004c'))
  with open(tmp_path / 'results.json') as f:
    on_disk = json.load(f)
  assert on_disk['claims'].keys() == results['claims'].keys()
  assert (tmp_path / 'report.md').read_text().count('## 004') == 4
  run = 'fine_mlp_seed0'
  recorded = on_disk['runs'][run]
  assert set(recorded) == {'seed', 'overrides', 'seconds', 'final'}
  config.only = run
  again = reproduce.reproduce(config, str(tmp_path), command='test', say=lambda _: None)
  assert again['claims'] == {} and list(again['runs']) == [run]
  assert again['runs'][run]['final'] == recorded['final']
