"""Paper 000's "what we ran": each claim's setting sentence, computed from the variant's config.

Composed from `nc_jax.studies.settings` and the study config's own keys, so a
``:runlocal`` report describes the run it made, and says why the variant's
setting differs from the paper's.
"""

from __future__ import annotations

from nc_jax.studies import settings
from nc_jax.train import config as config_lib

# Why the variant's setting differs from the paper's (by ``config.variant``).
_WHY = {
    'cpu': 'An MLP on Fashion-MNIST instead of the paper\'s ResNets on CIFAR-10 / ImageNet, to '
           'fit a 2-core CPU.',
    'runlocal': 'The pipeline at toy scale (a test of the code; its verdicts mean nothing).',
    'gpu': "The paper's model family and schedule on the data available here.",
}


def _why(config) -> str:
  return ' ' + _WHY.get(config.variant, '')


def _pretraining(p) -> str:
  """`settings.trainer`, what it leaves out (the warm-up's start, the exponential decay,
  a softmax temperature of 1) and the features the collapse metrics are measured on."""
  s, e = p.schedule, p.evals
  extra = [f'warm-up from lr {s.warmup_init:g}'] if s.warmup_epochs else []
  extra += [f'lr x{s.kwargs.decay_rate:g} per epoch'] if s.name == 'exponential' else []
  # Else in settings.trainer().
  extra += ['softmax temperature 1'] if p.loss.kwargs.temperature == 1.0 else []
  n = settings.number(e.train_examples) if e.train_examples else 'all'
  every = 'epoch' if e.every == 1 else f'{e.every} epochs'
  extra.append(f'collapse metrics on {n} training images every {every}')
  return f"{settings.trainer(p)}; {', '.join(extra)}"


def _overrides(tree) -> str:
  """A schedule's changes to the pretraining: 'schedule.name exponential, ...'."""
  return ', '.join(f'{k} {v}' for k, v in config_lib.flatten(tree.to_dict()).items())


def _num_classes(p) -> int | None:
  """K of a trainer config's task (None where the label map makes it unknown here)."""
  d = p.data
  if d.label_map.startswith('classes:'):
    return len(d.label_map.removeprefix('classes:').split(','))
  return {'fashion_mnist': 10, 'mnist': 10, 'cifar10': 10, 'cifar10_jpeg': 10,
          'cifar100': 100}.get(d.name) if not d.label_map else None


def _theorem(config) -> str:
  return (f"Features of the temperature sweep's run at tau = {config.theorem_temperature:g}, "
          f"seed {config.seeds[0]} ({_pretraining(config.pretrain)}), on "
          f"{settings.number(config.theorem_examples)} training images, at layers "
          f"{', '.join(config.theorem_layers)}")


def setting_000a(config) -> str:
  return (_theorem(config) + '; the closed form (metrics.linear_probe_mse, float64) '
          'against a weighted least-squares fit (numpy.linalg.lstsq, float64).' + _why(config))


def setting_000b(config) -> str:
  return (_theorem(config) + f'; the penultimate features under {config.num_maps} '
          "random Gaussian maps, float64; Obs 4.2's 2 x 2 example." + _why(config))


def setting_000c(config) -> str:
  schedules = '; '.join(f'{n}: {_overrides(o)}' for n, o in config.schedules.items())
  return (f'{_pretraining(config.pretrain)}. Schedules (overriding the above): {schedules}; '
          f'{settings.seeds(config.schedule_seeds)} per schedule.' + _why(config))


def setting_000d(config) -> str:
  p, u = config.pretrain, config.ufm
  k = f'K = {_num_classes(p)}'
  dims = f"p = {p.model.kwargs.get('width')}, {k}" if p.model.name == 'mlp' else k
  return (f"The {config.vb_schedule} schedule's runs of 000c "
          f'({_overrides(config.schedules[config.vb_schedule])}; '
          f'{settings.seeds(config.schedule_seeds)}), penultimate train features ({dims}); '
          f'{_pretraining(p)}. And the UFM (K = {u.num_classes}, {u.samples_per_class} '
          f'samples per class, p = {u.dim}, {u.loss} loss, lr {u.learning_rate:g}, lambda_W '
          f'{u.lambda_w:g}, lambda_H = 0, {u.num_steps} steps) with no injected noise.'
          + _why(config))


def setting_000e(config) -> str:
  p, pr = config.pretrain, config.probe
  tau = settings.grid({'softmax temperature tau': config.temperatures})
  lam = settings.grid({'within-class cosine regulariser lambda': config.cosine_regs})
  score = {'top1': 'top-1', 'mean_per_class': 'mean per-class accuracy'}
  tasks = '; '.join(f'{name}: {settings.data(d)}, tested on {settings.test_data(d)}, '
                    f'scored by {score[d.score]}' for name, d in config.downstream.items())
  pilot = ', '.join(f'{v:g}' for v in config.pilot_cosine_regs)
  return (f'{_pretraining(p)}. Sweeps: {tau}; {lam} at tau = {p.loss.kwargs.temperature:g} '
          '(the loss plus lambda x the mean within-class cosine similarity of the batch; the '
          f'grid chosen from a pilot at lambda {pilot}, seed {config.pilot_seed}, by its effect '
          'on within-class similarity alone); '
          f'{settings.seeds(config.seeds)} per point. Downstream (frozen '
          f'penultimate features, L-BFGS probes with {pr.l2_grid_size} L2 values in '
          f'[{pr.l2_min:g}, {pr.l2_max:g}] chosen on a {pr.val_fraction:.0%} validation split, '
          f'{pr.max_iters} iterations): {tasks}. MLOG (eq 6) from these scores and the '
          'pretraining test accuracy.' + _why(config))
