"""Paper 004's evidence: each claim's numbers, read from the runs by their tags.

Per-seed values are `spread.quantity` dicts, so the gates and checks compare
every number with its noise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from nc_jax.probes.correlation import spearman
from nc_jax.studies import reproduce
from nc_jax.studies import spread
from nc_jax.studies.papers.p004_fine_grained.criteria import C_004B, C_004D, extreme
from nc_jax.studies.papers.p004_fine_grained.runs import choose_learning_rate, lr_rule_rows


def by_epoch(values: Mapping[str, float]) -> tuple[list[int], list[float]]:
  """(epochs ascending, their values) of ``{str(epoch): value}``."""
  epochs = sorted(int(e) for e in values)
  return epochs, [values[str(e)] for e in epochs]


# ---------------------------------------------------------------------------
# 004a: coarse labels.
# ---------------------------------------------------------------------------


def kept(trained: float | None, reference: float | None) -> float | None:
  """(trained - 1) / (reference - 1): the share of a reference's excess MSDR
  left after training (1: all, 0: erased, as full collapse would)."""
  if trained is None or reference is None or reference == 1:
    return None
  return (trained - 1.0) / (reference - 1.0)


def _coarse_group(runs: list[Any]) -> dict[str, Any]:
  """The numbers of one coarse model's seeds (`spread.quantity` each)."""
  finals = [r.final for r in runs]
  per_seed = lambda values: spread.quantity(list(values))
  last = lambda f: by_epoch(f['msdr_by_epoch'])[1][-1]
  init = [f['msdr_by_epoch'].get('0') for f in finals]
  final = [last(f) for f in finals]
  out = dict(
      seeds=[r.seed for r in runs],
      last_epoch=[f['epoch'] for f in finals],
      terminal_phase_epoch=[f['terminal_phase_epoch'] for f in finals],
      **{k: per_seed(f[k] for f in finals)
         for k in ('train_accuracy', 'test_accuracy', 'train_nc1', 'train_nc1_init')},
      msdr_init=per_seed(init), final_msdr=per_seed(final),
      msdr_kept=per_seed(kept(a, b) for a, b in zip(final, init)))
  if all('clp_accuracy' in f for f in finals):
    clp = [f['clp_accuracy'] for f in finals]
    lpo = [f['lpo_accuracy'] for f in finals]
    out.update(clp_accuracy=per_seed(clp), true_label_probe_accuracy=per_seed(lpo),
               clp_over_probe=per_seed(a / b if b else None for a, b in zip(clp, lpo)),
               reconstruction_accuracy=per_seed(f['clp_reconstruction_accuracy']
                                                for f in finals))
  return out


def _by_model(runs) -> dict[str, list[Any]]:
  """Runs grouped by their model tag, in plan order."""
  out: dict[str, list[Any]] = {}
  for r in runs:
    out.setdefault(r.tags['model'], []).append(r)
  return out


def evidence_004a(study: reproduce.Study) -> dict[str, Any]:
  """Each tested model's numbers per seed; the reported models' numbers."""
  tested = _by_model(study.where(kind='coarse', tested=True))
  reported = _by_model(study.where(kind='coarse', tested=False))
  by_model = {m: _coarse_group(rs) for m, rs in tested.items()}
  return dict(
      tested_models=list(tested),
      msdr_models=[m for m, rs in tested.items() if rs[0].tags.get('msdr_tested')],
      by_model=by_model,
      msdr_by_epoch={f"{r.tags['model']}_seed{r.seed}": r.final['msdr_by_epoch']
                     for rs in list(tested.values()) + list(reported.values()) for r in rs},
      reported={m: {k: v['mean'] if isinstance(v, dict) and 'mean' in v else v
                    for k, v in _coarse_group(rs).items()}
                for m, rs in reported.items()})


# ---------------------------------------------------------------------------
# 004b: the Gaussian mixture.
# ---------------------------------------------------------------------------


def _table(line: Mapping[str, Any], key: str) -> np.ndarray:
  """[points, seeds] float array (NaN where a value is missing)."""
  return np.array([[np.nan if v is None else v for v in row] for row in line[key]],
                  np.float64)


def _per_seed(fn: Callable[[int], Any], num_seeds: int) -> dict[str, Any]:
  """`spread.quantity` of ``fn(seed)`` over the seeds."""
  return spread.quantity([fn(s) for s in range(num_seeds)])


def _msdr_by_line(lines: Mapping[str, Mapping[str, Any]], seed: int, sigma2_min: float
                  ) -> tuple[list[Any], np.ndarray]:
  """(each line's value, MSDR [lines, points at sigma^2 >= sigma2_min]) of one seed."""
  labels = list(lines)
  keep = np.asarray(lines[labels[0]]['x']) >= sigma2_min
  table = np.stack([_table(lines[k], 'msdr')[:, seed] for k in labels])
  return [lines[k]['value'] for k in labels], table[:, keep]


def dim_trend(lines: Mapping[str, Mapping[str, Any]], seed: int, sigma2_min: float) -> float:
  """Mean over sigma^2 >= sigma2_min of Spearman(dimension, MSDR) of one seed."""
  dims, table = _msdr_by_line(lines, seed, sigma2_min)
  rhos = [spearman(dims, column) for column in table.T]
  return float(np.mean(rhos)) if rhos else float('nan')


def _wd_spread(lines: Mapping[str, Mapping[str, Any]], seed: int, sigma2_min: float) -> float:
  """Mean over sigma^2 >= sigma2_min of (max - min) / mean MSDR over weight decays."""
  _, table = _msdr_by_line(lines, seed, sigma2_min)
  rel = (table.max(0) - table.min(0)) / table.mean(0)
  return float(rel.mean()) if rel.size else float('nan')


def kept_table(line: Mapping[str, Any], trained: str = 'msdr', reference: str = 'msdr_input'
               ) -> np.ndarray:
  """[points, seeds] kept fraction (`kept`) of a mixture line (NaN where not measurable)."""
  t, ref = _table(line, trained), _table(line, reference)
  with np.errstate(divide='ignore', invalid='ignore'):
    return np.where(ref != 1, (t - 1.0) / (ref - 1.0), np.nan)


def _msdr_at_largest_x(lines) -> dict[str, dict[str, Any]]:
  out = {}
  for label, line in lines.items():
    i = int(np.argmax(line['x']))
    out[label] = dict(x=line['x'][i], trained=spread.quantity(_table(line, 'msdr')[i]),
                      initial=spread.quantity(_table(line, 'msdr_init')[i]))
  return out


def _fit(runs: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
  """The preconditions: the worst train accuracy by sigma^2 (over every line and
  seed) and the number of non-finite values."""
  worst: dict[str, list[float | None]] = {}  # sigma^2 -> the worst seed of each point
  nonfinite = 0
  for part, f in runs.items():
    for line in f['lines'].values():
      nonfinite += sum(int(np.sum(~np.isfinite(_table(line, k))))
                       for k in ('msdr', 'msdr_init', 'train_accuracy', 'loss'))
      for x, acc in zip(line['x'], _table(line, 'train_accuracy')):
        sigma2 = line['value'] if part == 'similarity' else x
        worst.setdefault(f'{sigma2:g}', []).append(extreme(min, acc))
  fit = {k: extreme(min, v) for k, v in sorted(worst.items(), key=lambda kv: float(kv[0]))}
  return dict(min_train_accuracy_by_sigma2=fit, num_nonfinite=nonfinite)


def _similarity(line: Mapping[str, Any], num_seeds: int) -> dict[str, Any]:
  """Similar and dissimilar sub-classes over tau^2 (Fig 21), read against the input.

  Per seed: the mean over measurable tau^2 below sigma^2 of (dissimilar -
  similar) kept fraction, and Spearman(tau^2, similar kept fraction) over
  tau^2 >= tau2_measurable.
  """
  c = C_004B
  x = np.asarray(line['x'])
  ks = kept_table(line, 'msdr_similar', 'msdr_input_similar')
  kd = kept_table(line, 'msdr_dissimilar', 'msdr_input_dissimilar')
  measurable = x >= c['tau2_measurable']
  below = measurable & (x < line['value'])
  mean = lambda a: a.mean(1).tolist()
  return dict(
      tau2=line['x'], msdr_similar=mean(_table(line, 'msdr_similar')),
      msdr_dissimilar=mean(_table(line, 'msdr_dissimilar')),
      msdr_input_similar=mean(_table(line, 'msdr_input_similar')),
      kept_similar=mean(ks), kept_dissimilar=mean(kd),
      similar_kept_less=_per_seed(
          lambda s: float(np.mean(kd[below, s] - ks[below, s])) if below.any() else None,
          num_seeds),
      spearman_tau2_kept=_per_seed(lambda s: spearman(x[measurable], ks[measurable, s]),
                                   num_seeds),
      spearman_tau2_raw=_per_seed(
          lambda s: spearman(x, _table(line, 'msdr_similar')[:, s]), num_seeds))


def _learning_rate(study: reproduce.Study) -> dict[str, Any]:
  """The pre-study's rows, the rate its rule chooses and the rates the test parts used."""
  rule = study.where(kind='mixture', role='lr_rule')
  rows = lr_rule_rows({r.name: r.final for r in rule})
  used = sorted({r.final['learning_rate'] for r in study.where(kind='mixture', role='test')})
  return dict(rows=rows, chosen_by_rule=choose_learning_rate(rows) if rows else None,
              used=used)


def evidence_004b(study: reproduce.Study) -> dict[str, Any]:
  """The mixture sweeps' trends per seed, read against the input's MSDR; the fit."""
  sigma2_min = C_004B['dim_sigma2_min']
  runs = {r.tags['part']: r.final for r in study.where(kind='mixture', role='test')
          if r.tags['part'] != 'hidden_dim'}
  num_seeds = min((f['num_seeds'] for f in runs.values()), default=0)
  ev: dict[str, Any] = dict(num_seeds=num_seeds, parts=sorted(runs),
                            learning_rate=_learning_rate(study), **_fit(runs))
  if 'weight_decay' in runs:
    f = runs['weight_decay']
    ev['weight_decay_strength'] = float(max(line['value'] for line in f['lines'].values())
                                        * f['learning_rate'] * f['num_steps'])
  ev['msdr_at_largest_x'] = {f'{part}:{label}': v for part, f in runs.items()
                             for label, v in _msdr_at_largest_x(f['lines']).items()}
  lines = {f'{part}:{label}': line for part, f in runs.items() if part != 'similarity'
           for label, line in f['lines'].items()}
  # The claim's numbers, per seed: the sigma^2 trend of the kept fraction (and,
  # reported, of MSDR itself, which the input has for free).
  ev['spearman_sigma2_kept'] = {
      k: _per_seed(lambda s, line=line: spearman(line['x'], kept_table(line)[:, s]), num_seeds)
      for k, line in lines.items()}
  ev['spearman_sigma2_raw'] = {
      k: _per_seed(lambda s, line=line: spearman(line['x'], _table(line, 'msdr')[:, s]),
                   num_seeds) for k, line in lines.items()}
  ev['kept_by_sigma2'] = {k: dict(sigma2=line['x'], kept=kept_table(line).mean(1).tolist(),
                                  msdr=_table(line, 'msdr').mean(1).tolist(),
                                  msdr_input=_table(line, 'msdr_input').mean(1).tolist(),
                                  coarse_nc1=_table(line, 'nc1').mean(1).tolist())
                          for k, line in lines.items()}
  if 'input_dim' in runs:
    ev['input_dim_trend'] = _per_seed(
        lambda s: dim_trend(runs['input_dim']['lines'], s, sigma2_min), num_seeds)
  if 'weight_decay' in runs:
    ev['weight_decay_spread'] = _per_seed(
        lambda s: _wd_spread(runs['weight_decay']['lines'], s, sigma2_min), num_seeds)
  if 'similarity' in runs:
    ev.update(_similarity(runs['similarity']['lines']['tau2'], num_seeds))
  return ev


# ---------------------------------------------------------------------------
# 004d: the hidden width.
# ---------------------------------------------------------------------------


def _cell(final: Mapping[str, Any], sigma2_min: float) -> dict[str, Any]:
  """One (rate, init) cell: the width trend per seed, its sign by noise, the fit."""
  lines, n = final['lines'], final['num_seeds']
  trend = _per_seed(lambda s: dim_trend(lines, s, sigma2_min), n)
  up, down = spread.exceeds(trend, 0.0), spread.below(trend, 0.0)
  sign = None if up is None else 1 if up else -1 if down else 0
  acc = [extreme(min, a) for line in lines.values() for a in _table(line, 'train_accuracy')]
  return dict(learning_rate=final['learning_rate'], init=final['init'], trend=trend,
              sign=sign, min_train_accuracy=extreme(min, acc),
              msdr_at_largest_sigma2={k: dict(trained=v['trained']['mean'],
                                              initial=v['initial']['mean'])
                                      for k, v in _msdr_at_largest_x(lines).items()})


def evidence_004d(study: reproduce.Study) -> dict[str, Any]:
  """The width trend at the chosen rate, the sign table, the initialisation check."""
  c = C_004D
  test = [r.final for r in study.where(kind='mixture', role='test', part='hidden_dim')]
  ev: dict[str, Any] = dict(learning_rate=_learning_rate(study))
  if test:
    f = test[0]
    ev.update(num_seeds=f['num_seeds'], **_fit({'hidden_dim': f}),
              hidden_dim_trend=_per_seed(lambda s: dim_trend(f['lines'], s,
                                                             c['dim_sigma2_min']),
                                         f['num_seeds']),
              msdr_at_largest_x=_msdr_at_largest_x(f['lines']))
  cells = [_cell(r.final, c['dim_sigma2_min']) for r in study.where(kind='mixture',
                                                                     role='width_table')]
  fitted = [x for x in cells if x['min_train_accuracy'] is not None
            and x['min_train_accuracy'] >= c['train_acc_min']]
  signs = {x['sign'] for x in fitted}
  ev['table'] = cells
  ev['fitted_cells'] = len(fitted)
  # 1 when one fitted cell's trend is up and another's down (each by noise).
  ev['sign_flips'] = None if not fitted else int({1, -1} <= signs)
  ev['init_check'] = {
      r.tags['init']: dict(msdr=spread.quantity(_table(line, 'msdr')[0]),
                           msdr_init=spread.quantity(_table(line, 'msdr_init')[0]),
                           msdr_input=spread.quantity(_table(line, 'msdr_input')[0]),
                           train_accuracy=spread.quantity(_table(line, 'train_accuracy')[0]))
      for r in study.where(kind='mixture', role='init_check')
      for line in r.final['lines'].values()}
  return ev


# ---------------------------------------------------------------------------
# 004c: fine labels.
# ---------------------------------------------------------------------------


def evidence_004c(study: reproduce.Study) -> dict[str, Any]:
  """The fine-label runs' MSDR and separation per seed, early and final."""
  runs = study.where(kind='fine')
  finals = [r.final for r in runs]
  per_seed = lambda values: spread.quantity(list(values))
  last = lambda f, key: by_epoch(f[f'{key}_by_epoch'])[1][-1]
  early = str(study.config.fine_early_epoch)
  early_msdr = [f['msdr_original_by_epoch'][early] for f in finals]
  final_msdr = [last(f, 'msdr_original') for f in finals]
  return dict(
      seeds=[r.seed for r in runs],
      early_epoch=int(early),
      last_epoch=[max(int(e) for e in f['msdr_original_by_epoch']) for f in finals],
      **{k: per_seed(f[k] for f in finals)
         for k in ('train_accuracy', 'train_nc1', 'train_nc1_init')},
      terminal_phase_epoch=[f['terminal_phase_epoch'] for f in finals],
      msdr_init=per_seed(f['msdr_original_by_epoch'].get('0') for f in finals),
      separation_init=per_seed(f['separation_by_epoch'].get('0') for f in finals),
      early_msdr=per_seed(early_msdr),
      early_separation=per_seed(f['separation_by_epoch'][early] for f in finals),
      final_msdr=per_seed(final_msdr),
      final_separation=per_seed(last(f, 'separation') for f in finals),
      growth=per_seed(b / a if a else None for a, b in zip(early_msdr, final_msdr)),
      fine_nc1_early=per_seed(f['fine_nc1_by_epoch'].get(early) for f in finals),
      fine_nc1_final=per_seed(last(f, 'fine_nc1') for f in finals),
      fine_nc1_fall=per_seed(last(f, 'fine_nc1') / f['fine_nc1_by_epoch'][early]
                             if f['fine_nc1_by_epoch'].get(early) else None for f in finals),
      by_epoch={f'seed{r.seed}': dict(msdr_original=r.final['msdr_original_by_epoch'],
                                      separation=r.final['separation_by_epoch'],
                                      fine_nc1=r.final['fine_nc1_by_epoch'])
                for r in runs})
