"""Variant parsing shared by every config file.

A config is chosen as ``--config=configs/<name>.py[:ARG]``; ARG is a
comma-separated list of tokens:

- a flag the config declares (``runlocal``, ``gpu``, ``supcon``, ...);
- a value of one of its choices (``cifar10`` for ``dataset``);
- ``key=value`` overrides (``num_epochs=3``, ``model.kwargs.width=16``),
  values read as Python literals (strings may stay unquoted).

Example, in a config file::

  def get_config(arg=None):
    v = common.parse(arg, flags=('runlocal',),
                     choices={'dataset': ('mnist', 'fashion_mnist')})
    config = train.default_config()
    config.data.name = v.choice('dataset', 'mnist')
    if v.runlocal:
      config.num_epochs = 3
    return common.apply(config, v)
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections

from nc_jax.train.config import override


@dataclasses.dataclass(frozen=True)
class Variant:
  """What ARG selected: flags, choices and overrides."""

  flags: frozenset[str]
  choices: Mapping[str, str]
  overrides: Mapping[str, Any]

  def __getattr__(self, name: str) -> bool:
    # v.runlocal, v.gpu: True when the flag was given.
    if name.startswith('_'):
      raise AttributeError(name)
    return name in self.flags

  def choice(self, name: str, default: str) -> str:
    return self.choices.get(name, default)


def _literal(text: str) -> Any:
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def parse(arg: str | None, *, flags: Sequence[str] = ('runlocal',),
          choices: Mapping[str, Sequence[str]] | None = None) -> Variant:
  """Parses a config ARG (see the module docstring).

  Raises:
    ValueError: an unknown token, naming what the config accepts.
  """
  choices = dict(choices or {})
  got_flags, got_choices, overrides = set(), {}, {}
  for token in filter(None, (t.strip() for t in (arg or '').split(','))):
    if '=' in token:
      key, value = token.split('=', 1)
      overrides[key.strip()] = _literal(value.strip())
    elif token in flags:
      got_flags.add(token)
    else:
      owner = [k for k, values in choices.items() if token in values]
      if not owner:
        accepted = list(flags) + [f'{k}: {"|".join(v)}' for k, v in choices.items()]
        raise ValueError(f'unknown config argument {token!r}; this config '
                         f'accepts {accepted} and key=value overrides')
      if owner[0] in got_choices:
        raise ValueError(f'two values for {owner[0]}: '
                         f'{got_choices[owner[0]]!r} and {token!r}')
      got_choices[owner[0]] = token
  return Variant(frozenset(got_flags), got_choices, overrides)


def apply(config: ml_collections.ConfigDict,
          variant: Variant) -> ml_collections.ConfigDict:
  """``config`` with the variant's ``key=value`` overrides (dotted keys).

  `nc_jax.train.config.override`: a key the config lacks is an error, except
  inside keyword-argument dicts (``optimizer.kwargs.nesterov=True``).
  """
  return override(config, variant.overrides)


def trainer(dataset: str, model: str = 'mlp', *, epochs: int,
            model_kwargs: Mapping[str, Any] | None = None,
            optimizer: ml_collections.ConfigDict | None = None,
            schedule: ml_collections.ConfigDict | None = None,
            loss: ml_collections.ConfigDict | None = None,
            quiet: bool = False,
            **groups: Any) -> ml_collections.ConfigDict:
  """A trainer config: `train.default_config` with these choices.

  The preamble every study config shared. ``optimizer`` / ``schedule`` /
  ``loss`` are groups built by `train.optimizer` / `train.schedule` /
  `train.loss`; ``quiet``: no progress bar, no plots, checkpoints only at
  the end (the runs of a study). Other keywords set whole keys of the
  config, with ``__`` for a dot: ``data__examples_per_class=700``,
  ``evals__every=5``.
  """
  from nc_jax import train  # pylint: disable=g-import-not-at-top
  c = train.default_config()
  c.data.name = dataset
  c.model.name = model
  c.model.kwargs = ml_collections.ConfigDict(dict(model_kwargs or {}))
  c.num_epochs = epochs
  for name, group in (('optimizer', optimizer), ('schedule', schedule),
                      ('loss', loss)):
    if group is not None:
      c[name] = group
  if quiet:
    c.log.progress_bar = False
    c.log.plots = False
    c.checkpoint.every = 0
  return override(c, {k.replace('__', '.'): v for k, v in groups.items()})
