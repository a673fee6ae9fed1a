"""The output convention every nc_jax experiment follows.

An experiment writes into its ``--workdir``:

- ``config.json``: the config it ran with;
- ``metrics.jsonl``: one JSON object per logged step or sweep point, metric
  names as in SPEC.md (``{"step": 100, "split": "train", "nc1": 0.3, ...}``);
- ``summary.json``: the final numbers;
- ``*.png``: plots (drawn by `nc_jax.plots`), next to the machine-readable
  files.

``metrics.jsonl`` is appended to and flushed line by line, so a crash never
loses logged results, and a resumed run can read back what it already logged.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np


def to_python(value: Any) -> Any:
  """Converts JAX/NumPy scalars and arrays (nested) to JSON-able Python."""
  if isinstance(value, Mapping):
    return {str(k): to_python(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [to_python(v) for v in value]
  if hasattr(value, "to_dict"):  # ml_collections.ConfigDict
    return to_python(value.to_dict())
  if isinstance(value, (str, bool)) or value is None:
    return value
  if isinstance(value, int):
    return value
  if isinstance(value, float):
    return value if math.isfinite(value) else str(value)
  arr = np.asarray(value)
  if arr.dtype.kind in "fc" and arr.ndim == 0:
    f = float(arr)
    return f if math.isfinite(f) else str(f)
  if arr.dtype.kind in "iub" and arr.ndim == 0:
    return arr.item()
  if arr.dtype.kind in "fiub":
    return to_python(arr.tolist())
  return str(value)


class Workdir:
  """Writer for one experiment's ``--workdir``.

  Example:
    >>> wd = Workdir("/tmp/run")
    >>> wd.write_config({"lr": 0.1})
    >>> wd.log({"step": 0, "nc1": 1.5})
    >>> wd.write_summary({"final_nc1": 0.01})
  """

  def __init__(self, path: str | os.PathLike[str]):
    self.path = os.fspath(path)
    os.makedirs(self.path, exist_ok=True)

  def file(self, name: str) -> str:
    return os.path.join(self.path, name)

  def write_json(self, name: str, obj: Any) -> str:
    """Writes ``obj`` atomically (write to a temp file, then rename)."""
    path = self.file(name)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
      json.dump(to_python(obj), f, indent=2, sort_keys=True)
      f.write("\n")
    os.replace(tmp, path)
    return path

  def write_config(self, config: Any) -> str:
    return self.write_json("config.json", config)

  def write_summary(self, summary: Mapping[str, Any]) -> str:
    return self.write_json("summary.json", summary)

  def log(self, record: Mapping[str, Any]) -> None:
    """Appends one JSON line to ``metrics.jsonl`` and flushes it to disk."""
    with open(self.file("metrics.jsonl"), "a") as f:
      f.write(json.dumps(to_python(record), sort_keys=True) + "\n")
      f.flush()
      os.fsync(f.fileno())

  def log_many(self, records: Iterable[Mapping[str, Any]]) -> None:
    for r in records:
      self.log(r)

  def read_metrics(self) -> list[dict[str, Any]]:
    """Reads back ``metrics.jsonl`` (empty list if absent)."""
    path = self.file("metrics.jsonl")
    if not os.path.exists(path):
      return []
    with open(path) as f:
      return [json.loads(line) for line in f if line.strip()]

  def truncate_metrics(self, keep: "callable") -> None:
    """Keeps only the logged records for which ``keep(record)`` is true.

    Used on resume: records logged after the last checkpoint are dropped, so
    the resumed run re-logs them and the file has no duplicates.
    """
    records = [r for r in self.read_metrics() if keep(r)]
    path = self.file("metrics.jsonl")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
      for r in records:
        f.write(json.dumps(r, sort_keys=True) + "\n")
    os.replace(tmp, path)
