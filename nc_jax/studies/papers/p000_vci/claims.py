"""Paper 000's claims: `CLAIMS`, one `reproduce.ClaimSpec` each for 000a-000e.

Each spec holds its gates (every run read trained; the collapse the claim is
about happened, measured against the initialisation; >= 3 seeds where the
claim is about a trend or a difference), checks (every comparison of seed
groups through `spread`) and a criterion written over the same constants the
gates and checks read, fixed before the run; its evidence (`evidence`),
setting sentence (`setting`) and figures (`figures`) live beside it.
"""

from __future__ import annotations

import numpy as np

from nc_jax.studies import reproduce
from nc_jax.studies import spread
from nc_jax.studies.papers.p000_vci import evidence
from nc_jax.studies.papers.p000_vci import figures
from nc_jax.studies.papers.p000_vci import setting
from nc_jax.studies.papers.p000_vci.evidence import extreme
from nc_jax.studies.papers.p000_vci.plan import METRICS_000E, SWEEPS

# Gates shared by the claims, fixed before the run.
TRAINED = dict(
    test_accuracy_min=0.7,  # Every pretraining read: test accuracy (7 classes: chance 0.14).
    # and its final train accuracy (2,000 evaluated training images): the terminal phase.
    train_accuracy_min=0.99,
)
# 000a / 000b test identities that hold for any features; the gate only asks that the
# features be a trained network's (test accuracy > 2x chance), at any scale.
TRAINED_FEATURES = dict(test_accuracy_min=0.3)
COLLAPSED = dict(
    nc1_max=0.5,  # Every run read: final train NC1 (penultimate), ~1/5 of its value at init.
)
SEEDS = dict(min_seeds=spread.MIN_SEEDS, z=spread.Z)


# ---------------------------------------------------------------------------
# Gates shared by the claims.
# ---------------------------------------------------------------------------


def _trained_gates(ev, c) -> dict[str, reproduce.Gate]:
  """Every run read trained (``evidence.trained``): test accuracy, a finite loss."""
  t = ev['trained']
  gates = dict(
      runs_trained=reproduce.at_least(t['min_test_accuracy'], c['test_accuracy_min'],
                                      'smallest test accuracy of the pretrainings read'),
      losses_finite=reproduce.at_most(t['nonfinite_losses'], 0,
                                      'runs read whose final train loss is not finite'))
  if 'train_accuracy_min' in c:
    gates['terminal_phase'] = reproduce.at_least(
        t.get('min_train_accuracy'), c['train_accuracy_min'],
        'smallest final train accuracy of the pretrainings read (the terminal phase)')
  return gates


def _schedule_gates(ev, c) -> dict[str, reproduce.Gate]:
  """000c / 000d: every run trained, >= ``min_seeds`` per schedule, every run collapsed
  (below ``nc1_max`` and below its value at initialisation beyond noise)."""
  nc1 = ev['train_nc1']
  return dict(
      _trained_gates(ev, c),
      seeds=reproduce.seeds_gate(min(map(len, ev['seeds'].values()), default=0),
                                 c['min_seeds']),
      train_collapse=reproduce.at_most(extreme(max, nc1['final']['values']), c['nc1_max'],
                                       'largest final train NC1 (penultimate) of the runs read'),
      collapse_vs_init=reproduce.changed_gate(
          nc1['initial'], nc1['final'],
          'z of (train NC1 at initialisation - final train NC1)'))


# ---------------------------------------------------------------------------
# 000a: Thm 5.1 on real features.
# ---------------------------------------------------------------------------


def _checks_000a(ev, c) -> dict[str, bool | None]:
  return {f'{l}_agrees': bool(abs(v['closed_form'] - v['fitted'])
                              <= c['theorem_rtol'] * abs(v['fitted']) + c['theorem_atol'])
          for l, v in ev['layers'].items()}


CLAIM_000A = reproduce.ClaimSpec(
    id='000a',
    claim='Thm 5.1: the minimum class-balanced MSE linear-probe loss equals '
          '1/2 - 1/(2K) - Tr(Sigma_T^+ Sigma_B)/(2K).',
    paper='Thm 5.1 (proof in App. A), which makes VCI the normalised optimal linear-probe loss.',
    criterion=('Gates: the source pretraining reaches test accuracy >= {test_accuracy_min} '
               'with a finite final train loss. Check: |closed form - fitted| <= '
               '{theorem_rtol:g} x fitted + {theorem_atol:g} at every layer.'),
    constants=dict(theorem_rtol=1e-4, theorem_atol=1e-7, **TRAINED_FEATURES),
    evidence=evidence.evidence_000a,
    gates=_trained_gates,
    checks=_checks_000a,
    setting=setting.setting_000a)


# ---------------------------------------------------------------------------
# 000b: invariance of VCI.
# ---------------------------------------------------------------------------


def _gates_000b(ev, c) -> dict[str, reproduce.Gate]:
  return dict(_trained_gates(ev, c), maps_well_conditioned=reproduce.at_most(
      extreme(max, ev['map_condition_numbers']), c['cond_max'],
      'largest condition number of the random maps (float64 round-off stays below the '
      'invariance tolerance)'))


def _checks_000b(ev, c) -> dict[str, bool | None]:
  ch = ev['max_relative_change']
  return dict(
      vci_invariant=bool(ch['vci'] <= c['invariance_rtol']),
      others_change=all(bool(ch[k] > c['changes_min']) for k in ch if k != 'vci'),
      example_fuzziness_1_to_2=bool(np.allclose(ev['example_fuzziness'], [1, 2], rtol=1e-9)))


CLAIM_000B = reproduce.ClaimSpec(
    id='000b',
    claim='VCI is unchanged by an invertible linear map of the features, while fuzziness, '
          'squared distance and the cosine metrics change; the 2 x 2 example takes '
          'fuzziness from 1 to 2.',
    paper='Sec 4 (Obs 4.2-4.5, Thm 5.2).',
    criterion=('Gates: the source pretraining reaches test accuracy >= {test_accuracy_min} with '
               'a finite final train loss; every map has condition number <= {cond_max:g}. '
               'Checks: max relative change of VCI <= {invariance_rtol:g}; each of fuzziness, '
               'squared_distance, class_separation, cosine_within changes by > '
               '{changes_min:.0%} under some map; the example gives fuzziness 1 -> 2.'),
    constants=dict(invariance_rtol=1e-4, changes_min=0.01, cond_max=1e6, **TRAINED_FEATURES),
    evidence=evidence.evidence_000b,
    gates=_gates_000b,
    checks=_checks_000b,
    setting=setting.setting_000b)


# ---------------------------------------------------------------------------
# 000c: VCI and fuzziness fall over training; squared distance and cosine need not.
# ---------------------------------------------------------------------------


def _checks_000c(ev, c) -> dict[str, bool | None]:
  rho, lim = ev['spearman_with_epoch'], c['fall_rho_max']
  checks = {f'{name}_{k}_falls': spread.below(by_metric[k], lim)
            for name, by_metric in rho.items() for k in ('vci', 'fuzziness')}
  for k in ('squared_distance', 'cosine_within'):
    checks[f'{k}_not_consistent'] = spread.any_of(
        [spread.exceeds(by_metric[k], lim) for by_metric in rho.values()])
  return checks


CLAIM_000C = reproduce.ClaimSpec(
    id='000c',
    claim='Over training, VCI and fuzziness fall, while squared distance and cosine '
          'similarity need not.',
    paper='Fig 3: ResNet-18 on CIFAR-10, Nesterov SGD lr 0.1 x B/256, 10-epoch warm-up from '
          '1e-5, wd 8e-5, crop + flip; exponential x0.975/epoch, cosine, and cosine without '
          'wd and warm-up.',
    criterion=('Gates: every run reaches test accuracy >= {test_accuracy_min} and final train '
               'accuracy >= {train_accuracy_min} with a finite final train loss; >= {min_seeds} '
               'seeds per schedule; every run collapses: final train NC1 <= {nc1_max}, and below its value at initialisation by > {z:g} SE. '
               'Checks (Spearman(epoch, metric) per run, from the first evaluated epoch after '
               'the initialisation on): for every schedule, the seed mean of Spearman for VCI '
               'and for fuzziness lies below {fall_rho_max} by > {z:g} SE; and each of squared '
               'distance and cosine_within fails to fall under some schedule: its seed mean '
               'lies above {fall_rho_max} by > {z:g} SE there.'),
    constants=dict(fall_rho_max=-0.8, **TRAINED, **COLLAPSED, **SEEDS),
    evidence=evidence.evidence_000c,
    gates=_schedule_gates,
    checks=_checks_000c,
    setting=setting.setting_000c,
    figure=figures.figure_000c)


# ---------------------------------------------------------------------------
# 000d: within_vb falls, within_vb_perp does not.
# ---------------------------------------------------------------------------


def _checks_000d(ev, c) -> dict[str, bool | None]:
  return dict(
      vb_part_falls=spread.below(ev['vb_part']['ratio'], c['vb_fall_max']),
      vb_perp_part_rises=spread.exceeds(ev['vb_perp_part']['ratio'], c['vb_perp_rise_min']))


def _notes_000d(ev, config) -> str:
  del config
  perp = ev.get('vb_perp_part', {})
  means = [perp.get(k, {}).get('mean') for k in ('initial', 'first', 'last')]
  start = ('' if None in means else
           'The ratios run from the first epoch, as the first pass measured them: from the '
           f'initialisation the V_B-perp part (seed mean) goes {means[0]:.3g} at epoch 0, '
           f'{means[1]:.3g} after epoch 1, {means[2]:.3g} at the end. ')
  return start + ('In the UFM the gradient of the loss with respect to each feature lies in the row '
          'space of W, so with lambda_H = 0 and no injected noise gradient descent never '
          'moves the features inside null(W): within_vb_perp stays near its initial value '
          'instead of growing (the numbers above). The growth shown by '
          'experiments/ufm.py comes from the null-space noise it injects every step, by '
          'construction; Prop 4.1 says such growth costs nothing, not that training '
          'produces it.')


CLAIM_000D = reproduce.ClaimSpec(
    id='000d',
    claim='With p > K, the within-class variation inside span(M) falls while the part in its '
          'orthogonal complement does not, and can grow.',
    paper='Fig 1 and Prop 4.1: ResNet-50 on ImageNet; in the UFM without feature '
          'regularisation the loss cannot see variation in the null space of W.',
    criterion=('Gates: every run reaches test accuracy >= {test_accuracy_min} and final train '
               'accuracy >= {train_accuracy_min} with a finite final train loss; >= '
               '{min_seeds} seeds; every run collapses: final train NC1 <= {nc1_max}, and below '
               'its value at initialisation by > {z:g} SE. Checks, in the units of Fig 1 (the '
               'two parts of the squared distance: Tr(P_B Sigma_W) / Tr(Sigma_B) and '
               'Tr((I - P_B) Sigma_W) / Tr(Sigma_B)), on the per-seed ratio last / first '
               'evaluated epoch after the initialisation: the mean ratio of the V_B part lies '
               'below {vb_fall_max} by > {z:g} SE (it falls by more than a fifth), and that of '
               'the V_B-perp part above {vb_perp_rise_min} by > {z:g} SE (it grows by more than '
               'a fifth). The raw traces and the UFM are reported, not tested.'),
    constants=dict(vb_fall_max=0.8, vb_perp_rise_min=1.2, **TRAINED, **COLLAPSED, **SEEDS),
    evidence=evidence.evidence_000d,
    gates=_schedule_gates,
    checks=_checks_000d,
    setting=setting.setting_000d,
    figure=figures.figure_000d,
    notes=_notes_000d)


# ---------------------------------------------------------------------------
# 000e: VCI tracks transfer in both sweeps; the other metrics do not consistently.
# ---------------------------------------------------------------------------


def _gates_000e(ev, c) -> dict[str, reproduce.Gate]:
  gates = dict(_trained_gates(ev, c),
               mlog_finite=reproduce.at_most(ev['nonfinite_mlog'], 0,
                                             'runs whose MLOG is not finite'),
               seeds=reproduce.seeds_gate(min(ev['seeds'].values(), default=0),
                                          c['min_seeds']),
               regulariser_direction=reproduce.Gate(
                   ev['regulariser_z'], spread.Z, '>',
                   'z of cosine_within (within-class cosine distance) at the largest lambda '
                   'against the smallest: the regulariser lowers within-class similarity'))
  for s, by_metric in ev['moved'].items():
    for k in METRICS_000E:
      m = by_metric[k]
      gates[f'{s}_moves_{k}'] = reproduce.Gate(  # NaN (fails) when not measurable.
          abs(m['z']), spread.Z, '>', f'|z| of {k} between the end points of the {s} sweep')
      gates[f'{s}_moves_{k}_relative'] = reproduce.at_least(
          m['relative'], c['moves_min'],
          f'relative change of the seed mean of {k} between the end points of the {s} sweep')
  return gates


def _inconsistent(a: spread.Values, b: spread.Values, r_min: float) -> bool | None:
  """Pearson r (with its spread) in two sweeps: True if the sign flips or one |r| < r_min,
  each beyond its noise; False if both exceed r_min with the same sign beyond noise; else
  None."""
  above = lambda x, t: spread.exceeds(x, t) is True
  below = lambda x, t: spread.below(x, t) is True
  flip = (above(a, 0) and below(b, 0)) or (below(a, 0) and above(b, 0))
  weak = any(below(x, r_min) and above(x, -r_min) for x in (a, b))
  if flip or weak:
    return True
  same = ((above(a, r_min) and above(b, r_min)) or (below(a, -r_min) and below(b, -r_min)))
  return False if same else None


def _checks_000e(ev, c) -> dict[str, bool | None]:
  r = ev['pearson_of_means']
  checks = dict(vci_consistent=spread.all_of([spread.exceeds(r[s]['vci'], c['pearson_min'])
                                               for s in SWEEPS]))
  for k in METRICS_000E[1:]:
    checks[f'{k}_inconsistent'] = _inconsistent(r['temperature'][k], r['cosine_reg'][k],
                                                c['pearson_min'])
  return checks


def _sweep_reading(ev) -> str:
  """What the numbers say against the paper's sign (Fig 7: r(VCI, MLOG) > 0 in both sweeps;
  Table 2: MLOG falls as tau rises, 0.325 -> 0.116), read from the evidence."""
  r = ev.get('pearson_of_means', {})
  mlog = ev.get('by_point', {}).get('temperature', {}).get('mlog', [])
  try:
    rv = {s: r[s]['vci']['mean'] for s in SWEEPS}
    rf = {s: r[s]['fuzziness']['mean'] for s in SWEEPS}
    ends = (mlog[0]['point'], mlog[0]['mean'], mlog[-1]['point'], mlog[-1]['mean'])
    if None in rv.values() or None in rf.values() or None in ends:
      return ''
  except (KeyError, IndexError, TypeError):
    return ''
  same = (rv['temperature'] > 0) == (rv['cosine_reg'] > 0)
  return (f" Read against the paper: r(VCI, MLOG) of the seed means is {rv['temperature']:+.2f} "
          f"over tau and {rv['cosine_reg']:+.2f} over lambda"
          + (', one sign in both sweeps' if same else ', of opposite signs')
          + ("; the paper's is positive in both. MLOG goes from "
             f'{ends[1]:.3f} at tau {ends[0]:g} to {ends[3]:.3f} at tau {ends[2]:g} '
             "(Table 2: 0.325 at 0.1 to 0.116 at 1.0); fuzziness's r is "
             f"{rf['temperature']:+.2f} and {rf['cosine_reg']:+.2f}."
             + (' Here the less collapsed pretrainings (small tau, large lambda) transfer worse: '
                "the opposite of Kornblith et al.'s finding the paper builds on, so VCI tracks "
                'transfer with the opposite sign. A likely reason (not tested): a 3-layer MLP '
                'on 4,900 Fashion-MNIST images is not a ResNet-50 on ImageNet transferring to '
                'natural images; the per-task accuracies are in the runs table.'
                if same and rv['temperature'] < 0 else '')))


def _notes_000e(ev, config) -> str:
  del config
  return ("The tested statistic is Pearson r over the sweep points of the seed means (each "
          "point's metric and MLOG averaged over its seeds), with its SE from 2,000 bootstrap "
          'resamples of the seeds at each point (`spread.bootstrap`). Pearson r within each '
          "seed (pearson_by_seed) and over every run (pearson_pooled, the first pass's "
          "statistic) are reported, not tested. The pilot's lambda -> within-class similarity "
          'table (seed {seed}, not a study seed) is what the lambda grid was chosen from.'
          .format(seed=ev.get('pilot', {}).get('seed')) + _sweep_reading(ev))


CLAIM_000E = reproduce.ClaimSpec(
    id='000e',
    claim='Across pretrainings swept over the softmax temperature and, separately, over the '
          'within-class cosine regulariser, VCI correlates with transfer (MLOG) in both '
          'sweeps, while fuzziness, squared distance and cosine similarity do not '
          'correlate consistently.',
    paper='Sec 6.3, Fig 7, Tables 1-2: ResNet-50 on ImageNet, tau 0.1-1.0, lambda 2.5-10 '
          '(Table 2: as lambda grows, within-class cosine similarity falls 0.41 -> 0.17, '
          'squared distance rises 2.78 -> 9.96), metrics on a 50k training subset, L-BFGS '
          'probes with 97 L2 values on 10 downstream tasks (mean per-class accuracy for 4); '
          'Pearson r per metric over one run per point.',
    criterion=('Gates: every pretraining reaches test accuracy >= {test_accuracy_min} and '
               'final train accuracy >= {train_accuracy_min} (the terminal phase) with a finite '
               'final train loss and a finite MLOG; >= {min_seeds} seeds per sweep point; the '
               'regulariser lowers within-class cosine similarity (cosine_within at the largest '
               'lambda above the smallest by > {z:g} SE); each sweep moves each of VCI, '
               'fuzziness, squared_distance and cosine_within: the seed means at its end points '
               'differ by > {z:g} SE and by >= {moves_min:.0%} of the first. Checks, on '
               'Pearson(metric, MLOG) over the sweep points of the seed means, with its '
               'bootstrap SE: r for VCI exceeds {pearson_min} by > {z:g} SE in both sweeps; '
               'each of fuzziness, squared_distance and cosine_within is inconsistent: its r '
               'changes sign between the sweeps, or lies within (-{pearson_min}, '
               '{pearson_min}) in one of them, beyond {z:g} SE (consistent, i.e. not '
               'reproduced, if both exceed {pearson_min} in magnitude with one sign beyond '
               '{z:g} SE; otherwise undecided).'),
    constants=dict(pearson_min=0.5, moves_min=0.05, **TRAINED, **SEEDS),
    evidence=evidence.evidence_000e,
    gates=_gates_000e,
    checks=_checks_000e,
    setting=setting.setting_000e,
    figure=figures.figure_000e,
    notes=_notes_000e)


CLAIMS = [CLAIM_000A, CLAIM_000B, CLAIM_000C, CLAIM_000D, CLAIM_000E]
