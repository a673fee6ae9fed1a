"""Paper 004's claims (`CLAIMS`): gates, checks and notes of each, and the specs.

Each claim is a `reproduce.ClaimSpec`: evidence read from the runs by their
tags (`evidence`), gates (the preconditions: the runs trained, the collapse
happened, the MSDR read is the trained network's, enough seeds), checks (the
claim, every comparison with its noise through `spread`), figures
(`figures`) and text (`setting`). The criteria are the ``constants`` of each
spec (`criteria`), fixed before the run.
"""

from __future__ import annotations

from nc_jax.studies import reproduce
from nc_jax.studies import spread
from nc_jax.studies.papers.p004_fine_grained.criteria import (C_004A, C_004B, C_004C,
                                                              extreme, moved_gate)
from nc_jax.studies.papers.p004_fine_grained.evidence import (evidence_004a,
                                                              evidence_004b,
                                                              evidence_004c)
from nc_jax.studies.papers.p004_fine_grained.figures import (figure_004a, figure_004b,
                                                             figure_004c)
from nc_jax.studies.papers.p004_fine_grained.setting import (setting_004a, setting_004b,
                                                             setting_004c)

# ---------------------------------------------------------------------------
# 004a: coarse labels.
# ---------------------------------------------------------------------------


def gates_004a(ev, c) -> dict[str, reproduce.Gate]:
  ratios = [e / t if t else None for e, t in zip(ev['last_epoch'], ev['terminal_phase_epoch'])]
  return dict(
      seeds=reproduce.seeds_gate(len(ev['seeds'])),
      runs_trained=reproduce.at_least(
          extreme(min, ev['train_accuracy']['values']), c['train_acc_min'],
          'smallest final coarse train accuracy of the tested runs'),
      terminal_phase=reproduce.at_least(
          extreme(min, ratios), c['epochs_past_tpt'],
          'smallest last epoch / first epoch at 100% train accuracy (none: never reached)'),
      coarse_collapse=reproduce.at_most(
          extreme(max, ev['train_nc1']['values']), c['nc1_max'],
          'largest final coarse train NC1 (penultimate): the super-classes collapsed'),
      msdr_moved_by_training=moved_gate(
          [(ev['final_msdr'], ev['msdr_init'])],
          'abs(z) of final - initial MSDR, paired by seed: the MSDR read is the trained '
          "network's, not the input's"))


def checks_004a(ev, c) -> dict[str, bool | None]:
  scaled = [None if x is None else c['clp_ratio_min'] * x
            for x in ev['true_label_probe_accuracy']['values']]
  return dict(
      msdr=spread.exceeds(ev['final_msdr'], c['msdr_min']),
      clp_close=spread.exceeds(ev['clp_accuracy'], scaled, paired=True),
      subclusters=spread.exceeds(ev['reconstruction_accuracy'], c['reconstruction_min']))


def notes_004a(ev, config) -> str:
  del config
  text = ('The reported runs (other architectures, one seed) are not tested. The trainer '
          'stops a run whose loss turns non-finite, so a recorded run did not diverge.')
  if spread.z_score(ev['final_msdr'], ev['msdr_init'], paired=True) < 0:
    text += (' Training lowered MSDR below its value at initialisation: the structure '
             'seen is what is left of the input\'s.')
  return text


# ---------------------------------------------------------------------------
# 004b: the Gaussian mixture.
# ---------------------------------------------------------------------------


def gates_004b(ev, c) -> dict[str, reproduce.Gate]:
  fit = [v for k, v in ev['min_train_accuracy_by_sigma2'].items()
         if float(k) >= c['fit_sigma2_min']]
  return dict(
      seeds=reproduce.seeds_gate(ev['num_seeds']),
      runs_trained=reproduce.at_least(
          extreme(min, fit), c['train_acc_min'],
          f"smallest train accuracy at sigma^2 >= {c['fit_sigma2_min']:g}, every line and seed"),
      finite=reproduce.at_most(ev['num_nonfinite'], 0,
                               'non-finite MSDR, loss or accuracy values (divergence)'),
      msdr_moved_by_training=moved_gate(
          [(v['trained'], v['initial']) for v in ev['msdr_at_largest_x'].values()],
          'smallest abs(z) over lines of trained - initial MSDR at the largest sigma^2 '
          "(tau^2), paired by seed: the MSDR read is the trained network's"),
      weight_decay_effective=reproduce.at_least(
          ev.get('weight_decay_strength'), c['wd_strength_min'],
          'largest lr x weight decay x steps of the weight-decay sweep'))


def checks_004b(ev, c) -> dict[str, bool | None]:
  sim = ev.get('smallest_tau2') or {}
  return dict(
      sigma2=spread.all_of([spread.exceeds(q, c['rho_sigma2_min'])
                            for q in ev['spearman_sigma2'].values()]),
      input_dim=spread.exceeds(ev.get('input_dim_trend'), c['rho_dim_min']),
      hidden_dim=spread.exceeds(ev.get('hidden_dim_trend'), c['rho_dim_min']),
      weight_decay=spread.below(ev.get('weight_decay_spread'), c['wd_spread_max']),
      similar_lower=spread.exceeds(sim.get('dissimilar'), sim.get('similar'), paired=True),
      similar_grows_with_tau2=spread.exceeds(ev.get('spearman_tau2'), c['rho_tau2_min']))


def notes_004b(ev, config) -> str:
  del ev
  lrs = ', '.join(f'{lr:g}' for lr in config.mixture_width_lrs)
  return ((f'Width investigation: the hidden-width sweep rerun at learning rate {lrs}; '
           'width_investigation lists the trend there and, per width, the trained MSDR '
           'next to the MSDR at initialisation. ' if lrs else '')
          + 'The input itself has MSDR about 1 + sigma^2 (1 + tau^2 for similar '
          'sub-classes), so the sigma^2, tau^2 and similar-vs-dissimilar checks are read '
          'only where training moved MSDR beyond its noise (gate msdr_moved_by_training); '
          'judging them relative to the input is left to the second pass.')


# ---------------------------------------------------------------------------
# 004c: fine labels.
# ---------------------------------------------------------------------------


def gates_004c(ev, c) -> dict[str, reproduce.Gate]:
  return dict(
      seeds=reproduce.seeds_gate(len(ev['seeds'])),
      runs_trained=reproduce.at_least(
          extreme(min, ev['train_accuracy']['values']), c['train_acc_min'],
          'smallest final train accuracy on the fine labels'),
      fine_collapse=reproduce.at_most(
          extreme(max, ev['train_nc1']['values']), c['nc1_max'],
          'largest final train NC1 on the fine labels (penultimate): the 2C collapse'),
      msdr_rose_from_initialisation=reproduce.changed_gate(
          ev['final_msdr'], ev['msdr_init'],
          'z of final - initial MSDR over the original classes, paired by seed', paired=True))


def checks_004c(ev, c) -> dict[str, bool | None]:
  return dict(
      early_halves_indistinct=spread.below(ev['early_msdr'], c['fine_early_msdr_max']),
      early_classes_apart=spread.exceeds(ev['early_separation'], c['fine_early_sep_min']),
      toward_2c=spread.exceeds(ev['growth'], c['fine_growth_min']),
      c_structure_at_end=spread.exceeds(ev['final_separation'], c['fine_final_sep_min']))


# ---------------------------------------------------------------------------
# The claims.
# ---------------------------------------------------------------------------

_SEEDS_TEXT = ('>= {min_seeds} seeds; "a exceeds b" = mean difference > {z:g} standard errors '
               'of the difference (`spread.exceeds`)')

CLAIMS = [
    reproduce.ClaimSpec(
        id='004a',
        claim='Trained on coarse labels into the terminal phase, the original classes stay '
              'visible inside the collapsed super-classes: MSDR > 1, two sub-clusters per '
              'super-class under t-SNE, and Cluster-and-Linear-Probe close to a probe '
              'trained with the true labels.',
        paper='Secs 4-5, Figs 1-8 and 11-12: ResNet-18 on coarse CIFAR-10 (y mod 5), 350 '
              'epochs; CLP 93% on the 10 original classes; structure seen for ResNet and '
              'DenseNet, not VGG.',
        criterion=('Gates: ' + _SEEDS_TEXT + '; every tested run reaches train accuracy >= '
                   '{train_acc_min} and is trained to >= {epochs_past_tpt:g}x its first '
                   '100%-train-accuracy epoch; final coarse train NC1 <= {nc1_max} (the '
                   'super-classes collapsed); the final MSDR differs from its value at '
                   'initialisation by > {z:g} SE (paired by seed). Checks: mean final MSDR '
                   'exceeds {msdr_min}; mean CLP exceeds {clp_ratio_min} x the true-label '
                   'probe (paired by seed); mean k-means-on-t-SNE reconstruction of the train '
                   'sub-classes exceeds {reconstruction_min}. The reported runs are not '
                   'tested.'),
        constants=C_004A,
        evidence=evidence_004a, gates=gates_004a, checks=checks_004a,
        setting=setting_004a, figure=figure_004a, notes=notes_004a),
    reproduce.ClaimSpec(
        id='004b',
        claim='In the Gaussian-mixture toy, MSDR rises with the cluster spread sigma^2, the '
              'input dimension and the hidden width, not with weight decay, and is lower for '
              'similar sub-classes (rising with their spread tau^2).',
        paper='App. B, Figs 18-21: 8 clusters x 500 samples, 4 super-classes, 2-layer ReLU '
              'MLP, d_input = d_hidden = 512, weight decay 0 by default; learning rate, '
              'initialisation and training length not stated.',
        criterion=('Gates: ' + _SEEDS_TEXT + '; every point at sigma^2 >= {fit_sigma2_min:g} '
                   'reaches train accuracy >= {train_acc_min} (every line, every seed); no '
                   'non-finite value; on every line the trained MSDR at the largest sigma^2 '
                   '(tau^2) differs from its value at initialisation by > {z:g} SE (paired '
                   'by seed); the strongest weight decay has lr x wd x steps >= '
                   '{wd_strength_min:g}. Checks, on per-seed statistics: Spearman(sigma^2, '
                   'MSDR) exceeds {rho_sigma2_min} on every line of Figs 18-20; the mean over '
                   'sigma^2 >= {dim_sigma2_min:g} of Spearman(dimension, MSDR) exceeds '
                   '{rho_dim_min} for input dimension and for hidden width; the mean relative '
                   'spread (max - min) / mean of MSDR over weight decays at sigma^2 >= '
                   '{dim_sigma2_min:g} is below {wd_spread_max}; at the smallest tau^2 the '
                   'dissimilar MSDR exceeds the similar one (paired by seed), and Spearman'
                   '(tau^2, similar MSDR) exceeds {rho_tau2_min}. Tested at the default '
                   'learning rate; the width investigation is reported only.'),
        constants=C_004B,
        evidence=evidence_004b, gates=gates_004b, checks=checks_004b,
        setting=setting_004b, figure=figure_004b, notes=notes_004b),
    reproduce.ClaimSpec(
        id='004c',
        claim='Trained on fine labels (each class split at random into two), the features '
              'first cluster by the C original classes, then move toward 2C clusters, and the '
              'C-class structure is still visible at the end.',
        paper='Sec 6, Figs 15-16: ResNet-18 on fine CIFAR-10 (20 labels); distance matrices '
              'over training.',
        criterion=('Gates: ' + _SEEDS_TEXT + '; every run reaches train accuracy >= '
                   '{train_acc_min} on the fine labels; final fine-label train NC1 <= '
                   '{nc1_max} (the 2C collapse happened); the final MSDR over the original '
                   'classes exceeds its value at initialisation by > {z:g} SE (paired by '
                   'seed). Checks: at the early epoch, '
                   'MSDR over the original classes (halves of a class) is below '
                   '{fine_early_msdr_max} and the separation (mean D between halves of '
                   'different classes / between the halves of one class) exceeds '
                   '{fine_early_sep_min}; MSDR grows from the early to the last epoch by a '
                   'factor exceeding {fine_growth_min}; the final separation exceeds '
                   '{fine_final_sep_min}.'),
        constants=C_004C,
        evidence=evidence_004c, gates=gates_004c, checks=checks_004c,
        setting=setting_004c, figure=figure_004c),
]
