"""Claim 002b, read from the size runs (``kind='size'``): with more training
data, weaker train collapse and stronger test collapse at the end of
training (every size sees as many training images). Its evidence, gates,
checks and figure; `claims` assembles the spec.
"""

from __future__ import annotations

from typing import Any

from nc_jax import plots
from nc_jax.studies import reproduce
from nc_jax.studies import spread
from nc_jax.studies.papers.p002_limits import criteria


def evidence_002b(study: reproduce.Study) -> dict[str, Any]:
  sizes = sorted(study.config.sizes)
  groups = [study.where(kind='size', train_size=n) for n in sizes]
  per_size = lambda key: [spread.quantity([r[key] for r in g]) for g in groups]
  listed = lambda key: [[r[key] for r in g] for g in groups]
  ev = dict(
      sizes=sizes, images_seen=study.config.size_images_seen,
      prestudy=criteria.prestudy_evidence(study),
      train_variance=per_size('train_squared_distance'),
      strong_test_variance=per_size('test_squared_distance'),
      train_accuracy=per_size('train_accuracy'), test_accuracy=per_size('test_accuracy'),
      fit_train_variance=listed('fit_train_variance'), fit_epoch=listed('fit_epoch'),
      epochs=listed('epoch'))
  ev.update(_correlations(ev))
  return ev


def _correlations(ev) -> dict[str, float | None]:
  """Spearman(train size, seed mean) of both variances; None where not measurable."""
  return {f'spearman_{key}': criteria.spearman_rho(ev['sizes'], [q['mean'] for q in ev[key]])
          for key in ('train_variance', 'strong_test_variance')}


def gates_002b(ev, c) -> dict[str, reproduce.Gate]:
  flat = lambda key: [v for q in ev[key] for v in q['values']]
  return dict(
      setting_chosen_by_rule=criteria.gate_setting(ev['prestudy']),
      **criteria.run_gates(ev['train_variance'] + ev['strong_test_variance'],
                           flat('train_accuracy'), flat('test_accuracy'), c),
      **criteria.collapse_gates(flat('train_variance'),
                                [v for g in ev['fit_train_variance'] for v in g], c))


def checks_002b(ev, c) -> dict[str, bool | None]:
  rho = _correlations(ev)  # From the per-seed values, not a copy in the evidence.
  tv, st = ev['train_variance'], ev['strong_test_variance']
  r_train, r_test = rho['spearman_train_variance'], rho['spearman_strong_test_variance']
  return dict(
      train_variance_rises_with_size=None if r_train is None else
      r_train >= c['size_rho_min'],
      train_variance_largest_exceeds_smallest=spread.exceeds(tv[-1], tv[0]) if tv else None,
      test_variance_falls_with_size=None if r_test is None else
      r_test <= -c['size_rho_min'],
      test_variance_smallest_exceeds_largest=spread.exceeds(st[0], st[-1]) if st else None)


def figure_002b(ev, study) -> list[str]:
  tv = [q['mean'] for q in ev['train_variance']]
  st = [q['mean'] for q in ev['strong_test_variance']]
  if not spread.finite(tv + st):
    return []
  fig = '002b_variance_vs_train_size.png'
  n = min((q['n'] for q in ev['train_variance']), default=0)
  plots.curves(study.file(fig), ev['sizes'],
               {'train variance': tv, 'strong test variance': st},
               xlabel='training images', logy=True,
               title=f"End of training ({ev['images_seen']:,} images seen), mean of "
                     f'{n} seed{"s" if n != 1 else ""}')
  return [fig]
