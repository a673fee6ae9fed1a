#!/usr/bin/env bash
# Sets up a virtual environment from nothing (if missing) and runs the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements.txt -e .
.venv/bin/python -m pytest tests "$@"
