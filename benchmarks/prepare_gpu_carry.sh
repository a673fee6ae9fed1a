#!/usr/bin/env bash
# What benchmarks/gpu_check.sh needs on a device machine that this checkout does
# not carry by itself, in build/gpu_carry/ (git-ignored; pass it as the device
# tool's `carry`, 64 MiB at most):
#   wheels/  the Python packages the device image lacks (its README: jax, flax,
#            optax, orbax, chex and torch are there; ml_collections,
#            tensorboardX and grain are not), downloaded here from PyPI without
#            their dependencies, and needed.txt naming them;
#   data/    a class-balanced subset of ../shared/data/cifar10_jpeg (200
#            training and 100 test images per class), the folder layout the
#            loader reads (NC_JAX_DATA_DIR points there on the device).
set -euo pipefail
cd "$(dirname "$0")/.."
carry=build/gpu_carry
rm -rf "$carry" && mkdir -p "$carry/wheels" "$carry/data/cifar10_jpeg"
printf '%s\n' ml-collections tensorboardX grain array-record mnist1d > "$carry/wheels/needed.txt"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
  -d "$carry/wheels" -r "$carry/wheels/needed.txt"
python3 - "${NC_JAX_DATA_DIR:-../shared/data}/cifar10_jpeg" "$carry/data/cifar10_jpeg" <<'PY'
import pathlib, shutil, sys
src, dst = map(pathlib.Path, sys.argv[1:])
for split, n in (('train', 200), ('test', 100)):
  for class_dir in sorted((src / split).iterdir()):
    (dst / split / class_dir.name).mkdir(parents=True, exist_ok=True)
    for f in sorted(class_dir.iterdir())[:n]:
      shutil.copy(f, dst / split / class_dir.name / f.name)
PY
du -sh "$carry" "$carry/wheels" "$carry/data"
