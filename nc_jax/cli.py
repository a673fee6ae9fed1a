"""What every ``experiments/*.py`` entry point shares: flags, logging, start-up.

``cli.main(fn)`` defines ``--config`` (an ml_collections config file, locked,
so a misspelt ``--config.key`` is an error naming the flag and the key, with
a "did you mean"), ``--workdir`` and ``--distributed``
(``jax.distributed.initialize()`` on multi-host runs), quiets orbax's
per-save log lines, and calls ``fn(config, workdir)``.

Overrides reach every key the config has, at any depth: for a trainer config
``--config.optimizer.learning_rate=0.05``,
``--config.optimizer.kwargs.nesterov=True`` (the groups built by
`nc_jax.train.optimizer` / ``schedule`` / ``loss`` hold every keyword
argument of their function), ``--config.data.name=cifar10_jpeg``.
"""

from __future__ import annotations

import logging as std_logging
import re
import shlex
import sys
from collections.abc import Callable
from typing import Any

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
    'config', None, 'Config file (configs/...py[:variant]).', lock_config=True)
_WORKDIR = flags.DEFINE_string('workdir', None, 'Output directory.')
_DISTRIBUTED = flags.DEFINE_bool(
    'distributed', False, 'Multi-host: call jax.distributed.initialize().')


def _quiet_orbax(record: std_logging.LogRecord) -> bool:
  """Drops orbax's per-save INFO lines (a dozen per checkpoint)."""
  return record.levelno >= std_logging.WARNING or 'orbax' not in record.pathname


def command_line() -> str:
  """The command as typed (recorded in results.json)."""
  return 'python ' + ' '.join(shlex.quote(a) for a in sys.argv)


def _unknown_key(error: BaseException, argv: list[str]) -> str | None:
  """The one-line message for a ``--config.<path>`` naming a missing key.

  ml_collections raises a KeyError (an AttributeError inside a group) from
  deep in the flag parser, its text ``'key'`` and maybe a "Did you mean"
  line. None when no ``--config.`` flag names that key (then the error came
  from elsewhere, e.g. the config file itself, and keeps its traceback).
  """
  text = error
  while isinstance(text, BaseException) and text.args:
    text = text.args[0]
  found = re.match(r"'([^']+)'\s*(.*)", str(text), flags=re.S)
  if not found:
    return None
  key, hint = found.group(1), found.group(2).strip()
  for arg in argv[1:]:
    parts = arg.split('=', 1)[0].split('.')
    if parts[0] != '--config' or key not in parts[1:]:
      continue
    parent = '.'.join(['config'] + parts[1:parts.index(key, 1)])
    owner = 'the config' if parent == 'config' else parent
    message = f'{arg}: {owner} has no key {key!r}'
    if hint:
      message += f' ({hint[0].lower()}{hint[1:]})'
    if parent.endswith('.kwargs'):
      message += (f'; its keys are the keyword arguments of the function '
                  f'{parent[:-len(".kwargs")]}.name names')
    return message
  return None


def _parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with a misspelt ``--config.<key>`` in one line."""
  try:
    return app.parse_flags_with_usage(argv)
  except (KeyError, AttributeError) as e:
    message = _unknown_key(e, argv)
    if message is None:
      raise
    sys.stderr.write(f'FATAL Flags parsing error: {message}\n')
    sys.exit(1)


def main(fn: Callable[[Any, str], Any]) -> None:
  """Parses the flags and runs ``fn(config, workdir)``."""
  flags.mark_flags_as_required(['config', 'workdir'])

  def _main(argv):
    if len(argv) > 1:
      raise app.UsageError(f'unexpected arguments: {argv[1:]}')
    logging.get_absl_handler().addFilter(_quiet_orbax)
    import jax  # pylint: disable=g-import-not-at-top
    if _DISTRIBUTED.value:
      jax.distributed.initialize()
    logging.info('JAX devices: %s (process %d of %d)', jax.devices(),
                 jax.process_index(), jax.process_count())
    fn(_CONFIG.value, _WORKDIR.value)

  app.run(_main, flags_parser=_parse_flags)
