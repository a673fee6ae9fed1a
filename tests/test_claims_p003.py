"""Paper 003's claims on synthetic evidence: reproduced, not reproduced, inconclusive.

Every claim of `nc_jax.studies.papers.p003_progressive.CLAIMS` is judged by
`reproduce.assess` on small hand-built evidence (no training): one case that
must read "reproduced", one "not reproduced" and one "inconclusive" because a
named gate fails, plus the failures issue 20 names for this paper (a numpy
False counted as a pass, a location check passing when no layer exceeds 1, a
difference read without its noise, one seed where the claim is a difference,
a change an untrained network shows).

The file's last section runs the paper's ``:runlocal`` study end to end
(REPRODUCTIONS.md's contract; `study_contract`).
"""

import copy
import json

import numpy as np
import pytest
import study_contract

from nc_jax.studies import reproduce
from nc_jax.studies import spread
from nc_jax.studies.papers import p003_progressive as p003
from nc_jax.workdir import to_python

SPECS = {s.id: s for s in p003.CLAIMS}
JITTER = (0.0, 0.01, -0.01)  # Per-seed offsets: a small, non-zero seed spread.


def _assess(cid, ev):
  """`reproduce.assess` (it raises TypeError on a check that is not a Python bool or None)."""
  return reproduce.assess(SPECS[cid], ev)


def _seeds(value, n=3, scale=1.0):
  """``n`` per-seed values around ``value``."""
  return [value + scale * JITTER[i % 3] * (1 + i // 3) for i in range(n)]


def _curves(curve, n=3, scale=0.01):
  """``n`` per-seed curves around ``curve`` (relative jitter ``scale``)."""
  return [[v * (1 + scale * JITTER[i % 3] / 0.01) for v in curve] for i in range(n)]


def _health(n=3, train=1.0, test=0.84, loss=0.01):
  return dict(seeds=list(range(n)), train_accuracy=[train] * n,
              test_accuracy=_seeds(test, n, 0.3), train_loss=[loss] * n)


def test_claims_are_the_papers_four_with_criteria_over_their_constants():
  assert list(SPECS) == ['003a', '003b', '003c', '003d']
  for spec in p003.CLAIMS:
    text = spec.criterion_text()  # Every placeholder is a constant.
    assert '{' not in text and 'Gates:' in text, spec.id
    assert spec.constants['min_seeds'] == spread.MIN_SEEDS
    assert f"{spec.constants['train_acc_min']}" in text
  assert '-0.8' in SPECS['003a'].criterion_text()
  assert '70%' in SPECS['003b'].criterion_text()
  assert '-0.5' in SPECS['003d'].criterion_text()


# ---------------------------------------------------------------------------
# 003a.
# ---------------------------------------------------------------------------


def _ev_003a(n=3, probe_z=10.0, deep_acc=0.418, fall_init=0.1, last_cdnv=0.2,
             plateau=0.2):
  """ResNet-18 / -34 (judged) and an MLP control that would fail every check."""
  runs = {}
  for label, family, blocks, acc in (('depth_resnet18', 'resnet', 9, 0.415),
                                     ('depth_resnet34', 'resnet', 17, deep_acc),
                                     ('depth3', 'mlp', 3, 0.2)):
    curve = list(np.geomspace(1.0, last_cdnv, blocks))
    g = _health(n, test=acc, train=1.0 if family == 'resnet' else 0.3)
    g.update(family=family, cdnv=_curves(curve, n), spearman_cdnv=[-1.0] * n,
             spearman_nc2=[-0.95] * n, probe_gain_z=probe_z,
             plateau_ratio=_seeds(plateau, n), log_cdnv_fall=_seeds(1.6, n, 2),
             log_cdnv_fall_init=_seeds(fall_init, n, 2))
    if family == 'mlp':
      g.update(spearman_cdnv=[0.5] * n, plateau_ratio=[1.0] * n, probe_gain_z=-3.0)
    runs[label] = g
  return dict(depths=list(runs), primary='resnet', runs=runs)


def test_003a_reproduced_on_the_resnets_with_the_mlp_control_unjudged():
  a = _assess('003a', _ev_003a())
  assert a.verdict == 'reproduced', (a.checks, a.failed_gates)
  assert set(a.checks) == {f'depth_resnet{d}_{c}' for d in (18, 34)
                           for c in ('cdnv_falls', 'nc2_falls', 'probe_gains')} | {
                               'plateau_in_deepest', 'little_gain_past_plateau'}


def test_003a_not_reproduced_without_a_plateau_or_a_probe_gain():
  a = _assess('003a', _ev_003a(plateau=1.0))  # A geometric fall: the per-layer law.
  assert a.verdict == 'not reproduced' and a.checks['plateau_in_deepest'] is False
  a = _assess('003a', _ev_003a(probe_z=2.5))  # A gain inside 3 SE.
  assert a.verdict == 'not reproduced' and a.checks['depth_resnet34_probe_gains'] is False
  # The deepest gaining 0.05 over the second deepest: not "little gain".
  a = _assess('003a', _ev_003a(deep_acc=0.465))
  assert a.verdict == 'not reproduced' and a.checks['little_gain_past_plateau'] is False


def test_003a_gain_inside_its_noise_of_the_margin_is_not_little():
  ev = _ev_003a()
  ev['runs']['depth_resnet18']['test_accuracy'] = [0.40, 0.44, 0.42]
  ev['runs']['depth_resnet34']['test_accuracy'] = [0.41, 0.47, 0.44]  # Gain 0.02 +- 0.02.
  assert _assess('003a', ev).checks['little_gain_past_plateau'] is False


def test_plateau_ratio_against_closed_forms():
  # A geometric fall (the per-layer law): every step the same, ratio 1.
  assert p003.plateau_ratio(np.geomspace(10.0, 0.1, 10)) == pytest.approx(1.0)
  # Steps of log CDNV (9 steps, thirds of 3): 1, 1, 1 | 0.1, 0.1, 0.1 | 2, 2, 2.
  steps = [1, 1, 1, 0.1, 0.1, 0.1, 2, 2, 2]
  curve = np.exp(-np.concatenate([[0], np.cumsum(steps)]))
  assert p003.plateau_ratio(curve) == pytest.approx(0.05)
  # No renewed fall at the end, too few blocks, a non-positive value: not measured.
  assert np.isnan(p003.plateau_ratio([1.0, 0.5, 0.25, 0.25, 0.3]))
  assert np.isnan(p003.plateau_ratio([1.0, 0.5, 0.25]))
  assert np.isnan(p003.plateau_ratio([1.0, 0.5, 0.0, 0.1, 0.05]))


def test_003a_inconclusive_when_an_untrained_network_falls_as_much():
  a = _assess('003a', _ev_003a(fall_init=1.6))  # The fall is there at initialisation.
  assert a.verdict == 'inconclusive' and a.failed_gates == ['cdnv_fall_vs_init']


def test_003a_inconclusive_without_collapse_or_training():
  a = _assess('003a', _ev_003a(last_cdnv=0.9))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['train_collapse']
  ev = _ev_003a()
  ev['runs']['depth_resnet18']['train_accuracy'][1] = 0.2  # A run that did not train.
  a = _assess('003a', ev)
  assert a.verdict == 'inconclusive' and a.failed_gates == ['runs_trained']
  ev = _ev_003a()
  ev['runs']['depth_resnet34']['train_loss'][0] = float('nan')
  assert _assess('003a', ev).failed_gates == ['finite_loss']


def test_003a_one_seed_is_inconclusive_not_a_failure_on_seven_images():
  """The first pass: one seed, depth 6's probe dipped by 7 test images of 2,000."""
  a = _assess('003a', _ev_003a(n=1, probe_z=float('nan')))
  assert a.verdict == 'inconclusive' and 'seeds' in a.failed_gates
  # One seed has no spread: no check can tell a difference from noise.
  assert all(v is None for v in a.checks.values()), a.checks


# ---------------------------------------------------------------------------
# 003b.
# ---------------------------------------------------------------------------

_LAYERS = ['layer1', 'layer2', 'layer3', 'layer4', 'layer5', 'penultimate']
_CDNV = {'0': [1.01, 0.89, 0.73, 0.52, 0.34, 0.16],
         '0.2': [2.72, 2.46, 1.98, 1.45, 0.95, 0.46],
         '0.4': [5.82, 5.14, 3.96, 2.74, 1.60, 0.68]}
_RATIO = {'0': [1.0] * 6,
          '0.2': [0.58, 0.66, 0.76, 0.89, 1.12, 1.63],
          '0.4': [0.31, 0.42, 0.56, 0.78, 1.26, 2.53]}


def _net(n, cdnv, ratio):
  runs = {}
  for k in cdnv:
    g = _health(n, test=0.84 - float(k) * 0.6)
    g.update(cdnv=_curves(cdnv[k], n), memorization_ratio=_curves(ratio[k], n))
    runs[k] = g
  return dict(rates=list(runs), layers=list(_LAYERS), runs=runs)


def _ev_003b(n=3, cdnv=None, ratio=None, other_ratio=None):
  """Two depths: ``depth6`` with ``cdnv`` / ``ratio``, ``depth9`` as the defaults
  (its ratio ``other_ratio``)."""
  nets = dict(depth6=_net(n, cdnv or _CDNV, ratio or _RATIO),
              depth9=_net(n, _CDNV, other_ratio or _RATIO))
  return dict(nets=list(nets), by_net=nets)


def test_003b_reproduced():
  a = _assess('003b', _ev_003b())
  assert a.verdict == 'reproduced', (a.checks, a.failed_gates)


def test_003b_not_reproduced_when_an_early_layer_memorizes():
  ratio = dict(_RATIO, **{'0.4': [0.31, 1.42, 0.56, 0.78, 1.26, 2.53]})
  a = _assess('003b', _ev_003b(ratio=ratio))
  assert a.verdict == 'not reproduced'
  assert a.checks['depth6_ratio_above_1_only_in_last_layers'] is False
  assert a.checks['depth9_ratio_above_1_only_in_last_layers'] is True


def test_003b_curves_not_lifted_is_a_python_false_and_not_reproduced():
  """The first pass counted numpy False from ``np.mean(lifted) >= 0.7`` as a pass."""
  flat = {k: _CDNV['0'][:4] + v[4:] for k, v in _CDNV.items()}  # Lifted at 2 of 6 layers.
  a = _assess('003b', _ev_003b(cdnv=flat))
  assert a.checks['depth6_curves_lifted_with_noise'] is False
  assert a.verdict == 'not reproduced'


def test_003b_inconclusive_when_no_layer_exceeds_1():
  """The location check alone passes when no layer exceeds 1: now a failed gate."""
  below = {k: [min(v, 0.95) for v in r] for k, r in _RATIO.items()}
  a = _assess('003b', _ev_003b(ratio=below))
  assert a.checks['depth6_ratio_above_1_only_in_last_layers'] is True
  assert a.verdict == 'inconclusive' and a.failed_gates == ['some_layer_above_1']
  assert a.gates['some_layer_above_1'].value == 0
  # "Regardless of network size": one depth without such a layer is enough.
  a = _assess('003b', _ev_003b(other_ratio=below))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['some_layer_above_1']


def test_003b_inconclusive_with_one_seed_or_without_collapse():
  a = _assess('003b', _ev_003b(n=1))
  assert a.verdict == 'inconclusive' and 'seeds' in a.failed_gates
  high = dict(_CDNV, **{'0': [1.5, 1.4, 1.3, 1.2, 1.1, 0.9]})
  a = _assess('003b', _ev_003b(cdnv=high))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['train_collapse']


# ---------------------------------------------------------------------------
# 003c.
# ---------------------------------------------------------------------------

_SEV = {'1': [0.98, 0.985, 0.989, 0.994, 1.04, 1.09],
        '3': [0.96, 0.975, 0.989, 1.05, 1.08, 1.12],
        '5': [0.94, 0.975, 0.994, 1.08, 1.10, 1.15]}


def _ev_003c(n=3, sev=None, noise_ratio=None, noise_seeds=3):
  sev = sev or _SEV
  runs = {}
  for k, r in sev.items():
    g = _health(n)
    g.update(cdnv=_curves([1.0, 0.8, 0.6, 0.45, 0.3, 0.17], n),
             memorization_ratio=_curves(r, n, scale=0.003))
    runs[k] = g
  noise = {}
  for k in ('0.2', '0.4'):
    g = _health(noise_seeds, test=0.7)
    g['memorization_ratio'] = _curves((noise_ratio or _RATIO)[k], noise_seeds)
    noise[k] = g
  return dict(severities=list(runs), layers=list(_LAYERS), runs=runs, label_noise=noise)


def test_003c_reproduced():
  a = _assess('003c', _ev_003c())
  assert a.verdict == 'reproduced', (a.checks, a.failed_gates)


def test_003c_extra_layer_inside_the_noise_does_not_count():
  """The first pass: the extra memorizing layer rested on ratios 1.010 and 1.026."""
  sev = {k: list(v) for k, v in _SEV.items()}
  ev = _ev_003c(sev=sev)
  for k in ev['runs']:  # Layer 4 straddles 1 across seeds.
    for c, v in zip(ev['runs'][k]['memorization_ratio'], (1.026, 0.99, 1.010)):
      c[3] = v
  a = _assess('003c', ev)
  assert a.checks['more_layers_than_label_noise'] is False
  assert a.verdict == 'not reproduced'


def test_003c_not_reproduced_when_early_layers_exceed_1():
  sev = dict(_SEV, **{'5': [1.2, 0.975, 0.994, 1.08, 1.10, 1.15]})
  a = _assess('003c', _ev_003c(sev=sev))
  assert a.verdict == 'not reproduced' and a.checks['above_1_only_in_last_layers'] is False


def test_003c_inconclusive_when_no_layer_exceeds_1_or_one_seed():
  below = {k: [min(v, 0.97) for v in r] for k, r in _SEV.items()}
  a = _assess('003c', _ev_003c(sev=below))
  assert a.verdict == 'inconclusive' and a.failed_gates == ['some_layer_above_1']
  a = _assess('003c', _ev_003c(noise_seeds=1))  # The label-noise side has one seed.
  assert a.verdict == 'inconclusive' and a.failed_gates == ['seeds']


# ---------------------------------------------------------------------------
# 003d.
# ---------------------------------------------------------------------------


def _ev_003d(n=3, first=0.03, last=0.12, rho=-0.9, init_last=0.6, seed_spread=0.02):
  runs = {}
  for name in ('background', 'clean', 'inverted'):
    g = _health(n, test=0.95)
    curve = [1.0, 0.85, 0.7, 0.53, 0.37, 0.21]
    g.update(cdnv=_curves(curve, n), target_cdnv=_curves(curve, n),
             target_cdnv_init=_curves([1.0, 0.9, 0.8, 0.75, 0.7, init_last], n))
    runs[name] = g
  return dict(sources=list(runs), layers=list(_LAYERS), runs=runs,
              replicate_seeds=list(range(n)), spread_first=_seeds(first, n, 0.2),
              spread_last=_seeds(last, n, 0.5), spearman_within_layers=_seeds(rho, n, 2),
              spearman_pooled=_seeds(-0.9, n), seed_spread_last=seed_spread)


def test_003d_reproduced():
  a = _assess('003d', _ev_003d())
  assert a.verdict == 'reproduced', (a.checks, a.failed_gates)
  assert set(a.checks) == {'diverge_with_depth', 'spread_beyond_seed_noise',
                           'collapse_predicts_probe'}


def test_003d_not_reproduced_when_the_spread_does_not_grow_beyond_noise():
  """The first pass: 'spread' 0.031 (first) vs 0.038 (last): seed noise."""
  ev = _ev_003d(first=0.035, last=0.038)
  ev['spread_last'] = [0.031, 0.045, 0.038]
  a = _assess('003d', ev)
  assert a.checks['diverge_with_depth'] is False and a.verdict == 'not reproduced'
  # Sources apart by no more than one source's seeds are apart.
  a = _assess('003d', _ev_003d(seed_spread=0.15))
  assert a.checks['spread_beyond_seed_noise'] is False and a.verdict == 'not reproduced'


def test_003d_pooled_spearman_from_the_layer_index_is_not_evidence():
  """The first pass: pooled over layers -0.94, within a layer positive."""
  a = _assess('003d', _ev_003d(rho=0.3))
  assert a.checks['collapse_predicts_probe'] is False and a.verdict == 'not reproduced'
  a = _assess('003d', _ev_003d(rho=-0.45))
  assert a.checks['collapse_predicts_probe'] is False


def test_003d_inconclusive_with_one_seed_or_no_change_from_initialisation():
  a = _assess('003d', _ev_003d(n=1))
  assert a.verdict == 'inconclusive' and 'seeds' in a.failed_gates
  a = _assess('003d', _ev_003d(init_last=0.21))  # Target CDNV as at initialisation.
  assert a.verdict == 'inconclusive' and a.failed_gates == ['target_collapse_vs_init']


def test_domain_replicates_pairs_sources_by_seed():
  runs = {
      'a': dict(seeds=[0, 1], target_cdnv=[[1.0, 0.5, 0.2], [1.0, 0.5, 0.25]],
                target_probe_accuracy=[[0.8, 0.85, 0.9], [0.8, 0.86, 0.9]]),
      'b': dict(seeds=[1, 0], target_cdnv=[[1.1, 0.4, 0.1], [1.1, 0.5, 0.1]],
                target_probe_accuracy=[[0.79, 0.86, 0.93], [0.79, 0.85, 0.95]]),
      'c': dict(seeds=[0, 1], target_cdnv=[[0.9, 0.6, 0.3], [0.9, 0.6, 0.3]],
                target_probe_accuracy=[[0.81, 0.84, 0.85], [0.81, 0.84, 0.85]]),
  }
  rep = p003.domain_replicates(runs, ['a', 'b', 'c'])
  assert rep['seeds'] == [0, 1]
  # Seed 0: a's first curve, b's second, c's first; sample std (ddof 1) over sources.
  cdnv0 = np.array([[1.0, 0.5, 0.2], [1.1, 0.5, 0.1], [0.9, 0.6, 0.3]])
  want = np.std(np.log(cdnv0), axis=0, ddof=1)
  np.testing.assert_allclose(rep['spread_by_layer'][0], want)
  assert rep['spread_first'][0] == pytest.approx(want[0])
  assert rep['spread_last'][0] == pytest.approx(want[-1])
  # Within each layer, across the sources: layer 3 has CDNV 0.2 / 0.1 / 0.3 and
  # probe 0.9 / 0.95 / 0.85, a perfect inverse order; layer 1 1.0 / 1.1 / 0.9
  # against 0.8 / 0.79 / 0.81 likewise; layer 2 ties 0.5 / 0.5 / 0.6 vs 0.85 / 0.85 / 0.84.
  assert rep['spearman_by_layer'][0][0] == pytest.approx(-1.0)
  assert rep['spearman_by_layer'][0][2] == pytest.approx(-1.0)
  assert rep['spearman_within_layers'][0] == pytest.approx(np.mean(rep['spearman_by_layer'][0]))
  assert -1 <= rep['spearman_pooled'][0] < 0
  # Seed noise within a source: c never changes, a and b do at the last layer.
  want_noise = np.mean([np.std(np.log([0.2, 0.25]), ddof=1), np.std(np.log([0.1, 0.1]), ddof=1),
                        0.0])
  assert p003.seed_spread_last(runs, ['a', 'b', 'c']) == pytest.approx(want_noise)


# ---------------------------------------------------------------------------
# From the plan's runs through tags: evidence, judge, JSON, setting.
# ---------------------------------------------------------------------------


def _fake_final(run, rng):
  n = run.config.model.kwargs.get('depth') or dict(resnet18=9, resnet34=17)[run.config.model.name]
  kind = run.tags['kind']
  layers = [f'layer{i + 1}' for i in range(n - 1)] + ['penultimate']
  down = np.geomspace(1.0, 0.2, n) * (1 + 0.02 * rng.standard_normal(n))
  f = dict(train_accuracy=1.0, test_accuracy=0.84 + 0.005 * rng.standard_normal(),
           train_loss=0.01, layers=layers, cdnv=down.tolist(), nc2_etf=down.tolist(),
           cdnv_init=np.full(n, 1.2).tolist(), nc2_etf_init=np.full(n, 0.9).tolist())
  if kind == 'depth':
    f['probe_accuracy'] = np.linspace(0.8, 0.85, n).tolist()
  if kind == 'label_noise' or run.tags.get('family') == 'mlp':  # MLP depths: noise 0.
    ratio = np.linspace(0.5, 1.5, n) if run.tags.get('label_noise') else np.ones(n)
    f.update(memorization_ratio=ratio.tolist(), memorization_ratio_init=[0.8] * n,
             cdnv_clean_labels=(down * ratio).tolist())
  if kind == 'corruption':
    ratio = np.linspace(0.9, 1.2, n)
    f.update(memorization_ratio=ratio.tolist(), memorization_ratio_init=[0.95] * n,
             cdnv_train_clean=(down * ratio).tolist())
  if kind == 'source':
    f.update(cdnv_target=(down * 1.1).tolist(), cdnv_target_init=[1.3] * n,
             target_probe_accuracy=np.linspace(0.85, 0.93, n).tolist())
  return f


def test_evidence_reads_the_plan_through_tags_and_is_json(tmp_path):
  from configs.papers import p003_progressive as cfg
  config = cfg.get_config('runlocal')
  with config.unlocked():
    config.seeds = (0, 1, 2)
    config.depth_models = ('resnet18', 'resnet34')  # Not trained here: records are made up.
  runs = p003.plan(config, str(tmp_path))
  assert all(r.tags.get('kind') for r in runs)
  rng = np.random.default_rng(0)
  records = {r.name: dict(seed=r.seed, final=_fake_final(r, rng)) for r in runs}
  study = reproduce.Study(config=config, workdir=str(tmp_path), runs=runs, records=records)
  for spec in p003.CLAIMS:
    if spec.id != '003c':  # One claim draws its figure; the rest skip drawing (speed).
      spec = reproduce.dataclasses.replace(spec, figure=None)
    claim = reproduce.judge(spec, study)
    json.dumps(to_python(claim.evidence), allow_nan=False)
    assert claim.verdict in reproduce.VERDICTS
    assert claim.gates['seeds']['ok'] is True, spec.id
    for fig in claim.figures:
      assert (tmp_path / fig).exists()
  assert (tmp_path / '003c_memorization_ratio.png').exists()
  ev = SPECS['003a'].evidence(study)
  assert ev['depths'] == ['depth2', 'depth3', 'depth4', 'depth_resnet18', 'depth_resnet34']
  assert [g['family'] for g in ev['runs'].values()] == ['mlp'] * 3 + ['resnet'] * 2
  assert len(ev['runs']['depth_resnet34']['cdnv'][0]) == 17
  assert ev['runs']['depth3']['seeds'] == [0, 1, 2]
  q = spread.quantity(ev['runs']['depth3']['test_accuracy'])
  assert ev['runs']['depth3']['summary']['test_accuracy'] == dict(mean=q['mean'], se=q['se'], n=3)
  # 003b's noise-free runs at depth 3 are 003a's depth-3 runs, not a second training.
  ev = SPECS['003b'].evidence(study)
  assert ev['nets'] == ['depth3']
  assert ev['by_net']['depth3']['runs']['0']['seeds'] == [0, 1, 2]
  assert not [r for r in runs if r.tags['kind'] == 'label_noise' and not r.tags['label_noise']]
  ev = SPECS['003d'].evidence(study)
  assert ev['replicate_seeds'] == [0, 1, 2] and len(ev['spearman_within_layers']) == 3
  # Renaming every run changes nothing: claims read tags, not names.
  renamed = [reproduce.dataclasses.replace(r, name=f'x{i}') for i, r in enumerate(runs)]
  study2 = reproduce.Study(config=config, workdir=str(tmp_path), runs=renamed,
                           records={f'x{i}': records[r.name] for i, r in enumerate(runs)})
  assert SPECS['003c'].evidence(study2) == SPECS['003c'].evidence(study)


def test_setting_is_computed_from_the_variant():
  from configs.papers import p003_progressive as cfg
  plain, local = cfg.get_config(''), cfg.get_config('runlocal')
  for spec in p003.CLAIMS:
    assert '100 epochs' in spec.setting(plain) and 'seeds 0, 1, 2 per group' in spec.setting(plain)
    assert '3 epochs' in spec.setting(local) and '100 epochs' not in spec.setting(local)
    assert 'seed 0 per group' in spec.setting(local)
  assert '30 training images per class' in SPECS['003b'].setting(local)
  assert 'MLP 2 x 32 (ReLU, batch norm), MLP 3 x 32' in SPECS['003a'].setting(local)
  gpu = cfg.get_config('gpu')
  assert 'crop (padding 4), flip' in SPECS['003a'].setting(gpu)
  assert 'no augmentation' in SPECS['003d'].setting(gpu)  # Digits are never flipped.
  assert 'ResNet-18' in SPECS['003a'].setting(plain) and 'Control' in SPECS['003a'].setting(plain)
  assert 'inverted (1 - x)' in SPECS['003d'].setting(plain)
  assert 'rotated by 90 degrees' in SPECS['003d'].setting(plain)
  assert 'depths 3, 6, 9' in SPECS['003b'].setting(plain)


def test_plain_plan_resnets_noise_depths_and_domains():
  """The CPU design: which run trains what (no training)."""
  from configs.papers import p003_progressive as cfg
  config = cfg.get_config('')
  runs = {r.name: r for r in p003.plan(config, '/nonexistent')}
  assert len(runs) == 54
  r34 = runs['depth_resnet34_seed2'].config
  assert (r34.model.name, r34.data.name, r34.augment.flip, r34.seed) == (
      'resnet34', 'cifar10_jpeg', True, 2)
  assert runs['depth_resnet34_seed2'].tags['family'] == 'resnet'
  # A depth run of the MLP trains exactly what the noise-free run of 003b would.
  d6, n6 = runs['depth6_seed1'].config, runs['noise0.2_depth6_seed1'].config
  assert d6.model.kwargs.depth == n6.model.kwargs.depth == 6
  assert tuple(d6.evals.label_sets) == tuple(n6.evals.label_sets) == ('clean',)
  assert d6.data.label_noise == 0 and n6.data.label_noise == 0.2
  assert {r.tags['net'] for r in runs.values() if r.tags['kind'] == 'label_noise'} == {
      'depth3', 'depth6', 'depth9'}
  src = runs['source_background_seed0'].config
  assert (src.data.name, src.data.corruption.name, src.augment.flip) == (
      'mnist', 'cifar_background', False)
  target = src.evals.sets.target
  assert target.dataset == 'digits' and tuple(target.options.image_size) == (20, 20)
  assert target.options.padding == 4 and target.examples == 0


def _write_run(path, layers, records):
  path.mkdir()
  (path / 'model.json').write_text(json.dumps(dict(
      feature_dims={**{l: 4 for l in layers}, 'projection': 2})))
  (path / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in records))


def test_analysis_reads_the_runs_records(tmp_path):
  """Per layer at the last epoch and at 0; the ratio over the same features."""
  layers = ['layer1', 'penultimate']
  recs = [dict(epoch=e, step=e, split='train', layer=l, cdnv=c * (e == 0 or 0.5),
               nc2_etf=0.1 * c, **extra)
          for e in (0, 3, 6) for l, c in zip(layers, (2.0, 1.0))
          for extra in ({}, dict(labels='clean'))]
  recs.append(dict(epoch=6, step=6, running_loss=0.1))  # A fit record.
  _write_run(tmp_path / 'noise', layers, recs)
  out = p003.analysis(str(tmp_path / 'noise'))
  assert out['layers'] == layers  # Not the projection head.
  assert out['cdnv'] == [1.0, 0.5] and out['cdnv_init'] == [2.0, 1.0]
  assert out['nc2_etf'] == [0.2, 0.1] and out['cdnv_clean_labels'] == [1.0, 0.5]
  assert out['memorization_ratio'] == [1.0, 1.0] == out['memorization_ratio_init']
  # Corrupted inputs: the ratio is CDNV on the same images clean over CDNV trained on.
  recs = [dict(r, split='train_clean', cdnv=3 * r['cdnv']) if r.get('labels') else r
          for r in recs]
  _write_run(tmp_path / 'corrupt', layers, [
      {k: v for k, v in r.items() if k != 'labels'} for r in recs])
  out = p003.analysis(str(tmp_path / 'corrupt'), extra_splits=('train_clean',))
  assert 'cdnv_clean_labels' not in out and out['cdnv_train_clean'] == [3.0, 1.5]
  assert out['memorization_ratio'] == [3.0, 3.0] == out['memorization_ratio_init']


def test_analysis_orders_layers_input_to_output(tmp_path):
  """model.json lists features sorted as text (stem last, layer10 before layer2)."""
  resnet = ['layer1.0', 'layer1.1', 'layer2.0', 'penultimate', 'stem']  # as in model.json
  recs = [dict(epoch=e, step=e, split='train', layer=l, cdnv=float(i), nc2_etf=0.0)
          for e in (0, 2) for i, l in enumerate(['stem', 'layer1.0', 'layer1.1', 'layer2.0',
                                                 'penultimate'])]
  _write_run(tmp_path / 'resnet', resnet, recs)
  out = p003.analysis(str(tmp_path / 'resnet'))
  assert out['layers'] == ['stem', 'layer1.0', 'layer1.1', 'layer2.0', 'penultimate']
  assert out['cdnv'] == [0.0, 1.0, 2.0, 3.0, 4.0]
  mlp = sorted([f'layer{i}' for i in range(1, 12)] + ['penultimate'])
  _write_run(tmp_path / 'mlp', mlp, [dict(epoch=e, step=e, split='train', layer=l, cdnv=1.0,
                                          nc2_etf=0.0) for e in (0, 1) for l in mlp])
  assert p003.analysis(str(tmp_path / 'mlp'))['layers'][9:] == ['layer10', 'layer11',
                                                                'penultimate']


def test_recorded_nan_reads_as_not_measured():
  """run.json records NaN as text ('nan'): a gate fails or a check cannot tell."""
  ev = _ev_003d()
  ev['spearman_within_layers'][1] = 'nan'
  a = _assess('003d', ev)
  assert a.checks['collapse_predicts_probe'] is None and a.verdict == 'inconclusive'
  ev = _ev_003a()
  ev['runs']['depth_resnet34']['log_cdnv_fall'][0] = float('nan')
  ev['runs']['depth_resnet18']['train_accuracy'][0] = 'nan'
  assert _assess('003a', ev).failed_gates == ['cdnv_fall_vs_init', 'runs_trained']


def test_synthetic_cases_do_not_share_state():
  ev = _ev_003a()
  before = copy.deepcopy(ev)
  _assess('003a', ev)
  assert ev == before


# ---------------------------------------------------------------------------
# The :runlocal study end to end (REPRODUCTIONS.md's contract).
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_p003_runlocal_writes_the_contract(tmp_path):
  config = study_contract.paper_config('p003_progressive')
  results = reproduce.reproduce(config, str(tmp_path), command='test', say=lambda _: None)
  study_contract.check_claims(results, tmp_path, ('003a', '003b', '003c', '003d'))
  # The memorization ratio is CDNV(clean labels) / CDNV(noisy labels), per layer.
  f = results['runs']['noise0.4_depth3_seed0']['final']
  np.testing.assert_allclose(f['memorization_ratio'],
                             np.array(f['cdnv_clean_labels']) / np.array(f['cdnv']))
  # Without noise (003a's depth-3 run) the two label sets coincide: the ratio is 1.
  np.testing.assert_allclose(results['runs']['depth3_seed0']['final']['memorization_ratio'], 1.0)
  # The target domain: every scikit-learn digits test image, framed as MNIST.
  f = results['runs']['source_inverted_seed0']['final']
  assert len(f['cdnv_target']) == len(f['layers']) == len(f['target_probe_accuracy'])
