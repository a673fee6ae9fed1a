"""Paper 004's claims on synthetic evidence: gates, typed checks, spread, tags.

For every claim (004a-004c) one hand-made evidence dict that must read
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
import copy
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
  assert [s.id for s in p004.CLAIMS] == ['004a', '004b', '004c']
  assert not hasattr(p004, 'analyze')  # reproduce() judges CLAIMS.
  for s in p004.CLAIMS:
    text = s.criterion_text()  # Every placeholder is a constant.
    assert '{' not in text and 'Gates:' in text and 'Checks' in text, s.id
  assert 'exceeds 1.1' in SPECS['004a'].criterion_text()
  assert 'NC1 <= 0.5' in SPECS['004c'].criterion_text()


# ---------------------------------------------------------------------------
# 004a: coarse labels.
# ---------------------------------------------------------------------------


def ev_004a(**changes):
  ev = dict(
      seeds=[0, 1, 2], last_epoch=[100, 100, 100], terminal_phase_epoch=[10, 10, 20],
      train_accuracy=q([1.0, 1.0, 1.0]), train_nc1=q([0.13, 0.14, 0.12]),
      msdr_init=q([1.179, 1.182, 1.180]), final_msdr=q([1.57, 1.50, 1.54]),
      clp_accuracy=q([0.93, 0.92, 0.94]), true_label_probe_accuracy=q([0.95, 0.95, 0.96]),
      reconstruction_accuracy=q([0.90, 0.88, 0.91]))
  ev.update(changes)
  return ev


def test_004a_reads_all_three_verdicts():
  a = _assess('004a', ev_004a())
  assert a.verdict == 'reproduced' and not a.failed_gates
  # The first pass's CLP (0.787, 0.842 against a probe at 0.95): not close enough.
  a = _assess('004a', ev_004a(clp_accuracy=q([0.787, 0.842, 0.80])))
  assert a.verdict == 'not reproduced' and a.checks['clp_close'] is False
  # Super-classes not collapsed: inconclusive, whatever the checks say.
  a = _assess('004a', ev_004a(train_nc1=q([0.13, 1.4, 0.12])))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['coarse_collapse']
  assert a.gates['coarse_collapse'].value == pytest.approx(1.4)


def test_004a_msdr_at_initialisation_does_not_pass():
  # The first pass: MSDR 1.18 at initialisation already "> 1.1". An untrained
  # network (final = initial) passes the MSDR check alone, not the claim.
  init = [1.179, 1.182, 1.180]
  a = _assess('004a', ev_004a(final_msdr=q(init), msdr_init=q(init)))
  assert a.checks['msdr'] is True  # The check alone holds ...
  assert a.verdict == 'inconclusive' and 'msdr_moved_by_training' in a.failed_gates
  # ... and so does an untrained network's evidence in full: no fit, no collapse.
  a = _assess('004a', ev_004a(final_msdr=q(init), msdr_init=q(init),
                              train_accuracy=q([0.2, 0.21, 0.19]), train_nc1=q([9, 8, 9]),
                              terminal_phase_epoch=[None] * 3))
  assert a.verdict == 'inconclusive'
  assert a.failed_gates == ['coarse_collapse', 'msdr_moved_by_training', 'runs_trained',
                            'terminal_phase']
  # Training that erased the structure (MSDR down to ~1) reads "not reproduced".
  a = _assess('004a', ev_004a(final_msdr=q([1.01, 1.02, 1.00])))
  assert a.verdict == 'not reproduced' and a.checks['msdr'] is False


def test_004a_seeds_noise_and_terminal_phase():
  one = {k: (q(v['values'][:1]) if isinstance(v, dict) else v[:1])
         for k, v in ev_004a().items()}
  a = _assess('004a', one)
  assert a.verdict == 'inconclusive' and 'seeds' in a.failed_gates
  assert a.checks['msdr'] is None  # One seed has no spread.
  # Reconstruction 0.8034 and 0.867 (mean 0.835 > 0.8): inside the noise, no pass.
  a = _assess('004a', ev_004a(reconstruction_accuracy=q([0.8034, 0.867, 0.82])))
  assert a.checks['subclusters'] is False and a.verdict == 'not reproduced'
  # Trained only 1.5x past the first 100%-accuracy epoch.
  a = _assess('004a', ev_004a(terminal_phase_epoch=[10, 10, 70]))
  assert a.failed_gates == ['terminal_phase'] and a.gates['terminal_phase'].value == \
      pytest.approx(100 / 70)
  # NumPy numbers in the evidence still give Python bools.
  a = _assess('004a', ev_004a(final_msdr=q(np.array([1.57, 1.50, 1.54], np.float32))))
  assert a.checks['msdr'] is True and a.verdict == 'reproduced'


def _coarse_study(tmp_path):
  def final(seed, clp, nc1=0.13):
    return dict(epoch=100, terminal_phase_epoch=10, train_accuracy=1.0, test_accuracy=0.97,
                train_nc1=nc1, train_nc1_init=9.0,
                msdr_by_epoch={'0': 1.18, '5': 1.3, '25': 1.45, '100': 1.5 + seed / 20},
                clp_accuracy=clp, lpo_accuracy=0.95, clp_reconstruction_accuracy=0.9)
  runs, records = [], {}
  for i, (seed, tested, clp) in enumerate([(0, True, 0.93), (1, True, 0.92), (2, True, 0.94),
                                           (0, False, None)]):
    runs.append(sweep.Run(f'r{i}', None, seed=seed,
                          tags=dict(kind='coarse', model='mlp' if tested else 'cnn',
                                    tested=tested)))
    records[f'r{i}'] = dict(final=final(seed, clp))
  runs.append(sweep.Run('r9', None, seed=3, tags=dict(kind='fine', model='mlp')))
  records['r9'] = dict(final=dict(train_accuracy=0.1))
  return reproduce.Study(config=None, workdir=str(tmp_path), runs=runs, records=records)


def test_004a_evidence_reads_the_runs_by_their_tags(tmp_path):
  ev = p004.evidence_004a(_coarse_study(tmp_path))
  assert ev['seeds'] == [0, 1, 2] and ev['tested_model'] == ['mlp']
  assert ev['final_msdr']['values'] == pytest.approx([1.5, 1.55, 1.6])
  assert ev['final_msdr']['n'] == 3 and ev['final_msdr']['se'] > 0
  assert ev['msdr_init']['values'] == [1.18] * 3
  assert list(ev['reported']) == ['cnn_seed0']
  assert set(ev['msdr_by_epoch']) == {'mlp_seed0', 'mlp_seed1', 'mlp_seed2', 'cnn_seed0'}
  assert reproduce.assess(SPECS['004a'], ev).verdict == 'reproduced'


# ---------------------------------------------------------------------------
# 004b: the Gaussian mixture.
# ---------------------------------------------------------------------------


def ev_004b(**changes):
  lines = ['input_dim:d_input=32', 'input_dim:d_input=64', 'hidden_dim:d_hidden=32',
           'weight_decay:wd=0', 'similarity:tau2']
  ev = dict(
      num_seeds=3, num_nonfinite=0, weight_decay_strength=1.0,
      min_train_accuracy_by_sigma2={'0.1': 0.8, '1': 1.0, '4': 1.0, '32': 1.0},
      msdr_at_largest_x={k: dict(x=32.0, trained=q([60.0, 66.0, 63.0]),
                                 initial=q([30.0, 31.0, 30.5])) for k in lines},
      spearman_sigma2={k: q([1.0, 1.0, 0.98]) for k in lines[:4]},
      input_dim_trend=q([0.8, 0.9, 0.85]), hidden_dim_trend=q([0.7, 0.8, 0.75]),
      weight_decay_spread=q([0.05, 0.04, 0.06]),
      smallest_tau2=dict(tau2=0.01, similar=q([1.01, 1.02, 1.01]),
                         dissimilar=q([5.9, 5.8, 6.0])),
      spearman_tau2=q([1.0, 1.0, 1.0]))
  ev.update(changes)
  return ev


def test_004b_reads_all_three_verdicts():
  a = _assess('004b', ev_004b())
  assert a.verdict == 'reproduced' and not a.failed_gates
  # The first pass: MSDR falls with the hidden width.
  a = _assess('004b', ev_004b(hidden_dim_trend=q([-1.0, -1.0, -0.8])))
  assert a.verdict == 'not reproduced' and a.checks['hidden_dim'] is False
  # The first pass's weight-decay grid (lr 0.01 x wd <= 0.01 x 1,000 steps = 0.1):
  # "no effect" nearly guaranteed, so the claim cannot be judged.
  a = _assess('004b', ev_004b(weight_decay_strength=0.1))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['weight_decay_effective']


def test_004b_the_input_itself_does_not_pass():
  # An untrained network: MSDR = its value at initialisation, about 1 + sigma^2
  # (1 + tau^2 for similar sub-classes). Every trend check holds for it ...
  same = {k: dict(x=32.0, trained=q([33.0, 32.5, 33.2]), initial=q([33.0, 32.5, 33.2]))
          for k in ev_004b()['msdr_at_largest_x']}
  a = _assess('004b', ev_004b(msdr_at_largest_x=same))
  assert a.checks['sigma2'] and a.checks['similar_lower'] and a.checks['similar_grows_with_tau2']
  # ... and the gate makes it inconclusive.
  assert a.verdict == 'inconclusive' and a.failed_gates == ['msdr_moved_by_training']
  # Trained within the noise of the untrained value on one line: still inconclusive.
  moved = copy.deepcopy(ev_004b()['msdr_at_largest_x'])
  moved['hidden_dim:d_hidden=32']['trained'] = q([30.1, 31.5, 30.2])
  a = _assess('004b', ev_004b(msdr_at_largest_x=moved))
  assert a.failed_gates == ['msdr_moved_by_training']


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
  # A width trend whose mean (0.63) clears 0.5 by less than 2 SE: no pass.
  a = _assess('004b', ev_004b(hidden_dim_trend=q([0.9, 0.3, 0.7])))
  assert a.checks['hidden_dim'] is False
  # A constant line (Spearman undefined): cannot tell.
  rhos = dict(ev_004b()['spearman_sigma2'], **{'weight_decay:wd=0.1': q([1.0, None, 1.0])})
  a = _assess('004b', ev_004b(spearman_sigma2=rhos))
  assert a.checks['sigma2'] is None and a.verdict == 'inconclusive' and not a.failed_gates
  # Weight decay moves MSDR by 30% on average: it has an effect.
  a = _assess('004b', ev_004b(weight_decay_spread=q([0.3, 0.28, 0.33])))
  assert a.checks['weight_decay'] is False


def _mixture_cfg():
  m = ml_collections.ConfigDict(dict(
      num_clusters=8, samples_per_cluster=20, num_superclasses=4, input_dim=16,
      hidden_dim=16, weight_decay=0.0, learning_rate=0.01, num_steps=1000, num_seeds=3,
      sigma2=(0.5, 4.0, 16.0), input_dims=(8, 16, 32), hidden_dims=(8, 16, 32),
      weight_decays=(0.0, 0.1), similarity=dict(sigma2=4.0, tau2=(0.1, 1.0, 4.0),
                                                num_similar=2)))
  return m


def _mixture_records(m, part, trained=True):
  """metrics.jsonl of simulations.mixture_study: MSDR ~ 1 + sigma^2 at initialisation;
  trained, x 1.5 and rising with the dimension (untrained: as at initialisation)."""
  out = []
  for line in p004.mixture_lines(m, part):
    for x in line['x']:
      for s in range(m.num_seeds):
        r = dict(line['match'], seed=s, step=m.num_steps, loss=0.01, train_accuracy=1.0)
        r[line['x_key']] = x
        sigma2 = r['sigma2']
        dim = r['hidden_dim'] if part == 'hidden_dim' else r['input_dim']
        r['msdr_init'] = 1 + sigma2 * (1 + 0.01 * s)
        gain = 1.5 * (1 + dim / 100 - r['weight_decay'] / 100) if trained else 1.0
        r['msdr'] = r['msdr_init'] * gain
        if part == 'similarity':
          r['msdr_similar'] = (1 + x) * (1.5 if trained else 1.0) * (1 + 0.01 * s)
          r['msdr_dissimilar'] = (1 + sigma2) * (1.5 if trained else 1.0) * (1 + 0.01 * s)
        out.append(r)
  out.append(dict(seed=0, step=0, sigma2=99.0))  # A record of no line.
  return out


def _mixture_study(tmp_path, m, trained=True):
  runs, records = [], {}
  for i, part in enumerate(p004.MIXTURE_PARTS):
    runs.append(sweep.Run(f'm{i}', None, tags=dict(kind='mixture', role='test', part=part)))
    records[f'm{i}'] = dict(final=dict(
        part=part, learning_rate=m.learning_rate, num_steps=m.num_steps,
        num_seeds=m.num_seeds,
        lines=p004.mixture_tables(m, part, _mixture_records(m, part, trained))))
  return reproduce.Study(config=None, workdir=str(tmp_path), runs=runs, records=records)


def test_004b_evidence_from_mixture_records(tmp_path):
  m = _mixture_cfg()
  tables = p004.mixture_tables(m, 'weight_decay', _mixture_records(m, 'weight_decay'))
  assert list(tables) == ['wd=0', 'wd=0.1']
  assert tables['wd=0']['x'] == [0.5, 4.0, 16.0]
  assert np.shape(tables['wd=0.1']['msdr']) == (3, 3)  # [sigma^2, seeds]
  assert tables['wd=0']['msdr_init'][1] == pytest.approx([5.0, 5.04, 5.08])
  ev = p004.evidence_004b(_mixture_study(tmp_path, m))
  assert ev['num_seeds'] == 3 and ev['weight_decay_strength'] == pytest.approx(1.0)
  assert ev['num_nonfinite'] == 0 and ev['min_train_accuracy_by_sigma2']['4'] == 1.0
  assert ev['spearman_sigma2']['input_dim:d_input=8']['values'] == [1.0, 1.0, 1.0]
  assert ev['input_dim_trend']['values'] == [1.0, 1.0, 1.0]
  assert ev['smallest_tau2']['similar']['values'] == pytest.approx([1.65, 1.6665, 1.683])
  a = reproduce.assess(SPECS['004b'], ev)
  assert a.verdict == 'reproduced', (a.gates, a.checks)
  # The same data untrained (MSDR = its value at initialisation): the sigma^2,
  # tau^2 and similar-vs-dissimilar checks hold for the input; inconclusive.
  a = reproduce.assess(SPECS['004b'], p004.evidence_004b(_mixture_study(tmp_path, m, False)))
  assert a.checks['sigma2'] and a.checks['similar_lower'] and a.checks['similar_grows_with_tau2']
  assert a.verdict == 'inconclusive' and a.failed_gates == ['msdr_moved_by_training']


# ---------------------------------------------------------------------------
# 004c: fine labels.
# ---------------------------------------------------------------------------


def ev_004c(**changes):
  ev = dict(
      seeds=[0, 1, 2], train_accuracy=q([1.0, 1.0, 1.0]), train_nc1=q([0.2, 0.25, 0.22]),
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
                              final_separation=q([2.37, 2.39, 2.38])))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['fine_collapse']
  assert all(a.checks.values())  # The first pass's checks all held.


def test_004c_gates_and_noise():
  a = _assess('004c', ev_004c(seeds=[0, 1]))
  assert a.failed_gates == ['seeds']
  a = _assess('004c', ev_004c(train_accuracy=q([1.0, 0.9, 1.0])))
  assert a.failed_gates == ['runs_trained']
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
        separation_by_epoch={'0': 2.2, '2': 2.2, '10': 1.8, '150': 1.4}))
  study = reproduce.Study(config=ml_collections.ConfigDict(dict(fine_early_epoch=2)),
                          workdir=str(tmp_path), runs=runs, records=records)
  ev = p004.evidence_004c(study)
  assert ev['early_msdr']['values'] == [1.01] * 3
  assert ev['final_msdr']['values'] == pytest.approx([2.0, 2.1, 2.2])
  assert ev['growth']['values'] == pytest.approx([2.0 / 1.01, 2.1 / 1.01, 2.2 / 1.01])
  assert ev['last_epoch'] == [150] * 3
  assert reproduce.assess(SPECS['004c'], ev).verdict == 'reproduced'


# ---------------------------------------------------------------------------
# Helpers, text.
# ---------------------------------------------------------------------------


def test_missing_or_nan_values_cannot_tell():
  # A seed whose MSDR is NaN: no check or gate decides on it (no exception).
  nan = float('nan')
  a = _assess('004a', ev_004a(final_msdr=q([1.57, nan, 1.54])))
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
  assert '100 epochs' in SPECS['004a'].setting(plain)
  assert 'seeds 0, 1, 2' in SPECS['004a'].setting(plain)
  text = SPECS['004a'].setting(local)
  assert '2 epochs' in text and '100 epochs' not in text and 'seed 0' in text
  assert '1,000 steps' in SPECS['004b'].setting(plain)
  assert '100 steps' in SPECS['004b'].setting(local)
  assert '150 epochs' in SPECS['004c'].setting(plain)
  assert '150 epochs' not in SPECS['004c'].setting(local)


def test_gate_descriptions_fit_in_the_report_table():
  for cid, ev in (('004a', ev_004a()), ('004b', ev_004b()), ('004c', ev_004c())):
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
  study_contract.check_claims(results, tmp_path, ('004a', '004b', '004c'))
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
