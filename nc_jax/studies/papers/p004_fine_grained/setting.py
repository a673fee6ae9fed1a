"""Paper 004's "What we ran" sentences, computed from the variant's config.

`settings` describes each trainer config; this adds what the study counts
(training labels and images in all, the analysis epochs, CLP and probe) and
the Gaussian mixture's setting.
"""

from __future__ import annotations

from collections.abc import Sequence

from nc_jax.studies import settings
from nc_jax.studies.papers.p004_fine_grained.runs import coarse_config

# Images in the full training split (a config with data.examples_per_class = 0).
_TRAIN_SIZES = {'mnist': 60_000, 'fashion_mnist': 60_000, 'cifar10': 50_000,
                'cifar10_jpeg': 50_000, 'cifar100': 50_000}
_EMBEDDINGS = {'tsne': 't-SNE', 'opentsne': 't-SNE (openTSNE)', 'pca': 'PCA'}


def _num_labels(t) -> int:
  """Training labels of a trainer config: y mod k -> k; each class split in k -> k x C."""
  classes = 100 if t.data.name == 'cifar100' else 10
  kind, _, k = t.data.label_map.partition(':')
  return int(k) if kind == 'mod' else classes * int(k) if kind == 'split' else classes


def _run_text(t, seeds: Sequence[int]) -> str:
  """`settings.trainer`, then the training labels and images in all, test images, seeds."""
  labels = _num_labels(t)
  per_class = t.data.examples_per_class
  images = per_class * labels if per_class else _TRAIN_SIZES.get(t.data.name)
  count = f'{images:,} training images over {labels} labels' if images else f'{labels} labels'
  return (f'{settings.trainer(t)}; {count}, tested on {settings.test_data(t)}; '
          f'{settings.seeds(seeds)}')


def _distances_text(config, epochs: Sequence[int], between: str = '') -> str:
  """'Distances{between} on N training images at epochs 0, 5 (0 = initialisation)'."""
  return (f'Distances{between} on {settings.number(config.analysis_train_examples)} '
          f'training images at epochs {", ".join(str(e) for e in epochs)} '
          '(0 = initialisation)')


def setting_004a(config) -> str:
  """The tested coarse runs, the distances, CLP and probe; the reported runs."""
  tested = [m for m in config.coarse_models if m in config.clp_models]
  reported = [m for m in config.coarse_models if m not in config.clp_models]
  p, clp = config.probe, config.clp
  perplexity = f' (perplexity {clp.perplexity:g})' if 'tsne' in clp.embedding else ''
  text = ('. '.join(_run_text(coarse_config(config, m), config.coarse_seeds) for m in tested)
          + f'. {_distances_text(config, config.coarse_epochs)}; CLP: '
          f'{_EMBEDDINGS.get(clp.embedding, clp.embedding)}{perplexity} and k-means per '
          f'super-class ({clp.kmeans_restarts} restarts), L-BFGS probe with '
          f'{p.l2_grid_size} L2 values in [{p.l2_min:g}, {p.l2_max:g}] ({p.max_iters} '
          'iterations).')
  if reported:
    text += ' Reported, not tested (MSDR only): ' + '. '.join(
        _run_text(coarse_config(config, m), config.reported_seeds) for m in reported) + '.'
  return text


def setting_004b(config) -> str:
  """The App. B model, its sweeps and seeds; the width investigation."""
  m = config.mixture
  sim = m.similarity
  lrs = ', '.join(f'{lr:g}' for lr in config.mixture_width_lrs)
  sweeps = settings.grid({'input dims': m.input_dims, 'hidden widths': m.hidden_dims,
                          'weight decays': m.weight_decays, 'sigma^2': m.sigma2,
                          'tau^2': sim.tau2})
  return (f'App. B model (2-layer ReLU MLP, full-batch gradient descent on the coarse '
          f'labels, PyTorch-default initialisation, lr {m.learning_rate:g}, '
          f'{settings.number(m.num_steps)} steps): {m.num_clusters} clusters x '
          f'{m.samples_per_cluster} samples, {m.num_superclasses} super-classes, d_input = '
          f'{m.input_dim}, d_hidden = {m.hidden_dim}, weight decay {m.weight_decay:g} by '
          f'default; {sweeps} at sigma^2 = {sim.sigma2:g} ({sim.num_similar} similar '
          f'super-classes); {settings.seeds(range(m.num_seeds))}.'
          + (f' Width investigation: the hidden-width sweep again at lr {lrs}.' if lrs else ''))


def setting_004c(config) -> str:
  """The fine-label runs and their distances."""
  return (f'{_run_text(config.fine, config.fine_seeds)}. '
          f'{_distances_text(config, config.fine_epochs, " between the fine classes")}; '
          f'"early" = epoch {config.fine_early_epoch}.')
