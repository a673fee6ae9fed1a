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
from nc_jax.studies.papers.p004_fine_grained.criteria import C_004B, extreme
from nc_jax.studies.papers.p004_fine_grained.runs import MIXTURE_KEYS


def by_epoch(values: Mapping[str, float]) -> tuple[list[int], list[float]]:
  """(epochs ascending, their values) of ``{str(epoch): value}``."""
  epochs = sorted(int(e) for e in values)
  return epochs, [values[str(e)] for e in epochs]


# ---------------------------------------------------------------------------
# 004a: coarse labels.
# ---------------------------------------------------------------------------


def evidence_004a(study: reproduce.Study) -> dict[str, Any]:
  """The tested coarse runs' numbers per seed; the reported runs' MSDR."""
  tested = study.where(kind='coarse', tested=True)
  reported = study.where(kind='coarse', tested=False)
  finals = [r.final for r in tested]
  per_seed = lambda values: spread.quantity(list(values))
  last = lambda f: by_epoch(f['msdr_by_epoch'])[1][-1]
  clp = [f['clp_accuracy'] for f in finals]
  lpo = [f['lpo_accuracy'] for f in finals]
  return dict(
      tested_model=sorted({r.tags['model'] for r in tested}),
      seeds=[r.seed for r in tested],
      last_epoch=[f['epoch'] for f in finals],
      terminal_phase_epoch=[f['terminal_phase_epoch'] for f in finals],
      **{k: per_seed(f[k] for f in finals)
         for k in ('train_accuracy', 'test_accuracy', 'train_nc1', 'train_nc1_init')},
      msdr_init=per_seed(f['msdr_by_epoch'].get('0') for f in finals),
      final_msdr=per_seed(last(f) for f in finals),
      clp_accuracy=per_seed(clp),
      true_label_probe_accuracy=per_seed(lpo),
      clp_over_probe=per_seed(a / b if b else None for a, b in zip(clp, lpo)),
      reconstruction_accuracy=per_seed(f['clp_reconstruction_accuracy'] for f in finals),
      msdr_by_epoch={f"{r.tags['model']}_seed{r.seed}": r.final['msdr_by_epoch']
                     for r in tested + reported},
      reported={f"{r.tags['model']}_seed{r.seed}": dict(
          final_msdr=last(r.final), msdr_init=r.final['msdr_by_epoch'].get('0'),
          train_accuracy=r.final['train_accuracy'], test_accuracy=r.final['test_accuracy'])
                for r in reported})


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


def _dim_trend(lines: Mapping[str, Mapping[str, Any]], seed: int, sigma2_min: float) -> float:
  """Mean over sigma^2 >= sigma2_min of Spearman(dimension, MSDR) of one seed."""
  dims, table = _msdr_by_line(lines, seed, sigma2_min)
  rhos = [spearman(dims, column) for column in table.T]
  return float(np.mean(rhos)) if rhos else float('nan')


def _wd_spread(lines: Mapping[str, Mapping[str, Any]], seed: int, sigma2_min: float) -> float:
  """Mean over sigma^2 >= sigma2_min of (max - min) / mean MSDR over weight decays."""
  _, table = _msdr_by_line(lines, seed, sigma2_min)
  rel = (table.max(0) - table.min(0)) / table.mean(0)
  return float(rel.mean()) if rel.size else float('nan')


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
      nonfinite += sum(int(np.sum(~np.isfinite(_table(line, k)))) for k in MIXTURE_KEYS)
      for x, acc in zip(line['x'], _table(line, 'train_accuracy')):
        sigma2 = line['value'] if part == 'similarity' else x
        worst.setdefault(f'{sigma2:g}', []).append(extreme(min, acc))
  fit = {k: extreme(min, v) for k, v in sorted(worst.items(), key=lambda kv: float(kv[0]))}
  return dict(min_train_accuracy_by_sigma2=fit, num_nonfinite=nonfinite)


def _similarity(line: Mapping[str, Any], num_seeds: int) -> dict[str, Any]:
  """MSDR of the similar and dissimilar sub-classes over tau^2 (Fig 21)."""
  ms, md = _table(line, 'msdr_similar'), _table(line, 'msdr_dissimilar')
  i = int(np.argmin(line['x']))
  return dict(tau2=line['x'], msdr_similar=ms.mean(1).tolist(),
              msdr_dissimilar=md.mean(1).tolist(),
              smallest_tau2=dict(tau2=line['x'][i], similar=spread.quantity(ms[i]),
                                 dissimilar=spread.quantity(md[i])),
              spearman_tau2=_per_seed(lambda s: spearman(line['x'], ms[:, s]), num_seeds))


def _width_trend(lines, num_seeds: int, sigma2_min: float) -> dict[str, Any]:
  """The hidden-width trend and, per width, trained and initial MSDR at the largest sigma^2."""
  return dict(
      hidden_dim_trend=_per_seed(lambda s: _dim_trend(lines, s, sigma2_min), num_seeds),
      msdr_at_sigma2_max={k: dict(trained=v['trained']['mean'], initial=v['initial']['mean'])
                          for k, v in _msdr_at_largest_x(lines).items()})


def evidence_004b(study: reproduce.Study) -> dict[str, Any]:
  """The mixture sweeps' trends per seed, the fit, the width investigation."""
  sigma2_min = C_004B['dim_sigma2_min']
  runs = {r.tags['part']: r.final for r in study.where(kind='mixture', role='test')}
  num_seeds = min((f['num_seeds'] for f in runs.values()), default=0)
  ev: dict[str, Any] = dict(num_seeds=num_seeds, parts=sorted(runs), **_fit(runs))
  if 'weight_decay' in runs:
    f = runs['weight_decay']
    ev['weight_decay_strength'] = float(max(line['value'] for line in f['lines'].values())
                                        * f['learning_rate'] * f['num_steps'])
  ev['msdr_at_largest_x'] = {f'{part}:{label}': v for part, f in runs.items()
                             for label, v in _msdr_at_largest_x(f['lines']).items()}
  # The claim's numbers, per seed.
  ev['spearman_sigma2'] = {
      f'{part}:{label}': _per_seed(
          lambda s, line=line: spearman(line['x'], _table(line, 'msdr')[:, s]), num_seeds)
      for part, f in runs.items() if part != 'similarity' for label, line in f['lines'].items()}
  for part in ('input_dim', 'hidden_dim'):
    if part in runs:
      ev[f'{part}_trend'] = _per_seed(
          lambda s, p=part: _dim_trend(runs[p]['lines'], s, sigma2_min), num_seeds)
  if 'weight_decay' in runs:
    ev['weight_decay_spread'] = _per_seed(
        lambda s: _wd_spread(runs['weight_decay']['lines'], s, sigma2_min), num_seeds)
  if 'similarity' in runs:
    ev.update(_similarity(runs['similarity']['lines']['tau2'], num_seeds))
  # Reported: the hidden-width trend at every learning rate (the investigation).
  widths = [(r.tags['learning_rate'], r.final['lines'], r.final['num_seeds'])
            for r in study.where(kind='mixture', role='investigation')]
  if 'hidden_dim' in runs:
    widths.append((runs['hidden_dim']['learning_rate'], runs['hidden_dim']['lines'], num_seeds))
  ev['width_investigation'] = {f'lr{lr:g}': _width_trend(lines, n, sigma2_min)
                               for lr, lines, n in widths}
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
      by_epoch={f'seed{r.seed}': dict(msdr_original=r.final['msdr_original_by_epoch'],
                                      separation=r.final['separation_by_epoch'])
                for r in runs})
