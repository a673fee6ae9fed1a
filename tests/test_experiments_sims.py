"""The sims experiments run end to end from their entry points (flags, config, outputs).

Each runs its ``:runlocal`` config shrunk further by command-line overrides
(fewer steps, seeds and grid points) so the pair finishes in well under a
minute of CPU; the two run as concurrent subprocesses (one per core), as
each entry point defines the global ``--config`` flag.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

UFM_OVERRIDES = [
    "--config.num_classes=4", "--config.samples_per_class=5", "--config.dim=8",
    "--config.num_steps=400", "--config.log_every=200", "--config.num_seeds=1",
    "--config.null_space.losses=('ce',)", "--config.null_space.noise=0.02",
    "--config.null_space.perturbation_scales=(1.0, 10.0)",
    "--config.phase.lambda_w=(1e-3, 3e-1)", "--config.phase.lambda_h=(1e-3,)",
]
MIXTURE_OVERRIDES = [
    "--config.samples_per_cluster=20", "--config.input_dim=8", "--config.hidden_dim=16",
    "--config.num_steps=100", "--config.num_seeds=1", "--config.learning_rate=0.05",
    "--config.sigma2=(0.05, 16.0)", "--config.input_dims=(8,)",
    "--config.hidden_dims=(8, 16)", "--config.weight_decays=(0.0, 1e-3)",
    "--config.similarity.tau2=(0.01, 4.0)",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """Launches both experiments at once; returns {name: workdir}."""
  env = {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
  procs, dirs = {}, {}
  for name, overrides in (("ufm", UFM_OVERRIDES), ("gaussian_mixture", MIXTURE_OVERRIDES)):
    dirs[name] = str(tmp_path_factory.mktemp(name))
    cmd = [sys.executable, os.path.join(ROOT, "experiments", f"{name}.py"),
           f"--config={os.path.join(ROOT, 'configs', name + '.py')}:runlocal",
           f"--workdir={dirs[name]}", *overrides]
    procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
  for name, proc in procs.items():
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 0, f"{name} failed:\n{out[-4000:]}"
  return dirs


def _read(workdir):
  with open(os.path.join(workdir, "summary.json")) as f:
    summary = json.load(f)
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    records = [json.loads(line) for line in f]
  with open(os.path.join(workdir, "config.json")) as f:
    config = json.load(f)
  return config, records, summary


def test_ufm_experiment_outputs(runs):
  config, records, summary = _read(runs["ufm"])
  assert config["num_steps"] == 400 and config["null_space"]["losses"] == ["ce"]
  for png in ("collapse_ce.png", "collapse_mse.png", "null_space_fig1_ce.png",
              "null_space_settle_ce.png", "null_space_perturbation_ce.png", "phase_nc1.png"):
    assert os.path.getsize(os.path.join(runs["ufm"], png)) > 1000, png
  collapse = [r for r in records if r["part"] == "collapse"]
  assert len(collapse) == 2 * 3  # 2 losses x 1 seed x steps (0, 200, 400)
  for key in ("nc1", "nc2_etf", "nc3_self_duality", "vci", "within_vb", "within_vb_perp",
              "cdnv", "nc4_ncc_mismatch", "loss", "step", "seed"):
    assert key in collapse[0], key
  for loss in ("ce", "mse"):
    curve = [r["nc1"] for r in collapse if r["loss_type"] == loss]
    assert curve[-1] < 0.1 * curve[0], (loss, curve)
  null = summary["null_space"]["ce"]
  assert null["perturbation"]["max_abs_loss_change"] < 1e-4
  assert null["perturbation"]["within_vb_perp"][1] > 10 * null["perturbation"]["within_vb_perp"][0]
  assert null["noise"]["within_vb_perp_final"] > 2 * null["plain"]["within_vb_perp_final"]
  phase = [r for r in records if r["part"] == "phase"]
  assert len(phase) == 2 and all(isinstance(r["trivial"], bool) for r in phase)
  assert len(summary["phase"]["nc1"]) == 2


def test_gaussian_mixture_experiment_outputs(runs):
  config, records, summary = _read(runs["gaussian_mixture"])
  assert config["input_dims"] == [8]
  for png in ("msdr_vs_sigma2_input_dim.png", "msdr_vs_sigma2_hidden_dim.png",
              "msdr_vs_sigma2_weight_decay.png", "msdr_vs_tau2.png"):
    assert os.path.getsize(os.path.join(runs["gaussian_mixture"], png)) > 1000, png
  # Distinct runs: (d_in 8, d_h 16) x {sigma2} x {wd} = 4, (8, 8) x 2 sigma2 = 2,
  # similarity 2 tau2 = 2.
  assert len(records) == 8
  for key in ("msdr", "train_accuracy", "fit", "nc1", "vci", "sigma2", "tau2", "weight_decay"):
    assert key in records[0], key
  line = summary["hidden_dim"]["d_hidden=16"]
  assert line["msdr_mean"][1] > line["msdr_mean"][0] > 0.9
  assert summary["similarity"]["x"] == [0.01, 4.0]
  assert set(summary["similarity"]) == {"x", "msdr_similar", "msdr_dissimilar"}
