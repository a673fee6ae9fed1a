"""Test configuration: 8 fake CPU devices for the sharding tests.

XLA_FLAGS must be set before JAX initialises its backends, hence here.

Compiled programs are kept across test modules (the trainer compiles each
once per process) until the process holds half of Linux's memory-mapping
cap: the suite compiles a few thousand distinct programs (metric shapes,
models), and XLA:CPU executables hold hundreds of mappings each
(`nc_jax.process`).

With ``NC_JAX_COMPILE_LOG=<path>``, the session appends one JSON line to
<path>: the XLA compilations and their summed time, the jaxpr traces, and
the process's memory mappings at the end (benchmarks/bench_compile.py
records the suite's counts this way).
"""

import json
import os
import time

_FLAG = "--xla_force_host_platform_device_count=8"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()

import pytest

_COUNTS = {"compilations": 0, "compile_s": 0.0, "traces": 0}


def _listen(event, duration, **_):
  if event == "/jax/core/compile/backend_compile_duration":
    _COUNTS["compilations"] += 1
    _COUNTS["compile_s"] += duration
  elif event == "/jax/core/compile/jaxpr_trace_duration":
    _COUNTS["traces"] += 1


@pytest.fixture(scope="module", autouse=True)
def _programs_within_the_map_limit():
  yield
  from nc_jax import process  # pylint: disable=g-import-not-at-top
  process.release_programs_near_map_limit()


@pytest.fixture(scope="session", autouse=True)
def _compile_log():
  """Counts compilations over the session (written with NC_JAX_COMPILE_LOG)."""
  path = os.environ.get("NC_JAX_COMPILE_LOG")
  if not path:
    yield
    return
  from jax import monitoring  # pylint: disable=g-import-not-at-top
  monitoring.register_event_duration_secs_listener(_listen)
  start = time.perf_counter()
  yield
  with open("/proc/self/maps") as f:
    mappings = sum(1 for _ in f)
  with open(path, "a") as f:
    f.write(json.dumps(dict(_COUNTS, compile_s=round(_COUNTS["compile_s"], 1),
                            wall_s=round(time.perf_counter() - start, 1),
                            memory_mappings=mappings)) + "\n")
