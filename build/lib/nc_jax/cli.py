"""What every ``experiments/*.py`` entry point shares: flags, logging, start-up.

``cli.main(fn)`` defines ``--config`` (an ml_collections config file, locked,
so a misspelt ``--config.key`` is an error), ``--workdir`` and
``--distributed`` (``jax.distributed.initialize()`` on multi-host runs),
quiets orbax's per-save log lines, and calls ``fn(config, workdir)``.
"""

from __future__ import annotations

import logging as std_logging
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

  app.run(_main)
