"""Claim 002c, read from the pretraining chains (``kind='pretrain'`` and
``kind='finetune'``): super-class checkpoints with more train collapse
transfer worse to the fine classes. Its evidence, gates, checks and figure;
`claims` assembles the spec.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nc_jax import plots
from nc_jax.studies import reproduce
from nc_jax.studies import spread
from nc_jax.studies import sweep
from nc_jax.studies.papers.p002_limits import criteria


def _best(tries: Sequence[sweep.Result]) -> sweep.Result | None:
  """The fine-tuning run of highest validation accuracy (the smaller lr on ties)."""
  usable = [t for t in tries if not t.final.get('diverged') and spread.finite(t['val_accuracy'])]
  if not usable:
    return None
  return max(usable, key=lambda t: (t['val_accuracy'], -t.tags['learning_rate']))


def _chain(study, group: str, g, seed: int) -> dict[str, Any]:
  """One pretraining seed: per checkpoint its train variance and the chosen fine-tuning run."""
  pre = study.where(kind='pretrain', group=group, seed=seed)
  tv_at = (dict(zip(pre[0]['checkpoint_epochs'], pre[0]['checkpoint_train_variance']))
           if pre else {})
  probe_at = (dict(zip(pre[0]['checkpoint_epochs'], pre[0]['checkpoint_probe_accuracy']))
              if pre else {})
  rows = []
  for e in g.epochs:
    tries = study.where(kind='finetune', group=group, seed=seed, init_epoch=e)
    best = _best(tries)
    rows.append(dict(
        epoch=e, train_variance=tv_at.get(e), probe_accuracy=probe_at.get(e),
        best_lr=None if best is None else best.tags['learning_rate'],
        val_accuracy=None if best is None else best['val_accuracy'],
        train_accuracy=None if best is None else best['train_accuracy'],
        test_accuracy=None if best is None else best['test_accuracy'],
        diverged_lrs=[t.tags['learning_rate'] for t in tries if t.final.get('diverged')]))
  tv = [r['train_variance'] for r in rows]
  least, most = criteria.extreme(max, tv), criteria.extreme(min, tv)
  return dict(seed=seed, spearman=criteria.spearman_rho(tv, [r['test_accuracy'] for r in rows]),
              probe_spearman=criteria.spearman_rho(tv, [r['probe_accuracy'] for r in rows]),
              pretrain_train_accuracy=pre[0]['train_accuracy'] if pre else None,
              fit_train_variance=pre[0]['fit_train_variance'] if pre else None,
              most_collapsed=most,
              span=None if least is None or not most or most <= 0 else least / most,
              checkpoints=rows)


def _groups(ev):
  """(group, evidence) of each pretraining group (the pre-study is not one)."""
  return [(k, v) for k, v in ev.items() if k != 'prestudy']


def evidence_002c(study: reproduce.Study) -> dict[str, Any]:
  ev = {'prestudy': criteria.prestudy_evidence(study)}
  for group, g in study.config.transfer.items():
    chains = [_chain(study, group, g, s) for s in g.seeds]
    per_chain = lambda key: spread.quantity([ch[key] for ch in chains])
    rows = [r for ch in chains for r in ch['checkpoints']]
    ev[group] = dict(
        seeds=list(g.seeds), chains=chains, spearman=per_chain('spearman'),
        probe_spearman=per_chain('probe_spearman'), span=per_chain('span'),
        fit_train_variance=per_chain('fit_train_variance'),
        pretrain_train_accuracy=per_chain('pretrain_train_accuracy'),
        most_collapsed_train_variance=per_chain('most_collapsed'),
        selected_test_accuracy=spread.quantity([r['test_accuracy'] for r in rows]),
        selected_train_accuracy=spread.quantity([r['train_accuracy'] for r in rows]),
        checkpoints_without_a_run=sum(r['best_lr'] is None for r in rows))
  return ev


def gates_002c(ev, c) -> dict[str, reproduce.Gate]:
  gates = {'setting_chosen_by_rule': criteria.gate_setting(ev['prestudy'])}
  for group, e in _groups(ev):
    collapse = criteria.collapse_gates(e['most_collapsed_train_variance']['values'],
                                       e['fit_train_variance']['values'], c, 'pretraining')
    gates.update({
        f'{group}_seeds': reproduce.seeds_gate(e['spearman']['n']),
        f'{group}_pretraining_fitted': criteria.gate_fitted(
            e['pretrain_train_accuracy']['values'], c, 'pretraining'),
        f'{group}_every_checkpoint_fine_tuned': reproduce.at_most(
            e['checkpoints_without_a_run'], 0,
            'checkpoints whose every learning rate diverged'),
        f'{group}_fine_tuning_converged': criteria.gate_fitted(
            e['selected_train_accuracy']['values'], c, 'chosen fine-tuning run'),
        f'{group}_fine_tuning_trained': criteria.gate_learned(
            e['selected_test_accuracy']['values'], c, 'chosen fine-tuning run'),
        f'{group}_finite': criteria.gate_finite(
            [e['spearman'], e['most_collapsed_train_variance']]),
        **{f'{group}_{k}': v for k, v in collapse.items()},
        f'{group}_checkpoints_span': reproduce.at_least(
            criteria.extreme(min, e['span']['values']), c['span_min'],
            "smallest over the seeds of (least / most collapsed checkpoint's train variance)"),
    })
  return gates


def checks_002c(ev, c) -> dict[str, bool | None]:
  return {f'{group}_more_collapse_worse_transfer':
          spread.exceeds(e['spearman'], c['transfer_rho_min']) for group, e in _groups(ev)}


def figure_002c(ev, study) -> list[str]:
  points = {}
  for group, e in _groups(ev):
    for ch in e['chains']:
      rows = [r for r in ch['checkpoints']
              if spread.finite([r['train_variance'], r['test_accuracy']])]
      if rows:
        points[f"{group} seed {ch['seed']}: fine-tuned"] = (
            [r['train_variance'] for r in rows], [r['test_accuracy'] for r in rows])
      rows = [r for r in ch['checkpoints']
              if spread.finite([r['train_variance'], r['probe_accuracy']])]
      if rows:
        points[f"{group} seed {ch['seed']}: linear probe"] = (
            [r['train_variance'] for r in rows], [r['probe_accuracy'] for r in rows])
  if not points:
    return []
  fig = '002c_transfer_vs_train_variance.png'
  plots.scatter(study.file(fig), points,
                xlabel='train variance of the checkpoint (super-class labels, current means)',
                ylabel='test accuracy (fine-tuned or linear probe)', logx=True,
                title='Super-class pretraining, then full fine-tuning on the fine classes')
  return [fig]
