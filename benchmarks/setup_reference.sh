#!/usr/bin/env bash
# A benchmark-only virtual environment, .venv-ref/, with nc_jax and the
# reference PyTorch library rhubarbwu/neural-collapse side by side, so that
# benchmarks/bench_metrics.py measures both in one run. Never a dependency of
# nc_jax: the library is not on PyPI and comes from its public repository.
#
#   bash benchmarks/setup_reference.sh [SOURCE]
#
# SOURCE: a local clone of the repository, or a git URL (default: GitHub).
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:-https://github.com/rhubarbwu/neural-collapse.git}
if [ ! -d "$src" ]; then
  # A clone from an earlier run is reused (git clone refuses a non-empty target).
  [ -d build/neural-collapse/.git ] || git clone -q "$src" build/neural-collapse
  src=build/neural-collapse
fi
python3 -m venv .venv-ref
.venv-ref/bin/python -m pip install -q --upgrade pip
# torch==2.13.0: the CPU build (a bare `torch` can pull a multi-GB CUDA build).
.venv-ref/bin/python -m pip install -q -r requirements.txt -e . "torch==${TORCH_VERSION:-2.13.0}" scipy
.venv-ref/bin/python -m pip install -q --no-deps -e "$src"
.venv-ref/bin/python -c "import neural_collapse, torch; print('reference library ready, torch', torch.__version__)"
