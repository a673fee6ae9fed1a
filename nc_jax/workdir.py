"""The output convention every nc_jax experiment follows.

An experiment writes into its ``--workdir``:

- ``config.json``: the config it ran with;
- ``metrics.jsonl``: one JSON object per logged step or sweep point, metric
  names as in SPEC.md (``{"step": 100, "split": "train", "nc1": 0.3, ...}``);
- ``summary.json``: the final numbers;
- ``*.png``: plots (drawn by `nc_jax.plots`), next to the machine-readable
  files.

``metrics.jsonl`` is appended to and flushed line by line, so a crash never
loses logged results, and a resumed run can read back what it already logged
(`read_jsonl`: a last line cut short by a crash is dropped, and the resumed run
logs it again). `Workdir.lock` keeps a second process out of a workdir in use.
The records' schema and selection: `nc_jax.records`; reading a trainer run:
`nc_jax.rundir.RunDir`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np

METRICS = "metrics.jsonl"
LOCK = "run.lock"  # Held (flock) by the process writing the workdir.


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


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
  """The records of a JSON-lines file (empty list if absent).

  A last line without its newline that does not parse is a record cut short
  (by a crash, or being written right now) and is dropped: a resumed run logs
  it again.

  Raises:
    ValueError: any other line is not JSON (the message names the file and
      the line number).
  """
  path = os.fspath(path)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    lines = f.read().split("\n")
  # After the final newline comes "" (complete file) or a partial record.
  partial = lines.pop()
  records = []
  for number, line in enumerate(lines, 1):
    if line.strip():
      records.append(_parse(line, path, number))
  if partial.strip():
    try:
      records.append(json.loads(partial))
    except json.JSONDecodeError:
      pass  # Cut short: dropped (see above).
  return records


def _parse(line: str, path: str, number: int) -> dict[str, Any]:
  try:
    return json.loads(line)
  except json.JSONDecodeError as err:
    raise ValueError(
        f"{path}, line {number}: not a JSON record ({err}): {line[:120]!r}. "
        "Only a cut-short last line is dropped on reading; remove or repair "
        "this line.") from None


class WorkdirInUse(RuntimeError):
  """Another process holds the workdir's lock (the message names it)."""


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
    with open(self.file(METRICS), "a") as f:
      f.write(json.dumps(to_python(record), sort_keys=True) + "\n")
      f.flush()
      os.fsync(f.fileno())

  def log_many(self, records: Iterable[Mapping[str, Any]]) -> None:
    for r in records:
      self.log(r)

  def read_metrics(self) -> list[dict[str, Any]]:
    """Reads back ``metrics.jsonl`` (empty list if absent; see `read_jsonl`)."""
    return read_jsonl(self.file(METRICS))

  def truncate_metrics(self, keep: Callable[[dict[str, Any]], bool]) -> None:
    """Keeps only the logged records for which ``keep(record)`` is true.

    Used on resume: records logged after the last checkpoint (and a last line
    cut short by a crash) are dropped, so the resumed run re-logs them and the
    file has no duplicates.
    """
    records = [r for r in self.read_metrics() if keep(r)]
    path = self.file(METRICS)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
      for r in records:
        f.write(json.dumps(r, sort_keys=True) + "\n")
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)

  @contextlib.contextmanager
  def lock(self) -> Iterator[None]:
    """Holds the workdir for this process while the context runs.

    An exclusive ``flock`` on ``run.lock``, which holds the holder's pid, host,
    start time and command. The OS releases it when the process ends, also on
    a crash or a kill (a stale file is then taken over); a normal exit also
    removes the file.

    Raises:
      WorkdirInUse: another process holds it (the message names it).
    """
    path = self.file(LOCK)
    fd = _acquire(path, self.path)
    try:
      yield
    finally:
      with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # Still locked: a waiting opener sees a new inode.
      os.close(fd)


def _acquire(path: str, workdir: str) -> int:
  """An fd of ``path`` with the exclusive lock, holder info written."""
  while True:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
      holder = _holder(fd)
      os.close(fd)
      if err.errno not in (errno.EAGAIN, errno.EACCES):
        raise
      raise WorkdirInUse(
          f"{workdir} is in use by another run ({holder}): two runs in one "
          "workdir would log every record twice. Wait for it to end or use "
          f"another workdir. The lock ({path}) is released when that process "
          "exits, also if it crashes.") from None
    try:  # The holder before us may have removed the file: lock the new one.
      same = os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
      same = False
    if same:
      break
    os.close(fd)
  info = dict(pid=os.getpid(), host=socket.gethostname(),
              started=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
              command=" ".join(sys.argv)[:500])
  os.ftruncate(fd, 0)
  os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
  os.fsync(fd)
  return fd


def _holder(fd: int) -> str:
  """'pid P on host H, started T (command)' from a lock file's contents."""
  try:
    info = json.loads(os.pread(fd, 4096, 0).decode())
    return (f"pid {info['pid']} on host {info['host']}, started "
            f"{info['started']}: {info['command']}")
  except (ValueError, KeyError, TypeError, UnicodeDecodeError):
    return "a process that has not written its pid yet"
