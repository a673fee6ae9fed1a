"""Paper 003's "what we ran" sentences, computed from the variant's config.

`depth` (003a), `label_noise` (003b), `corruption` (003c) and `domain_shift`
(003d) compose `nc_jax.studies.settings` pieces with the study's own config
(seeds, depths, noise rates, severities, sources, the target).
"""

from __future__ import annotations

from nc_jax.data.transforms import CORRUPTION_LEVELS, DOMAIN_SHIFT_LEVELS
from nc_jax.studies import settings
from nc_jax.studies import sweep
from nc_jax.studies.papers.p003_progressive.runs import depth_groups, noise_nets


def _corruption_text(kind: str, severity: int) -> str:
  """'Gaussian noise (std 0.08 on [0, 1] pixels), severity 3', or 'clean'."""
  if not kind or not severity:
    return 'clean'
  level = {**CORRUPTION_LEVELS, **DOMAIN_SHIFT_LEVELS}.get(kind, (None,) * 5)[severity - 1]
  what = {'gaussian_noise': f'Gaussian noise (std {level:g} on [0, 1] pixels)',
          'gaussian_blur': f'Gaussian blur (sigma {level:g} px)',
          'invert': 'inverted (1 - x)',
          'rotate': f'rotated by {level:g} degrees',
          'cifar_background': f'on CIFAR-10 (JPEG copy) grey patches at weight {level:g}, '
                              'max-composited'}.get(kind, kind)
  return f'{what}, severity {severity}'


def _ran(config, t, model: str | None = None) -> str:
  """What a claim's runs share: ``model`` (default `settings.model`) trained
  as ``t`` says, the seeds, and what every run measures."""
  evaluated = (f'a fixed random subset of {t.evals.train_examples:,} training images'
               if t.evals.train_examples else 'the training images')
  text = (f'{model or settings.model(t)} on {settings.data(t)}; {settings.optimizer(t)}; '
          f'{settings.augmentation(t)}; {settings.seeds(config.seeds)} per group; CDNV and '
          f'NC2 of every tracked layer on {evaluated} at the last epoch and at '
          'initialisation.')
  if t.model.name == 'mlp':
    text += ' Each hidden layer plays the role of a block (the paper: ResNet blocks).'
  return text


def depth(config) -> str:
  """003a's runs: the ResNet depths (judged), the MLP depth sweep (control), the probes."""
  texts = []
  for family, base in (('resnet', config.resnet), ('mlp', config.base)):
    groups = [(b, over) for b, over, tags in depth_groups(config).values()
              if tags['family'] == family]
    if not groups:
      continue
    models = ', '.join(settings.model(sweep.with_overrides(b, over)) for b, over in groups)
    role = ('Judged: ' if family == 'resnet' else
            'Control (the per-layer law, reported, not judged): ')
    texts.append(role + _ran(config, base, models))
  probe_test = (f'the first {config.probe_test_examples:,} test images'
                if config.probe_test_examples else 'every test image')
  return (' '.join(texts) + ' Linear probes (L2 grid of '
          f"{config.probe.l2_grid_size}) on every tracked layer's frozen features, "
          f'{config.probe_examples:,} training images / {probe_test}.')


def label_noise(config) -> str:
  """003b's runs: the label-noise rates at each depth."""
  nets = list(noise_nets(config))
  at = (f"at MLP depths {', '.join(n.removeprefix('depth') for n in nets)}"
        if nets != ['base'] else 'on the base model')
  return (_ran(config, config.base) + f' Symmetric label noise on the training labels {at}, '
          f"{settings.grid({'rate': config.noise_rates})} (the noise-free runs are "
          "003a's MLP runs of the same depth where it has them); CDNV of the training "
          'images against the noisy and the clean labels.')


def corruption(config) -> str:
  """003c's runs: the corrupted inputs."""
  sevs = '; '.join(_corruption_text(config.corruption, s) for s in config.severities)
  every = (' (these runs evaluate every training image, not a subset)'
           if config.base.evals.train_examples else '')
  return (_ran(config, config.base) + f' Trained on corrupted inputs ({sevs}; data.corrupt, '
          'CIFAR-10-C-style levels); CDNV on the corrupted training images and on the same '
          f"images clean{every}; compared with 003b's label-noise runs.")


def domain_shift(config) -> str:
  """003d's runs: the source domains and the target."""
  t = config.target
  sources = '; '.join(f'{n}: {_corruption_text(s.corruption, s.corruption_severity)}'
                      for n, s in config.sources.items())
  base = sweep.with_overrides(config.base, {'data.name': config.domain_dataset,
                                            'augment.crop_padding': 0, 'augment.flip': False})
  options = t.data.options.to_dict()
  framed = (f" ({options['image_size'][0]} x {options['image_size'][1]}, framed by "
            f"{options.get('padding', 0)} px)" if options.get('image_size') else '')
  return (_ran(config, base)
          + f' Trained on {len(config.sources)} source domains that share the labels '
          f'({sources}). Target: {settings.data(t)}{framed}, '
          f'{_corruption_text(t.data.corruption.name, t.data.corruption.severity)}, never '
          'trained on: CDNV of every layer on the target test images; linear probes trained '
          f'on {t.data.examples_per_class} target images per class, tested on '
          f"{settings.test_data(t)}. The paper's Office-Home is not available offline.")

