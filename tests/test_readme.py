"""The README's examples run and its assertions hold (examples cannot rot); the
trainer's command line takes the grouped config keys it shows."""

import json
import os
import re
import subprocess
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
README = os.path.join(ROOT, "README.md")


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


def test_readme_plan_example_runs():
  blocks = [b for b in _python_blocks() if "metrics.plan(" in b]
  assert blocks, "README lost its planner example"
  namespace = {}
  exec(compile(blocks[0], "README.md", "exec"), namespace)
  plan = namespace["plan"]
  assert plan.pair_rows == 128 and plan.scatter == "pooled"  # as the README says
  assert "128.0 GiB" in plan.messages[0]


def test_readme_trainer_config_example_builds_a_valid_config():
  blocks = [b for b in _python_blocks() if "train.optimizer(" in b]
  assert blocks, "README lost its trainer-config example"
  namespace = {}
  exec(compile(blocks[0], "README.md", "exec"), namespace)  # Ends in check_config.
  config = namespace["config"]
  assert config.optimizer.name == "adamw" and config.optimizer.kwargs.b2 == 0.95
  assert config.schedule.kwargs.epochs == (30, 60)


def _train_py(workdir, *overrides):
  """experiments/train.py on the main job's config, one process."""
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)  # One CPU device: conftest's 8 fake ones only slow it.
  return subprocess.run(
      [sys.executable, os.path.join(ROOT, "experiments", "train.py"),
       "--config=configs/mlp_digits.py", f"--workdir={workdir}", *overrides],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_train_py_takes_keyword_argument_overrides(tmp_path):
  out = _train_py(tmp_path, "--config.num_epochs=1", "--config.optimizer.kwargs.nesterov=True",
                  "--config.optimizer.learning_rate=0.05", "--config.model.kwargs.width=16",
                  "--config.log.plots=False", "--config.log.progress_bar=False")
  assert out.returncode == 0, out.stderr[-4000:]
  with open(tmp_path / "config.json") as f:
    config = json.load(f)
  assert config["optimizer"]["kwargs"]["nesterov"] is True
  assert config["optimizer"]["learning_rate"] == 0.05
  assert config["model"]["kwargs"]["width"] == 16 and config["num_epochs"] == 1
  assert (tmp_path / "summary.json").exists()


def test_train_py_names_a_misspelt_key(tmp_path):
  out = _train_py(tmp_path, "--config.optimzer.learning_rate=0.05")
  assert out.returncode != 0
  assert "Traceback" not in out.stderr, out.stderr[-4000:]
  last = out.stderr.strip().splitlines()[-1]
  assert "--config.optimzer.learning_rate=0.05" in last and '"optimizer"' in last, last
  assert not os.listdir(tmp_path)
