"""What every study shares: progress messages."""

from __future__ import annotations

import sys


def say(msg: str) -> None:
  """A progress line on stdout, flushed (studies run for minutes to hours)."""
  print(msg, flush=True, file=sys.stdout)
