"""The README's metrics example runs and its assertions hold (examples cannot rot)."""

import os
import re

README = os.path.join(os.path.dirname(__file__), "..", "README.md")


def _python_blocks():
  text = open(README).read()
  return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_metrics_example_runs():
  blocks = [b for b in _python_blocks() if "collapse_report" in b]
  assert blocks, "README lost its metrics example"
  namespace = {}
  exec(compile(blocks[0], "README.md", "exec"), namespace)
  report = namespace["report"]
  assert 0 < float(report["nc1"]) < 1
