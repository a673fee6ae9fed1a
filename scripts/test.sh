#!/usr/bin/env bash
# Sets up a virtual environment from nothing (if missing) and runs the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements.txt -e .
# Two worker processes (pytest-xdist), each test file in one of them (its
# compiled programs reused within the file); NC_JAX_TEST_WORKERS=0 runs in
# this process.
.venv/bin/python -m pytest tests -n "${NC_JAX_TEST_WORKERS:-2}" --dist loadfile "$@"
