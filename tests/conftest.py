"""Test configuration: 8 fake CPU devices for the sharding tests.

XLA_FLAGS must be set before JAX initialises its backends, hence here.
"""

import os

_FLAG = "--xla_force_host_platform_device_count=8"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()
