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
  if kind == 'table':
    return max(int(c) for c in k.split(',')) + 1
  return int(k) if kind == 'mod' else classes * int(k) if kind == 'split' else classes


def _run_text(t, seeds: Sequence[int]) -> str:
  """`settings.trainer`, then the training labels and images in all, test images, seeds."""
  labels = _num_labels(t)
  per_class = t.data.examples_per_class
  images = per_class * labels if per_class else _TRAIN_SIZES.get(t.data.name)
  count = f'{images:,} training images over {labels} labels' if images else f'{labels} labels'
  return (f'{settings.trainer(t)}; {count}, tested on {settings.test_data(t)}; '
          f'{settings.seeds(seeds)}')


def _distances_text(config, epochs: Sequence[int], between: str = '', t=None) -> str:
  """'Distances{between} on N training images at epochs 0, 5 (0 = initialisation)'.

  N: ``analysis_train_examples``, or all the training images of trainer
  config ``t`` when it has fewer.
  """
  n = config.analysis_train_examples
  if t is not None and t.data.examples_per_class:
    n = min(n, t.data.examples_per_class * _num_labels(t))
  return (f'Distances{between} on {settings.number(n)} '
          f'training images at epochs {", ".join(str(e) for e in epochs)} '
          '(0 = initialisation)')


def setting_004a(config) -> str:
  """The tested coarse runs, the distances, CLP and probe; the reported runs."""
  models = list(config.coarse_models)
  tested = [m for m in models if m in config.tested_models]
  reported = [m for m in models if m not in config.tested_models]
  p, clp = config.probe, config.clp
  perplexity = f' (perplexity {clp.perplexity:g})' if 'tsne' in clp.embedding else ''
  text = ('Tested: ' + '. '.join(f'{m}: ' + _run_text(coarse_config(config, m),
                                                       config.coarse_seeds) for m in tested)
          + f'. {_distances_text(config, config.coarse_epochs)}; the MSDR checks read '
          f"{', '.join(config.msdr_models)}; CLP: "
          f'{_EMBEDDINGS.get(clp.embedding, clp.embedding)}{perplexity} and k-means per '
          f'super-class ({clp.kmeans_restarts} restarts), L-BFGS probe with '
          f'{p.l2_grid_size} L2 values in [{p.l2_min:g}, {p.l2_max:g}] ({p.max_iters} '
          'iterations).')
  if reported:
    text += ' Reported, not tested: ' + '. '.join(
        f"{m}{' (with CLP)' if m in config.clp_models else ' (MSDR only)'}: "
        + _run_text(coarse_config(config, m), config.reported_seeds) for m in reported) + '.'
  return text


def _mixture_text(config) -> str:
  m = config.mixture
  return (f'App. B model (2-layer ReLU MLP, full-batch gradient descent on the coarse '
          f'labels, {settings.number(m.num_steps)} steps, {m.init} initialisation): '
          f'{m.num_clusters} clusters x {m.samples_per_cluster} samples, '
          f'{m.num_superclasses} super-classes, d_input = {m.input_dim}, d_hidden = '
          f'{m.hidden_dim} by default; {settings.seeds(range(m.num_seeds))}; learning rate '
          f"from the pre-study's rule over {', '.join(f'{x:g}' for x in config.lr_grid)}")


def setting_004b(config) -> str:
  """The App. B model, its sweeps and seeds."""
  m = config.mixture
  sim = m.similarity
  sweeps = settings.grid({'input dims': m.input_dims, 'sigma^2': m.sigma2,
                          'weight decay strengths lr x wd x steps':
                              config.weight_decay_strengths, 'tau^2': sim.tau2})
  return (f'{_mixture_text(config)}; {sweeps} (tau^2 at sigma^2 = {sim.sigma2:g}, '
          f'{sim.num_similar} similar super-classes); the input\'s own MSDR measured on '
          'the same samples.')


def setting_004d(config) -> str:
  """The hidden-width line, the sign table and the initialisation check."""
  m, t, c = config.mixture, config.width_table, config.init_check
  return (f"{_mixture_text(config)}; hidden widths {', '.join(str(w) for w in m.hidden_dims)}"
          f" at sigma^2 {', '.join(f'{s:g}' for s in m.sigma2)}. Sign table: widths "
          f"{', '.join(str(w) for w in t.hidden_dims)} at sigma^2 "
          f"{', '.join(f'{s:g}' for s in t.sigma2)}, learning rates "
          f"{', '.join(f'{x:g}' for x in t.learning_rates)}, initialisations "
          f"{', '.join(t.inits)}. Initialisation check: {m.num_clusters} x "
          f'{c.samples_per_cluster} samples, d_input {c.input_dim}, width {c.hidden_dim}, '
          f'lr {c.learning_rate:g}, sigma^2 = {c.sigma2:g}, both initialisations.')


def setting_004c(config) -> str:
  """The fine-label runs and their distances."""
  return (f'{_run_text(config.fine, config.fine_seeds)}. '
          f'{_distances_text(config, config.fine_epochs, " between the fine classes", config.fine)}; '
          f'"early" = epoch {config.fine_early_epoch}.')
