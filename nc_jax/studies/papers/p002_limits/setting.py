"""Paper 002's "what we ran" sentences, computed from the variant's config.

`cascade` (002a, 002d), `size` (002b) and `transfer` (002c) compose
`nc_jax.studies.settings` pieces with the study's own config (seeds, sizes,
checkpoints, the fine-tuning grid), so a ``:runlocal`` report describes the
runs it made.
"""

from __future__ import annotations

import re

from nc_jax.studies import settings

_SLICE = re.compile(r'^\w+\[(?P<start>\d*):(?P<stop>\d+)\]$')


def _slice(split: str) -> tuple[int, int] | None:
  """'train[1000:1500]' -> (1000, 1500); None for a split without a bounded slice."""
  m = _SLICE.match(split)
  return (int(m['start'] or 0), int(m['stop'])) if m else None


def _iterations(t) -> str:
  """' (7,000 iterations)': the SGD steps of a run of known train-set size, else ''."""
  d = t.data
  n, s = None, _slice(d.train_split)
  if d.examples_per_class and not d.label_map:
    n = d.examples_per_class * 10  # MNIST, Fashion-MNIST: 10 classes.
  elif not d.examples_per_class and s:
    n = s[1] - s[0]
  if not n or t.stop_at_train_loss:
    return ''
  return f' ({(n // t.batch_size) * t.num_epochs:,} iterations)'


def _trainer(t) -> str:
  return f'{settings.model(t)} on {settings.data(t)}; {settings.optimizer(t)}{_iterations(t)}'


def _numbers(values) -> str:
  """(1000, 2000) -> '1,000, 2,000'."""
  return ', '.join(settings.number(e) for e in values)


def _candidate(c) -> str:
  """'lr 0.1, weight decay 0.0005, BatchNorm' of a pre-study candidate."""
  return (f"lr {c['learning_rate']:g}, weight decay {c['weight_decay']:g}"
          + (', BatchNorm' if c['norm'] == 'batch' else
             f", {c['norm']} norm" if c['norm'] else ', no normalisation'))


def prestudy(config) -> str:
  """The pre-study: its candidates, seed and length, and the config's choice."""
  pre = config.get('prestudy')
  if pre is None:
    return ''
  names = '; '.join(f'{n} ({_candidate(pre.candidates[n])})' for n in pre.order)
  b = pre.base
  return (f' Setting from the pre-study: {len(pre.order)} candidates, each once at seed '
          f'{pre.seed}, MLP {b.model.kwargs.depth} x {b.model.kwargs.width} on '
          f'{settings.data(b)}, {settings.epochs(b.num_epochs)}{_iterations(b)}: {names}. '
          f'The study runs {pre.chosen}.')


def cascade(config) -> str:
  """002a's and 002d's runs: the checkpointed MLP and what is measured on it."""
  t = config.cascade
  epochs = ((0,) if t.checkpoint.init else ()) + tuple(t.checkpoint.epochs)
  return (f'{_trainer(t)}; {settings.seeds(config.cascade_seeds)}; variances at the '
          f'checkpoints of epochs {_numbers(epochs)} on the training images and '
          f"{settings.test_data(t)}, at the hidden layers {', '.join(config.cascade_layers)}; "
          f'weak test variance by k-means ({config.kmeans_restarts} restarts).'
          + prestudy(config))


def size(config) -> str:
  """002b's runs: one per training-set size and seed."""
  t = config.size
  name = settings.DATA_NAMES.get(t.data.name, t.data.name)
  epochs = ', '.join(f'{config.size_images_seen // n:,}' for n in config.sizes)
  return (f'{settings.model(t)} on {name} subsets '
          f'of {_numbers(config.sizes)} training images (balanced); '
          f"{settings.optimizer(t).rsplit(', ', 1)[0]}, {epochs} epochs "
          f'({config.size_images_seen:,} images seen at every size); '
          f'{settings.seeds(config.size_seeds)} per size; variances on '
          f'{settings.test_data(t)}.' + prestudy(config))


def _held_out(t) -> str:
  """Where the learning rate is chosen: '100 training images (indices 1,500-1,599) (val)'."""

  def images(split):
    s = _slice(split)
    return (f'the {split} split' if s is None else
            f'{s[1] - s[0]:,} training images (indices {s[0]:,}-{s[1] - 1:,})')

  return ', '.join(f'{images(v.split)} ({name})' for name, v in t.evals.sets.items())


def transfer(config) -> str:
  """002c's runs: each pretraining chain and its fine-tuning grid."""
  parts = []
  for group, g in config.transfer.items():
    f = g.finetune
    parts.append(
        f'{group}: pretraining {_trainer(g.pretrain)}; {settings.seeds(g.seeds)} (one chain '
        f'each). Its checkpoints at epochs {_numbers(g.epochs)} each fine-tuned '
        f"({f.init.finetune}, a new head, the chain's seed): {_trainer(f)}; "
        f"{settings.grid({'lr': g.lrs})}, chosen on {_held_out(f)}; test accuracy on "
        f'{settings.test_data(f)}.')
  if 'cifar' not in config.transfer:
    parts.append('The CIFAR-10 part: :gpu only.')
  return ' '.join(parts) + prestudy(config)
