#!/usr/bin/env bash
# The GPU path, checked in one command on a machine with an NVIDIA GPU and CuPy installed.
#
#   bash benchmarks/gpu_check.sh DATA_FOLDER [REPORT]
#
# DATA_FOLDER: a raw ImageNet-style folder (train/<wnid>/*.JPEG, val/<wnid>/*.JPEG), e.g.
# ../shared/data/imagenette-224. REPORT: the report file (default gpu_check_report.txt).
# Uses the CuPy (and, if present, the CUDA build of PyTorch) already installed; needs no network.
#
# Steps (each runs even when an earlier one failed; the report records every step's command,
# output, exit status and duration, and a summary at the end):
#   1. the CuPy variants of the tests              pytest -m gpu tests/
#   2. gradient checks on the GPU                  python -m alexnet.gradcheck --device cuda
#   3. one epoch of the recipe on a small subset   data prepare (10 classes x 60 + 10, S = 128),
#                                                   alexnet train --crop 112 --epochs 1 --device cuda
#   4. CPU against GPU, same weights and batch     benchmarks/compare_devices.py (strict FP32)
#   5. the GPU benchmark, FP32 then TF32           bench_layers.py --device cuda --tf32 off|on
# Exit status: 0 when every step passed, 1 when one failed, 2 when CuPy or the GPU is missing.
#
# GPU_CHECK_DEVICE=cpu runs the same steps on the CPU with tiny sizes: a check of this script
# itself on a machine without a GPU (step 1 then selects no test and reports exit 5).
set -u
DEVICE=${GPU_CHECK_DEVICE:-cuda}

if [ $# -lt 1 ] || [ ! -d "$1" ]; then
    echo "usage: bash benchmarks/gpu_check.sh DATA_FOLDER [REPORT]  (DATA_FOLDER: a raw image folder with train/ and val/)" >&2
    exit 2
fi
DATA=$(cd "$1" && pwd)
REPORT=${2:-gpu_check_report.txt}
REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python}
cd "$REPO" || exit 2
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" MPLBACKEND=Agg
: > "$REPORT" || exit 2
REPORT=$(cd "$(dirname "$REPORT")" && pwd)/$(basename "$REPORT")

log() { echo "$@" | tee -a "$REPORT"; }

log "# GPU check, $(date -u '+%Y-%m-%d %H:%M UTC'), $(hostname)"
log "repository: $REPO ($(git rev-parse --short HEAD 2>/dev/null || echo 'not a git checkout'))"
if command -v nvidia-smi > /dev/null; then
    log "$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1)"
else
    log "nvidia-smi: not found"
fi
if [ "$DEVICE" = cuda ] && ! "$PYTHON" -c "import nn, sys; nn.check_device('cuda'); import cupy; print('python', sys.version.split()[0], '| numpy', __import__('numpy').__version__, '| cupy', cupy.__version__, '| CUDA runtime', cupy.cuda.runtime.runtimeGetVersion(), '|', cupy.cuda.runtime.getDeviceProperties(0)['name'].decode())" >> "$REPORT" 2>&1; then
    log "FAILED: CuPy with a CUDA GPU is not usable here (see the line above); nothing else was run."
    echo "report: $REPORT" >&2
    exit 2
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
log "data: $DATA   scratch: $WORK   device: $DEVICE"
"$PYTHON" -c "import torch; print('torch', torch.__version__, '| cuda', torch.cuda.is_available())" >> "$REPORT" 2>&1 \
    || log "torch not importable: the benchmark runs without PyTorch columns"

SUMMARY=()
FAILED=0
step() {   # step NAME COMMAND...: run, record, keep going
    local name=$1; shift
    log ""
    log "## $name"
    log "\$ $*"
    local start=$SECONDS
    "$@" >> "$REPORT" 2>&1
    local status=$?
    local line="$name: $([ $status -eq 0 ] && echo pass || echo "FAIL (exit $status)"), $((SECONDS - start)) s"
    log "-> $line"
    SUMMARY+=("$line")
    [ $status -eq 0 ] || FAILED=1
}

TORCH_FLAG=()
"$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null || TORCH_FLAG=(--no-torch)
PER_CLASS=60; BENCH=(--batch 128 --crop 227 --reps 10 --warmup 3); RECIPE=(--batch 128 --crop 112 --reps 10 --warmup 3)
if [ "$DEVICE" = cpu ]; then      # the script's own dry run: tiny and quick
    PER_CLASS=4; BENCH=(--batch 4 --crop 67 --reps 1 --warmup 0 --layers conv2,pool1,step)
    RECIPE=(--batch 4 --crop 67 --reps 1 --warmup 0); TORCH_FLAG=(--no-torch)
fi

step "1. CuPy tests" "$PYTHON" -m pytest -q -m gpu -p no:cacheprovider tests/
step "2. gradient checks on $DEVICE" "$PYTHON" -m alexnet.gradcheck --device "$DEVICE"
step "3a. prepare a subset" "$PYTHON" -m data prepare "$DATA" "$WORK/subset" --num-classes 10 \
    --per-class "$PER_CLASS" --val-per-class 10 --size 128 --quiet
step "3b. one epoch of the recipe on $DEVICE" "$PYTHON" -m alexnet train --data "$WORK/subset" --crop 112 \
    --init kaiming --input-scale 64 --epochs 1 --device "$DEVICE" --out "$WORK/run" --quiet
step "4. CPU vs $DEVICE, same weights and batch" env CUPY_TF32=0 "$PYTHON" benchmarks/compare_devices.py \
    --against "$DEVICE" $([ "$DEVICE" = cpu ] && echo "--batch 2 --crop 67 --num-classes 10")
step "5a. benchmark on $DEVICE, FP32 (TF32 off): ${BENCH[*]}" "$PYTHON" benchmarks/bench_layers.py \
    --device "$DEVICE" --tf32 off "${BENCH[@]}" "${TORCH_FLAG[@]}" --json "$WORK/bench_fp32.json"
if [ "$DEVICE" = cuda ]; then
    step "5b. benchmark on cuda, TF32 on: ${BENCH[*]}" "$PYTHON" benchmarks/bench_layers.py \
        --device cuda --tf32 on "${BENCH[@]}" "${TORCH_FLAG[@]}" --json "$WORK/bench_tf32.json"
fi
step "5c. benchmark on $DEVICE, FP32, the recipe's shape: ${RECIPE[*]}" "$PYTHON" benchmarks/bench_layers.py \
    --device "$DEVICE" --tf32 off "${RECIPE[@]}" --layers step "${TORCH_FLAG[@]}"

log ""
log "## summary"
for line in "${SUMMARY[@]}"; do log "$line"; done
log "scratch files (subset, run, benchmark JSON) kept in $WORK"
echo "report: $REPORT" >&2
exit $FAILED
