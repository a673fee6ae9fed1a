"""Variant parsing shared by every config file.

A config is chosen as ``--config=configs/<name>.py[:ARG]``; ARG is a
comma-separated list of tokens:

- a flag the config declares (``runlocal``, ``gpu``, ``supcon``, ...);
- a value of one of its choices (``cifar10`` for ``dataset``);
- ``key=value`` overrides (``num_epochs=3``, ``model_kwargs.width=16``),
  values read as Python literals (strings may stay unquoted).

Example, in a config file::

  def get_config(arg=None):
    v = common.parse(arg, flags=('runlocal',),
                     choices={'dataset': ('mnist', 'fashion_mnist')})
    config = train.default_config()
    config.dataset = v.choice('dataset', 'mnist')
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
  """``config`` with the variant's ``key=value`` overrides (dotted keys)."""
  for key, value in variant.overrides.items():
    *parents, leaf = key.split('.')
    node = config
    for p in parents:
      if p not in node:
        raise ValueError(f'override {key!r}: the config has no key {p!r}')
      node = node[p]
    if node is config and leaf not in config:
      raise ValueError(f'override {key!r}: the config has no key {leaf!r}')
    with node.unlocked():
      node[leaf] = value
  return config
