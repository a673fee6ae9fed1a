"""Test configuration: 8 fake CPU devices for the sharding tests.

XLA_FLAGS must be set before JAX initialises its backends, hence here.
"""

import os

_FLAG = "--xla_force_host_platform_device_count=8"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()

import gc

import pytest


@pytest.fixture(scope="session", autouse=True)
def _persistent_compilation_cache(tmp_path_factory):
  """Compiles each program once per test session, on disk.

  The trainer and the studies build fresh jitted closures in every run, so
  the in-memory cache never serves a second run (nor a program freed by
  `_free_compiled_programs`); the persistent cache is keyed on the program
  itself, so the many runs of identical programs across tests compile once
  (test_train's resume and sharding runs: ~5 s -> ~1 s per extra run).
  """
  import jax  # pylint: disable=g-import-not-at-top
  from jax.experimental.compilation_cache import compilation_cache  # pylint: disable=g-import-not-at-top
  names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
           "jax_persistent_cache_min_entry_size_bytes")
  saved = {n: getattr(jax.config, n) for n in names}
  jax.config.update(names[0], str(tmp_path_factory.mktemp("jax_cache")))
  jax.config.update(names[1], 0.0)
  jax.config.update(names[2], 0)
  compilation_cache.reset_cache()
  yield
  for n, v in saved.items():
    jax.config.update(n, v)
  compilation_cache.reset_cache()


@pytest.fixture(scope="module", autouse=True)
def _free_compiled_programs():
  """Drops JAX's compiled programs after each test module.

  Every XLA:CPU executable holds a few hundred memory mappings (a
  collapse_report ~250), and module-level jitted functions keep one
  executable per input shape for the life of the process. The whole suite
  in one process reached Linux's default limit of 65,530 mappings
  (vm.max_map_count): the next compile then fails, and the process died in
  the C++ unwinder while raising that error (seen as a segfault in
  test_studies). Clearing between modules keeps the count to one module's
  programs; tests that compile the same program twice do so within a module.
  """
  yield
  import jax  # pylint: disable=g-import-not-at-top
  jax.clear_caches()
  gc.collect()
