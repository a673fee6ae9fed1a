#!/usr/bin/env bash
# The main job: sets up a virtual environment from nothing (if missing), then
# trains an MLP on scikit-learn digits (built in, no download) into the
# terminal phase, tracking neural collapse on train and test features at every
# layer. Outputs (metrics.jsonl, summary.json, collapse.png, ...) go to
# workdir/main; extra arguments are passed on to experiments/train.py (e.g.
# --config.num_epochs=30 --config.optimizer.learning_rate=0.05: the keys of
# nc_jax.train.default_config(), by group).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q -r requirements.txt -e .
.venv/bin/python experiments/train.py --config=configs/mlp_digits.py --workdir=workdir/main "$@"
