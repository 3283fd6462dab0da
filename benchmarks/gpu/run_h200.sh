#!/usr/bin/env bash
# THE device run for issue 17: deepgrad's CUDA backend on one NVIDIA H200, in one call.
#
# Run from the repository root on the device machine (CuPy 14 / cupy-cuda13x, PyTorch 2.11 CUDA,
# pytest, numba preinstalled; no network). Results go to $OUT (7 files):
#   env.txt          nvidia-smi, versions
#   gpu_tests.txt    (a) pytest tests/gpu: op/layer/optimiser parity grid vs PyTorch CUDA, the four
#                        benchmark models' training steps vs the CPU and PyTorch, device API tests
#   bench_gpu.txt/.json  (b) training-step times and ratios vs PyTorch CUDA eager, launch overhead
#   cifar_gpu.txt/.json  (c) a time-boxed ResNet-20 CIFAR-10 run (needs .gpu_data, see below)
#   summary.txt      one line per stage: exit status and seconds
# Every stage has its own time limit and a failing stage does not stop the later ones; the whole
# script stays under ~8.5 minutes (STAGE_* below). Before the call, HERE:
#   bash benchmarks/gpu/prepare_data.sh        # once: the CIFAR-10 subset into .gpu_data (carried)
# and call the device tool with:
#   command: bash benchmarks/gpu/run_h200.sh      carry: [".gpu_data"]      timeout_s: 570
# A rerun with what time is left can pick stages and tests: STAGES="tests" PYTEST_ARGS="-k parity".
# A dry run without a GPU (checks the scripts, not the GPU):
#   DEEPGRAD_GPU_DRY=1 PYTHON=/work/venv/bin/python STAGE_TESTS=900 bash benchmarks/gpu/run_h200.sh
set -u
OUT=${OUT:-$PWD/out_gpu}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1
export CUPY_CACHE_DIR=${CUPY_CACHE_DIR:-/tmp/cupy_kernel_cache}
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-8}   # the CPU reference runs of the model tests
STAGE_TESTS=${STAGE_TESTS:-250}
STAGE_BENCH=${STAGE_BENCH:-150}
STAGE_CIFAR=${STAGE_CIFAR:-110}
CIFAR_SECONDS=${CIFAR_SECONDS:-75}
STAGES=${STAGES:-"tests bench cifar"}      # a rerun may pick some: STAGES="bench cifar"
want() { case " $STAGES " in *" $1 "*) return 0;; esac; return 1; }
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"

stage() {   # stage NAME LIMIT_S LOGFILE COMMAND...
    local name=$1 limit=$2 log=$3
    shift 3
    local t0=$SECONDS
    echo "=== $name (limit ${limit}s) ===" | tee -a "$log"
    timeout --signal=INT --kill-after=10 "$limit" "$@" >> "$log" 2>&1
    local rc=$?
    local line="$name: exit $rc after $((SECONDS - t0))s$([ $rc = 124 ] && echo ' (time limit)')"
    echo "$line" | tee -a "$SUMMARY"
    tail -n 25 "$log"
}

{
    date -u
    nvidia-smi 2>&1 | head -20
    "$PY" - <<'EOF'
import platform, numpy
print("python", platform.python_version(), "numpy", numpy.__version__)
try:
    import cupy
    print("cupy", cupy.__version__, "cuda runtime", cupy.cuda.runtime.runtimeGetVersion(),
          "driver", cupy.cuda.runtime.driverGetVersion(), "devices", cupy.cuda.runtime.getDeviceCount())
except Exception as e:
    print("cupy unavailable:", e)
try:
    import torch
    print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())
except Exception as e:
    print("torch unavailable:", e)
import deepgrad
print("deepgrad cuda available:", deepgrad.cuda.is_available())
EOF
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

# (a) the parity grid, the model steps, the device API (pytest-timeout caps any one test)
TIMEOUT_OPT=""
"$PY" -c "import pytest_timeout" 2>/dev/null && TIMEOUT_OPT="--timeout=120"
want tests && stage tests "$STAGE_TESTS" "$OUT/gpu_tests.txt" \
    "$PY" -m pytest tests/gpu -q -p no:cacheprovider -rfEs --durations=12 $TIMEOUT_OPT ${PYTEST_ARGS:-}

# (b) speed against PyTorch CUDA eager
want bench && stage bench "$STAGE_BENCH" "$OUT/bench_gpu.txt.log" "$PY" benchmarks/gpu/bench_gpu.py --out "$OUT"
[ -f "$OUT/bench_gpu.txt" ] && cat "$OUT/bench_gpu.txt.log" >> "$OUT/bench_gpu.txt" && rm -f "$OUT/bench_gpu.txt.log"
[ -f "$OUT/bench_gpu.txt.log" ] && mv "$OUT/bench_gpu.txt.log" "$OUT/bench_gpu.txt"

# (c) a time-boxed CIFAR-10 ResNet-20 run, if the data travelled
if ! want cifar; then
    :
elif [ -d .gpu_data/cifar10 ]; then
    stage cifar "$STAGE_CIFAR" "$OUT/cifar_gpu.txt" \
        "$PY" benchmarks/gpu/train_cifar_gpu.py --data .gpu_data/cifar10 --seconds "$CIFAR_SECONDS" --out "$OUT"
else
    echo "cifar: skipped (no .gpu_data/cifar10: run benchmarks/gpu/prepare_data.sh and carry .gpu_data)" | tee -a "$SUMMARY"
fi
cat "$SUMMARY"
