"""Paper 000's claims on synthetic evidence: each reads reproduced, not reproduced, inconclusive.

The evidence is built by hand in the shape each claim's ``evidence(study)``
returns (only the fields its gates and checks read, plus what a reader
sees); no training runs.
"""

import dataclasses

import numpy as np
import pytest

from nc_jax.studies import reproduce
from nc_jax.studies import spread
from nc_jax.studies.papers import p000_vci

SPECS = {spec.id: spec for spec in p000_vci.CLAIMS}
SCHEDULES = ('exponential', 'cosine', 'cosine_nowd')


def _assess(cid, ev):
  return reproduce.assess(SPECS[cid], ev)  # Raises on a check that is not a bool or None.


def _trained(acc=0.83, nonfinite=0, runs=3):
  return dict(runs=runs, test_accuracy=spread.quantity([acc] * runs), min_test_accuracy=acc,
              nonfinite_losses=nonfinite)


def _nc1(initial=(2.5, 2.4, 2.6), final=(0.20, 0.21, 0.22)):
  return dict(initial=spread.quantity(initial), final=spread.quantity(final))


def test_every_claim_has_its_parts_and_criterion_text():
  assert list(SPECS) == ['000a', '000b', '000c', '000d', '000e']
  assert not hasattr(p000_vci, 'analyze') and not hasattr(p000_vci, 'CRITERIA')
  for spec in p000_vci.CLAIMS:
    text = spec.criterion_text()  # Every placeholder is a constant.
    assert '{' not in text and 'Gates' in text, spec.id
  # The text is the constants': change one and the criterion follows.
  spec = dataclasses.replace(SPECS['000c'], constants=dict(SPECS['000c'].constants,
                                                           fall_rho_max=-0.9))
  assert 'below -0.9 by > 2 SE' in spec.criterion_text()


# ---------------------------------------------------------------------------
# 000a: Thm 5.1.
# ---------------------------------------------------------------------------


def _ev_000a(gap=1e-10, **trained):
  return dict(trained=_trained(runs=1, **trained),
              layers={l: dict(closed_form=0.05 + gap, fitted=0.05)
                      for l in ('layer1', 'layer2', 'penultimate')})


def test_000a_three_verdicts():
  assert _assess('000a', _ev_000a()).verdict == 'reproduced'
  a = _assess('000a', _ev_000a(gap=1e-3))
  assert a.verdict == 'not reproduced' and a.checks['penultimate_agrees'] is False
  a = _assess('000a', _ev_000a(acc=0.15))  # The source network did not train (chance 0.14).
  assert a.verdict == 'inconclusive' and a.failed_gates == ['runs_trained']
  a = _assess('000a', _ev_000a(nonfinite=1))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['losses_finite']


# ---------------------------------------------------------------------------
# 000b: invariance of VCI.
# ---------------------------------------------------------------------------


def _ev_000b(vci=2e-12, class_separation=0.018, cond=(2661.5, 535.7), example=(1.0, 2.0)):
  return dict(trained=_trained(runs=1),
              max_relative_change=dict(vci=vci, fuzziness=0.14, squared_distance=0.03,
                                       class_separation=class_separation, cosine_within=0.04),
              map_condition_numbers=list(cond), example_fuzziness=list(example),
              example_vci=[0.5, 0.5])


def test_000b_three_verdicts():
  assert _assess('000b', _ev_000b()).verdict == 'reproduced'
  a = _assess('000b', _ev_000b(vci=0.02))
  assert a.verdict == 'not reproduced' and a.checks == dict(
      vci_invariant=False, others_change=True, example_fuzziness_1_to_2=True)
  a = _assess('000b', _ev_000b(class_separation=0.005))
  assert a.verdict == 'not reproduced' and a.checks['others_change'] is False
  assert _assess('000b', _ev_000b(example=(1.0, 1.5))).verdict == 'not reproduced'
  # A near-singular map: round-off, not the metric, would decide; inconclusive.
  a = _assess('000b', _ev_000b(vci=0.02, cond=(1e3, 1e9)))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['maps_well_conditioned']
  ev = dict(_ev_000b(), trained=_trained(acc=0.2, runs=1))
  a = _assess('000b', ev)
  assert a.verdict == 'inconclusive' and a.failed_gates == ['runs_trained']


# ---------------------------------------------------------------------------
# 000c: VCI and fuzziness fall; squared distance and cosine need not.
# ---------------------------------------------------------------------------


def _ev_000c(falls=(-0.99, -0.98, -0.99), sqdist=(0.1, 0.2, 0.0), seeds=(0, 1, 2),
             nc1=None, **trained):
  n = len(seeds)
  rho = {k: spread.quantity(falls[:n]) for k in ('vci', 'fuzziness')}
  rho.update(squared_distance=spread.quantity(sqdist[:n]),
             cosine_within=spread.quantity([-0.95, -0.97, -0.96][:n]),
             class_separation=spread.quantity([0.8, 0.85, 0.9][:n]))
  return dict(seeds={s: list(seeds) for s in SCHEDULES}, trained=_trained(runs=3 * n, **trained),
              train_nc1=nc1 or _nc1(), spearman_with_epoch={s: rho for s in SCHEDULES})


def test_000c_three_verdicts():
  a = _assess('000c', _ev_000c())
  assert a.verdict == 'reproduced' and all(g.ok for g in a.gates.values())
  assert set(a.gates) == {'runs_trained', 'losses_finite', 'seeds', 'train_collapse',
                          'collapse_vs_init'}
  a = _assess('000c', _ev_000c(falls=(-0.9, -0.5, -0.7)))
  assert a.verdict == 'not reproduced' and a.checks['cosine_vci_falls'] is False
  # Squared distance and cosine fall consistently everywhere: the second part fails.
  ev = _ev_000c(sqdist=(-0.99, -0.97, -0.98))
  a = _assess('000c', ev)
  assert a.verdict == 'not reproduced' and a.checks['sqdist_or_cosine_not_consistent'] is False
  # Never collapsed (final train NC1 1.2-1.3): inconclusive, not a verdict on the claim.
  a = _assess('000c', _ev_000c(falls=(-0.9, -0.5, -0.7), nc1=_nc1(final=(1.2, 1.3, 1.25))))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['train_collapse']


def test_000c_a_fall_inside_its_noise_does_not_count():
  # Mean Spearman -0.85 is below -0.8, but by less than 2 SE (0.12): not a fall.
  falls = (-0.99, -0.6, -0.96)
  assert np.mean(falls) < -0.8
  a = _assess('000c', _ev_000c(falls=falls))
  assert a.verdict == 'not reproduced' and a.checks['cosine_vci_falls'] is False


def test_000c_one_seed_and_an_untrained_network_are_inconclusive():
  a = _assess('000c', _ev_000c(seeds=(0,), nc1=_nc1((2.5,), (0.2,))))
  assert a.verdict == 'inconclusive' and 'seeds' in a.failed_gates
  assert a.checks['cosine_vci_falls'] is None  # One seed: no noise estimate.
  # NC1 already low at initialisation and unchanged by training: the absolute
  # level passes, the change against the untrained network does not.
  a = _assess('000c', _ev_000c(nc1=_nc1(initial=(0.40, 0.42, 0.41), final=(0.41, 0.40, 0.42))))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['collapse_vs_init']


# ---------------------------------------------------------------------------
# 000d: within_vb falls, within_vb_perp does not.
# ---------------------------------------------------------------------------


def _ev_000d(vb=(0.45, 0.47, 0.46), perp=(1.20, 1.22, 1.19), nc1=None, **trained):
  n = len(vb)
  return dict(seeds={'cosine_nowd': list(range(n))}, trained=_trained(runs=n, **trained),
              train_nc1=nc1 or _nc1(), first_epoch=[1] * n, last_epoch=[30] * n,
              within_vb=dict(ratio=spread.quantity(vb)),
              within_vb_perp=dict(ratio=spread.quantity(perp)),
              ufm_within_vb_first_last=[2e-4, 3e-5], ufm_within_vb_perp_first_last=[0.12, 0.12])


def test_000d_three_verdicts():
  a = _assess('000d', _ev_000d())
  assert a.verdict == 'reproduced' and a.checks == dict(within_vb_falls=True,
                                                         within_vb_perp_does_not=True)
  # within_vb_perp falls to 60%: not reproduced.
  a = _assess('000d', _ev_000d(perp=(0.6, 0.62, 0.58)))
  assert a.verdict == 'not reproduced' and a.checks['within_vb_perp_does_not'] is False
  # Mean ratio 0.49 < 0.5, but inside its noise: not a fall by the criterion.
  a = _assess('000d', _ev_000d(vb=(0.48, 0.52, 0.47)))
  assert a.verdict == 'not reproduced' and a.checks['within_vb_falls'] is False
  a = _assess('000d', _ev_000d(acc=0.3))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['runs_trained']


def test_000d_one_seed_or_no_collapse_is_inconclusive():
  a = _assess('000d', _ev_000d(vb=(0.3,), perp=(1.3,), nc1=_nc1((2.5,), (0.2,))))
  assert a.verdict == 'inconclusive' and 'seeds' in a.failed_gates
  # An untrained network: nothing changes (ratios 1) and NC1 stays at its initial value.
  a = _assess('000d', _ev_000d(vb=(1.0, 1.01, 0.99), perp=(1.0, 1.01, 0.99),
                               nc1=_nc1(final=(2.5, 2.4, 2.6))))
  assert a.verdict == 'inconclusive'
  assert a.failed_gates == ['collapse_vs_init', 'train_collapse']


# ---------------------------------------------------------------------------
# 000e: VCI tracks transfer in both sweeps, the other metrics do not consistently.
# ---------------------------------------------------------------------------

R_OK = dict(
    temperature=dict(vci=(0.9, 0.85, 0.95), fuzziness=(0.9, 0.8, 0.85),
                     squared_distance=(0.1, -0.1, 0.0), class_separation=(-0.9, -0.8, -0.85)),
    cosine_reg=dict(vci=(0.8, 0.9, 0.85), fuzziness=(-0.9, -0.8, -0.85),
                    squared_distance=(0.9, 0.85, 0.95), class_separation=(0.0, 0.1, -0.1)))


def _ev_000e(r=None, moved=None, nonfinite_mlog=0, **trained):
  """Pearson r per seed ``r`` and, per sweep and metric, the end points' values."""
  r = r or R_OK
  moved = moved or {}
  by_point, pearson_by_seed = {}, {}
  for s, by_metric in r.items():
    n = len(by_metric['vci'])
    pearson_by_seed[s] = {k: dict(seeds=list(range(n)), **spread.quantity(v))
                          for k, v in by_metric.items()}
    by_point[s] = {}
    for k in p000_vci.METRICS_000E:
      first, last = moved.get((s, k), ([1.0, 1.01, 0.99][:n], [2.0, 2.01, 1.99][:n]))
      by_point[s][k] = [dict(point=0.1, **spread.quantity(first)),
                        dict(point=1.0, **spread.quantity(last))]
  return dict(trained=_trained(runs=30, **trained), nonfinite_mlog=nonfinite_mlog,
              seeds={s: len(by_metric['vci']) for s, by_metric in r.items()},
              by_point=by_point, pearson_by_seed=pearson_by_seed, pearson_pooled={}, runs={})


def _replace_r(sweep, metric, values):
  r = {s: dict(m) for s, m in R_OK.items()}
  r[sweep][metric] = values
  return r


def test_000e_three_verdicts():
  a = _assess('000e', _ev_000e())
  assert a.verdict == 'reproduced' and all(g.ok for g in a.gates.values())
  assert a.checks == dict(vci_consistent=True, fuzziness_inconsistent=True,
                          squared_distance_inconsistent=True,
                          class_separation_inconsistent=True)
  assert {'temperature_moves_vci', 'cosine_reg_moves_fuzziness', 'seeds',
          'mlog_finite'} <= set(a.gates)
  # The first pass's pattern: VCI correlates negatively in one sweep.
  a = _assess('000e', _ev_000e(_replace_r('temperature', 'vci', (-0.7, -0.6, -0.65))))
  assert a.verdict == 'not reproduced' and a.checks['vci_consistent'] is False
  # Fuzziness correlates strongly with one sign in both sweeps: consistent, so the claim fails.
  a = _assess('000e', _ev_000e(_replace_r('cosine_reg', 'fuzziness', (0.9, 0.85, 0.95))))
  assert a.verdict == 'not reproduced' and a.checks['fuzziness_inconsistent'] is False
  # The lambda sweep barely moves VCI (the first pass: 0.069-0.080): no range to correlate over.
  still = ([0.075, 0.080, 0.070], [0.076, 0.074, 0.078])
  a = _assess('000e', _ev_000e(moved={('cosine_reg', 'vci'): still}))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['cosine_reg_moves_vci']


def test_000e_noise_one_seed_and_broken_runs():
  # VCI's r averages 0.6 > 0.5 but with a spread that leaves it inside the noise.
  a = _assess('000e', _ev_000e(_replace_r('cosine_reg', 'vci', (0.95, 0.2, 0.65))))
  assert a.verdict == 'not reproduced' and a.checks['vci_consistent'] is False
  # An r that neither flips nor is clearly weak nor clearly consistent: undecided.
  r = _replace_r('cosine_reg', 'squared_distance', (0.9, 0.1, 0.5))
  r['temperature']['squared_distance'] = (0.9, 0.85, 0.95)
  a = _assess('000e', _ev_000e(r))
  assert a.checks['squared_distance_inconsistent'] is None and a.verdict == 'inconclusive'
  one = {s: {k: v[:1] for k, v in m.items()} for s, m in R_OK.items()}
  a = _assess('000e', _ev_000e(one))
  assert a.verdict == 'inconclusive' and 'seeds' in a.failed_gates
  assert a.checks['vci_consistent'] is None
  a = _assess('000e', _ev_000e(acc=0.4, nonfinite_mlog=2))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['mlog_finite', 'runs_trained']


def test_000e_statistics_of_a_sweep_table():
  """`sweep_statistics` on a hand-made table: r per seed, end points, pooled r."""
  rng = np.random.default_rng(0)
  points = (0.1, 0.4, 1.0)
  table = {}
  for s in p000_vci.SWEEPS:
    rows = []
    for seed in range(3):
      for p in points:
        vci = 0.3 - 0.2 * p + 0.01 * rng.normal()
        rows.append(dict(point=p, seed=seed, vci=vci, fuzziness=rng.normal(),
                         squared_distance=p + 0.01 * rng.normal(),
                         class_separation=np.float64(rng.normal()),
                         mlog=np.float64(2 * vci + 0.001 * rng.normal())))
    table[s] = rows
  st = p000_vci.sweep_statistics(table)
  assert st['seeds'] == dict(temperature=3, cosine_reg=3) and st['nonfinite_mlog'] == 0
  seed1 = [row for row in table['temperature'] if row['seed'] == 1]
  want = np.corrcoef([row['vci'] for row in seed1], [row['mlog'] for row in seed1])[0, 1]
  got = st['pearson_by_seed']['temperature']['vci']
  assert got['values'][1] == pytest.approx(want) and got['n'] == 3
  first = st['by_point']['cosine_reg']['vci'][0]
  assert first['point'] == 0.1 and len(first['values']) == 3
  ev = dict(trained=_trained(runs=18), **st, runs=table)
  a = _assess('000e', ev)  # NumPy numbers in the evidence still give Python bools.
  assert a.checks['vci_consistent'] is True
  assert a.gates['temperature_moves_vci'].ok and not a.gates['temperature_moves_fuzziness'].ok
