"""Claims 003b and 003c: label noise (``kind='label_noise'``) and corrupted
inputs (``kind='corruption'``). With either, the memorization ratio exceeds 1
only in the last layers; label noise lifts the CDNV curves; corrupted inputs
give more such layers than label noise (003c reads 003b's runs too). Their
evidence, gates, checks and figures; `claims` assembles the specs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nc_jax import plots
from nc_jax.studies import reproduce
from nc_jax.studies import spread
from nc_jax.studies.papers.p003_progressive import evidence
from nc_jax.studies.papers.p003_progressive import gates
from nc_jax.studies.papers.p003_progressive.runs import noise_nets, noise_runs


def _above_one(curves) -> list[int]:
  """Layer indices whose seed-mean ratio exceeds 1 by more than 2 SE."""
  n = min((len(c) for c in curves), default=0)
  return [i for i in range(n) if spread.exceeds([c[i] for c in curves], 1.0) is True]


def _late(above: Sequence[Sequence[int]], n: int) -> bool | None:
  """Every layer index of ``above`` in the second half of ``n`` layers (None: no groups)."""
  return all(i >= n // 2 for a in above for i in a) if above else None


def _rate_key(rate) -> str:
  return f'{float(rate):g}'


def _net_evidence(study: reproduce.Study, net: str) -> dict[str, Any]:
  """One network's label-noise groups (``rates``: keys, ``runs``: per rate)."""
  runs = {_rate_key(rate): evidence.group(
      noise_runs(study, net, rate),
      ('cdnv', 'cdnv_init', 'memorization_ratio', 'memorization_ratio_init'),
      summarized=('cdnv', 'memorization_ratio', 'memorization_ratio_init'))
      for rate in study.config.noise_rates}
  rs = [r for k in runs for r in noise_runs(study, net, float(k))]
  ev = dict(rates=list(runs), layers=list(rs[0]['layers']) if rs else [], runs=runs)
  ev['lifted_layers'] = _lifted(ev)
  ev['layers_above_1'] = {k: [ev['layers'][i] for i in _above_one(runs[k]['memorization_ratio'])]
                          for k in _noisy(ev)}
  return ev


def evidence_003b(study: reproduce.Study) -> dict[str, Any]:
  nets = {net: _net_evidence(study, net) for net in noise_nets(study.config)}
  return dict(nets=list(nets), by_net=nets)


def _noisy(ev) -> list[str]:
  return [k for k in ev['rates'] if float(k) > 0]


def _lifted(ev) -> list[bool | None]:
  """Per layer: CDNV rises with the noise rate, each step beyond 2 SE."""
  keys = sorted(ev['rates'], key=float)
  return [spread.increasing([[c[i] for c in ev['runs'][k]['cdnv']] for k in keys])
          for i in range(len(ev['layers']))]


def _most_above_one(ev) -> int:
  """The most layers above 1 over the noise rates > 0 of one network."""
  return max((len(_above_one(ev['runs'][k]['memorization_ratio'])) for k in _noisy(ev)),
             default=0)


def gates_003b(ev, c) -> dict[str, reproduce.Gate]:
  nets = [ev['by_net'][n] for n in ev['nets']]
  groups = [n['runs'][k] for n in nets for k in n['rates']]
  lowest = [n['runs'][min(n['rates'], key=float)] for n in nets if n['rates']]
  return dict(
      **gates.gate_runs(groups, c),
      train_collapse=gates.gate_collapse(
          lowest, c, 'largest seed-mean train CDNV of the last layer at the lowest noise '
          'rate (over the depths)'),
      some_layer_above_1=gates.gate_above_one(
          [min((_most_above_one(n) for n in nets), default=0)],
          '(most over the noise rates > 0, fewest over the depths); else the location '
          'check is vacuous at that depth'))


def checks_003b(ev, c) -> dict[str, bool | None]:
  checks = {}
  for net in ev['nets']:
    n = ev['by_net'][net]
    lifted = _lifted(n)
    checks[f'{net}_curves_lifted_with_noise'] = (
        None if not lifted or None in lifted
        else sum(lifted) / len(lifted) >= c['lifted_fraction_min'])
    above = [_above_one(n['runs'][k]['memorization_ratio']) for k in _noisy(n)]
    checks[f'{net}_ratio_above_1_only_in_last_layers'] = _late(above, len(n['layers']))
  return checks


def figure_003b(ev, study) -> list[str]:
  figs = []
  for net in ev['nets']:
    n = ev['by_net'][net]
    layers = len(n['layers'])
    if not layers:
      continue
    x = np.arange(1, layers + 1)
    cdnv, ratio = f'003b_{net}_cdnv_by_layer.png', f'003b_{net}_memorization_ratio.png'
    plots.curves(study.file(cdnv), x,
                 {f'noise {k}': evidence.seed_means(n['runs'][k]['cdnv']) for k in n['rates']},
                 xlabel='layer', logy=True,
                 title=f'{net}: CDNV (noisy training labels) by layer')
    plots.curves(study.file(ratio), x,
                 {f'noise {k}': evidence.seed_means(n['runs'][k]['memorization_ratio'])
                  for k in _noisy(n)}, xlabel='layer',
                 title=f'{net}: memorization ratio, CDNV(clean labels) / CDNV(noisy labels)')
    figs += [cdnv, ratio]
  return figs


def corruption_net(config) -> str:
  """The label-noise network 003c compares with: the one of ``config.base``'s depth."""
  nets = noise_nets(config)
  same = f"depth{config.base.model.kwargs.get('depth', '')}"
  return same if same in nets else next(iter(nets))


def evidence_003c(study: reproduce.Study) -> dict[str, Any]:
  config = study.config
  runs = {str(sev): evidence.group(
      study.where(kind='corruption', corruption=config.corruption, severity=sev),
      ('cdnv', 'cdnv_train_clean', 'memorization_ratio', 'memorization_ratio_init'),
      summarized=('cdnv', 'memorization_ratio', 'memorization_ratio_init'))
      for sev in config.severities}
  net = corruption_net(config)
  noise = {_rate_key(rate): evidence.group(
      noise_runs(study, net, rate), ('memorization_ratio',),
      summarized=('memorization_ratio',))
      for rate in config.noise_rates if rate > 0}
  layers = evidence.recorded_layers(study, 'corruption')
  above = lambda groups: {k: [layers[i] for i in _above_one(g['memorization_ratio'])]
                          for k, g in groups.items()}
  return dict(severities=list(runs), layers=layers, runs=runs, label_noise_net=net,
              label_noise=noise,
              layers_above_1=above(runs), label_noise_layers_above_1=above(noise))


def gates_003c(ev, c) -> dict[str, reproduce.Gate]:
  groups = [ev['runs'][k] for k in ev['severities']]
  return dict(
      **gates.gate_runs(groups + list(ev['label_noise'].values()), c),
      train_collapse=gates.gate_collapse(
          groups, c, 'largest seed-mean train CDNV (corrupted images) of the last layer'),
      some_layer_above_1=gates.gate_above_one(
          [len(_above_one(g['memorization_ratio'])) for g in groups],
          '(most over the severities)'))


def checks_003c(ev, c) -> dict[str, bool | None]:
  del c
  above = [_above_one(ev['runs'][k]['memorization_ratio']) for k in ev['severities']]
  noise = [_above_one(g['memorization_ratio']) for g in ev['label_noise'].values()]
  return dict(
      above_1_only_in_last_layers=_late(above, len(ev['layers'])),
      more_layers_than_label_noise=max(map(len, above)) > max(map(len, noise))
      if above and noise else None)


def figure_003c(ev, study) -> list[str]:
  n = len(ev['layers'])
  if not n:
    return []
  fig = '003c_memorization_ratio.png'
  curves = {f'severity {k}': evidence.seed_means(ev['runs'][k]['memorization_ratio'])
            for k in ev['severities']}
  curves.update({f'label noise {k}': evidence.seed_means(g['memorization_ratio'])
                 for k, g in ev['label_noise'].items()})
  n = max(n, *map(len, curves.values()))  # The label-noise net may be another depth.
  curves = {k: v + [np.nan] * (n - len(v)) for k, v in curves.items()}
  plots.curves(study.file(fig), np.arange(1, n + 1), curves, xlabel='layer',
               title='memorization ratio: CDNV(clean) / CDNV(trained-on) (seed means)')
  return [fig]

