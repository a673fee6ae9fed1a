#!/usr/bin/env bash
# The device check: one prepared script for a session that is lent a GPU (the
# device tool: about 15 minutes of device time, one chip). From the repository
# root on the device machine:
#
#   bash benchmarks/prepare_gpu_carry.sh          # here, first: wheels + a data subset
#   run(command="bash benchmarks/gpu_check.sh", carry=["build/gpu_carry"], timeout_s=600)
#
# In order, each step under its own time limit, each step's log and exit code
# kept (a failing step does not stop the next):
#   1. tests      the GPU-relevant tests: sharded statistics, the tiled
#                 pairwise metrics at K = 2,000 and 10,000;
#   2. metrics    benchmarks/bench_metrics.py (the report vs a bare GEMM);
#   3. scale      benchmarks/bench_scale.py (the report against K up to 50k);
#   4. torch      benchmarks/bench_train_vs_torch.py, float32 and bfloat16;
#   5. resnet18   3 epochs of configs/resnet18_cifar10.py in bfloat16 on the
#                 carried CIFAR-10 JPEG subset, collapse tracked every epoch.
# The limits add up to 540 s, under the device tool's 600 s per command.
# Results go to $OUT (the device tool's folder) or benchmarks/results_gpu/:
# steps.txt (name, exit code, seconds), <step>.log, nvidia-smi.txt, and the
# benchmarks' own results files tagged "gpu".
#
# GPU_CHECK_SMOKE=1 runs every step in a tiny form on whatever device is here
# (the CPU in the test suite: tests/test_benchmarks.py), writing nothing under
# benchmarks/ except into $OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
smoke=${GPU_CHECK_SMOKE:-0}
out=${OUT:-benchmarks/results_gpu}
py=${PYTHON:-python}
carry=build/gpu_carry
mkdir -p "$out"
: > "$out/steps.txt"

if [ "$smoke" != 1 ] && [ -d "$carry/wheels" ]; then  # What the device image lacks.
  $py -m pip install -q --no-index --find-links "$carry/wheels" -r "$carry/wheels/needed.txt" \
    > "$out/install.log" 2>&1
  $py -m pip install -q --no-deps --no-build-isolation -e . >> "$out/install.log" 2>&1
fi
if [ "$smoke" != 1 ] && [ -d "$carry/data" ]; then
  export NC_JAX_DATA_DIR=${NC_JAX_DATA_DIR:-$carry/data}
fi
command -v nvidia-smi > /dev/null && nvidia-smi > "$out/nvidia-smi.txt" 2>&1

step() {  # step NAME LIMIT_SECONDS COMMAND...
  local name=$1 limit=$2 start rc
  shift 2
  start=$(date +%s)
  echo "== $name: $*"
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  rc=$?
  echo "$name rc=$rc $(( $(date +%s) - start ))s" | tee -a "$out/steps.txt"
  tail -n 3 "$out/$name.log"
}

if [ "$smoke" = 1 ]; then
  step tests 300 $py -m pytest -q -x -p no:cacheprovider tests/test_metrics_scale.py \
    -k "tiled_pairwise_equals_dense and 60"
  step metrics 300 $py benchmarks/bench_metrics.py --quick
  step scale 300 $py benchmarks/bench_scale.py --quick --per-class 2 --batch 512
  step torch 300 $py benchmarks/bench_train_vs_torch.py --cases mlp --steps 2 --repeats 1 \
    --dtypes float32,bfloat16
  step resnet18 300 $py experiments/train.py --config=configs/mlp_digits.py \
    --workdir="$out/train" --config.num_epochs=1 --config.model.compute_dtype=bfloat16 \
    --config.log.progress_bar=False
else
  write=(--write) tag=gpu
  step tests 90 $py -m pytest -q -p no:cacheprovider tests/test_streaming.py \
    tests/test_metrics_scale.py -k "sharded or tiled or k2000 or k10000"
  step metrics 90 $py benchmarks/bench_metrics.py "${write[@]}" --tag "$tag"
  step scale 150 $py benchmarks/bench_scale.py "${write[@]}" --tag "$tag" --timeout 60
  step torch 90 $py benchmarks/bench_train_vs_torch.py "${write[@]}" --tag "$tag" \
    --dtypes float32,bfloat16
  step resnet18 120 $py experiments/train.py --config=configs/resnet18_cifar10.py \
    --workdir="$out/resnet18" --config.data.name=cifar10_jpeg --config.num_epochs=3 \
    --config.evals.every=1 --config.log.progress_bar=False --config.model.compute_dtype=bfloat16
  cp benchmarks/results_*.json benchmarks/results_*.md "$out"/ 2> /dev/null
fi
echo "done: $(wc -l < "$out/steps.txt") steps, logs in $out"
