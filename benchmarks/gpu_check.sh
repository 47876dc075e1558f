#!/usr/bin/env bash
# The GPU path, checked in one command on a machine with an NVIDIA GPU and CuPy installed.
#
#   bash benchmarks/gpu_check.sh --quick [DATA_FOLDER] [REPORT]     # at most 10 minutes: run this first
#   bash benchmarks/gpu_check.sh DATA_FOLDER [REPORT]               # the full check (longer)
#
# DATA_FOLDER: a raw ImageNet-style folder (train/<wnid>/*.JPEG, val/<wnid>/*.JPEG), e.g.
# ../shared/data/imagenette-224; with --quick it may be left out (or given as "synthetic"): a folder
# of random JPEGs is made in the scratch folder. REPORT: the one report file (default
# gpu_check_report.txt, or gpu_check_quick_report.txt with --quick).
# Assumes only what a GPU machine has preinstalled: CuPy, PyTorch (optional: the cuDNN columns),
# mpi4py (unused here), and this repository's own dependencies; no network, no pip.
# CuPy's compiled kernels go to $CUPY_CACHE_DIR (default ~/.cache/alexnet-from-scratch/cupy), so a
# second run does not compile them again.
#
# --quick, in priority order (each step has a time limit; the report records every step's
# command, output, status and duration, then a summary; a step past the total budget is skipped):
#   0. CuPy version and card                        (the header)
#   1. the CuPy variants of the tests               pytest -m gpu tests/
#   2. gradient checks on the GPU                   python -m nn.gradcheck --device cuda
#   3. CPU against GPU, same weights and batch      benchmarks/compare_devices.py (strict FP32)
#   4. one tiny epoch, resume, evaluate, predict    data prepare + alexnet train/evaluate/predict
#   5. one full-size step at batch 128, crop 227    benchmarks/gpu_step.py (host time against device time)
#   6. the per-layer benchmark against cuDNN, FP32  bench_layers.py --device cuda --tf32 off
# The full check: 1, alexnet.gradcheck, one epoch of the recipe on a 10-class subset, 3, and the
# benchmark in FP32 (and TF32, whose rows compare ours in FP32 with cuDNN in TF32: see bench_layers).
# Exit status: 0 when every step that ran passed, 1 when one failed, 2 when CuPy or the GPU is missing.
#
# GPU_CHECK_DEVICE=stand-in runs --quick under the CuPy stand-in (tests/fake_cupy: the CPU imitating
# CuPy 14) where the real CuPy does not import: every step runs at tiny sizes, and the GPU-only parts
# (timings, the comparison with PyTorch) are skipped with the reason. GPU_CHECK_DEVICE=cpu runs the
# full check's steps on the CPU with tiny sizes (a check of this script itself).
# GPU_CHECK_ONLY="3 4" runs only the --quick steps named (the header always runs).
set -u
DEVICE=${GPU_CHECK_DEVICE:-cuda}
QUICK=0
if [ "${1:-}" = --quick ]; then QUICK=1; shift; fi
REPO=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python}

DATA=${1:-synthetic}
if [ "$DATA" != synthetic ] && [ ! -d "$DATA" ]; then
    echo "usage: bash benchmarks/gpu_check.sh [--quick] DATA_FOLDER [REPORT]  (DATA_FOLDER: a raw image folder with train/ and val/; optional with --quick)" >&2
    exit 2
fi
if [ "$QUICK" = 0 ] && [ "$DATA" = synthetic ]; then
    echo "gpu_check.sh: the full check needs a DATA_FOLDER of real photographs (or use --quick)" >&2
    exit 2
fi
[ "$DATA" = synthetic ] || DATA=$(cd "$DATA" && pwd)
REPORT=${2:-$([ "$QUICK" = 1 ] && echo gpu_check_quick_report.txt || echo gpu_check_report.txt)}
: > "$REPORT" || exit 2
REPORT=$(cd "$(dirname "$REPORT")" && pwd)/$(basename "$REPORT")
cd "$REPO" || exit 2
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}" MPLBACKEND=Agg
export CUPY_CACHE_DIR=${CUPY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/alexnet-from-scratch/cupy}
mkdir -p "$CUPY_CACHE_DIR"

log() { echo "$@" | tee -a "$REPORT"; }

log "# GPU check$([ "$QUICK" = 1 ] && echo ' (--quick)'), $(date -u '+%Y-%m-%d %H:%M UTC'), $(hostname)"
log "repository: $REPO ($(git rev-parse --short HEAD 2>/dev/null || echo 'not a git checkout'))"
# Which CuPy "import cupy" finds: 0 the real one, 1 the stand-in (already on PYTHONPATH), 2 none.
CUPY_FOUND=$("$PYTHON" -c "import cupy; print(1 if getattr(cupy, '_IS_STAND_IN', False) else 0)" 2> /dev/null || echo 2)
if [ "$DEVICE" = cuda ] && [ "$CUPY_FOUND" = 1 ]; then
    DEVICE=stand-in
fi
if [ "$DEVICE" = stand-in ]; then
    if [ "$CUPY_FOUND" = 0 ]; then
        log "GPU_CHECK_DEVICE=stand-in, but the real CuPy imports here: it is used (the real CuPy always wins)"
        DEVICE=cuda
    else
        [ "$CUPY_FOUND" = 1 ] || export PYTHONPATH="$REPO/tests/fake_cupy:$PYTHONPATH"
        log "device: the CuPy stand-in (tests/fake_cupy, on the CPU): GPU-only steps are skipped with the reason"
    fi
fi
if command -v nvidia-smi > /dev/null; then
    log "$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1)"
else
    log "nvidia-smi: not found"
fi
CUDA_DEVICE=$([ "$DEVICE" = cpu ] && echo cpu || echo cuda)
if [ "$CUDA_DEVICE" = cuda ] && ! "$PYTHON" -c "import nn, sys; nn.check_device('cuda'); import cupy; print('python', sys.version.split()[0], '| numpy', __import__('numpy').__version__, '| cupy', cupy.__version__, '| CUDA runtime', cupy.cuda.runtime.runtimeGetVersion(), '|', cupy.cuda.runtime.getDeviceProperties(0)['name'].decode())" >> "$REPORT" 2>&1; then
    log "FAILED: CuPy with a CUDA GPU is not usable here (see the line above); nothing else was run."
    echo "report: $REPORT" >&2
    exit 2
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
log "data: $DATA   scratch: $WORK   device: $DEVICE   CUPY_CACHE_DIR: $CUPY_CACHE_DIR ($(du -sh "$CUPY_CACHE_DIR" 2> /dev/null | cut -f1) before)"
"$PYTHON" -c "import torch; print('torch', torch.__version__, '| cuda', torch.cuda.is_available(), '| cudnn', torch.backends.cudnn.version())" >> "$REPORT" 2>&1 \
    || log "torch not importable: the benchmark runs without PyTorch columns"

SUMMARY=()
FAILED=0
BUDGET=${GPU_CHECK_BUDGET:-570}   # seconds from the start to the end of the last --quick step (then 10 min at most)
step() {   # step NAME LIMIT_S COMMAND...: run with a time limit, record, keep going
    local name=$1 limit=$2; shift 2
    log ""
    log "## $name"
    if [ "$QUICK" = 1 ]; then   # no step may run past the budget: its limit is what is left
        if [ $((SECONDS + 10)) -gt "$BUDGET" ]; then
            log "-> skipped: the check's time budget (${BUDGET} s) is spent"
            SUMMARY+=("$name: skipped (time budget)")
            return
        fi
        [ "$limit" -le $((BUDGET - SECONDS)) ] || limit=$((BUDGET - SECONDS))
    fi
    log "\$ $*"
    local start=$SECONDS
    timeout -k 10 "$limit" "$@" >> "$REPORT" 2>&1
    local status=$?
    local result
    if [ $status -eq 0 ]; then result=pass; elif [ $status -eq 124 ] || [ $status -eq 137 ]; then result="FAIL (past its ${limit} s limit)"; else result="FAIL (exit $status)"; fi
    local line="$name: $result, $((SECONDS - start)) s"
    log "-> $line"
    SUMMARY+=("$line")
    [ $status -eq 0 ] || FAILED=1
}
skip() {   # skip NAME REASON
    log ""
    log "## $1"
    log "-> skipped: $2"
    SUMMARY+=("$1: skipped ($2)")
}
wanted() { [ -z "${GPU_CHECK_ONLY:-}" ] || [[ " $GPU_CHECK_ONLY " == *" $1 "* ]]; }

HAVE_TORCH_CUDA=0
"$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2> /dev/null && HAVE_TORCH_CUDA=1

if [ "$QUICK" = 1 ]; then
    if [ "$DEVICE" = stand-in ]; then     # tiny sizes: the CPU computes everything
        CMP=(--batch 2 --crop 67 --num-classes 10); SYN=(3 4 2); S=72
        TRAIN=(--crop 67 --width 0.25 -b 4); STEP=(--batch 8 --crop 67 --steps 1 --warmup 1)
    else
        CMP=(--batch 8 --crop 227); SYN=(10 24 6); S=128
        TRAIN=(--crop 112 --init kaiming --input-scale 64 -b 32); STEP=(--batch 128 --crop 227 --steps 10 --warmup 3)
    fi
    wanted 1 && step "1. CuPy tests" 180 "$PYTHON" -m pytest -q -m gpu -p no:cacheprovider tests/
    wanted 2 && step "2. gradient checks on cuda" 90 "$PYTHON" -m nn.gradcheck --device cuda
    wanted 3 && step "3. CPU vs cuda, same weights and batch (strict FP32)" 60 env CUPY_TF32=0 \
        "$PYTHON" benchmarks/compare_devices.py --against cuda "${CMP[@]}"
    if wanted 4; then
        if [ "$DATA" = synthetic ]; then
            step "4a. a synthetic image folder (${SYN[0]} classes x ${SYN[1]} + ${SYN[2]} random JPEGs)" 60 \
                "$PYTHON" -c "import sys; from PIL import Image; import numpy as np; from pathlib import Path
c, t, v = map(int, sys.argv[2:5]); rng = np.random.default_rng(0)
for split, n in (('train', t), ('val', v)):
    for k in range(c):
        d = Path(sys.argv[1], split, f'n{k + 1:08d}'); d.mkdir(parents=True, exist_ok=True)
        for i in range(n): Image.fromarray(rng.integers(0, 256, (144, 160, 3), dtype=np.uint8)).save(d / f'{i}.JPEG')" \
                "$WORK/raw" "${SYN[@]}"
            SRC=$WORK/raw
        else
            SRC=$DATA
        fi
        step "4b. prepare a subset (S = $S)" 120 "$PYTHON" -m data prepare "$SRC" "$WORK/subset" --num-classes "${SYN[0]}" \
            --per-class "${SYN[1]}" --val-per-class "${SYN[2]}" --size "$S" --quiet
        step "4c. one epoch on cuda" 120 "$PYTHON" -m alexnet train --data "$WORK/subset" "${TRAIN[@]}" --epochs 1 \
            --device cuda --out "$WORK/run" --quiet
        step "4d. resume to a second epoch" 90 "$PYTHON" -m alexnet train --resume "$WORK/run/checkpoint.npz" \
            --out "$WORK/run" --epochs 2 --device cuda --quiet
        step "4e. evaluate on cuda" 60 "$PYTHON" -m alexnet evaluate --checkpoint "$WORK/run/best.npz" --device cuda --quiet
        IMAGE=$(find "$SRC/val" -name '*.JPEG' 2> /dev/null | sort | head -1)
        step "4f. predict on cuda" 60 "$PYTHON" -m alexnet predict --checkpoint "$WORK/run/best.npz" "$IMAGE" --device cuda
    fi
    wanted 5 && step "5. one training step: ${STEP[*]}" 120 "$PYTHON" benchmarks/gpu_step.py "${STEP[@]}"
    if wanted 6; then
        if [ "$DEVICE" = stand-in ]; then
            skip "6. per-layer benchmark against PyTorch+cuDNN (FP32)" "the CuPy stand-in has no device time, and PyTorch cannot run on it"
        else
            TORCH_FLAG=(); [ "$HAVE_TORCH_CUDA" = 1 ] || TORCH_FLAG=(--no-torch)
            step "6. per-layer benchmark against PyTorch+cuDNN, FP32 (TF32 off)" 150 "$PYTHON" benchmarks/bench_layers.py \
                --device cuda --tf32 off --batch 128 --crop 227 --reps 5 --warmup 2 "${TORCH_FLAG[@]}" --json "$WORK/bench_fp32.json"
        fi
    fi
else
    TORCH_FLAG=(); [ "$HAVE_TORCH_CUDA" = 1 ] || TORCH_FLAG=(--no-torch)
    PER_CLASS=60; BENCH=(--batch 128 --crop 227 --reps 10 --warmup 3); RECIPE=(--batch 128 --crop 112 --reps 10 --warmup 3)
    if [ "$DEVICE" = cpu ]; then      # the script's own dry run: tiny and quick
        PER_CLASS=4; BENCH=(--batch 4 --crop 67 --reps 1 --warmup 0 --layers conv2,pool1,step)
        RECIPE=(--batch 4 --crop 67 --reps 1 --warmup 0); TORCH_FLAG=(--no-torch)
    fi
    step "1. CuPy tests" 3600 "$PYTHON" -m pytest -q -m gpu -p no:cacheprovider tests/
    step "2. gradient checks on $DEVICE" 3600 "$PYTHON" -m alexnet.gradcheck --device "$DEVICE"
    step "3a. prepare a subset" 3600 "$PYTHON" -m data prepare "$DATA" "$WORK/subset" --num-classes 10 \
        --per-class "$PER_CLASS" --val-per-class 10 --size 128 --quiet
    step "3b. one epoch of the recipe on $DEVICE" 3600 "$PYTHON" -m alexnet train --data "$WORK/subset" --crop 112 \
        --init kaiming --input-scale 64 --epochs 1 --device "$DEVICE" --out "$WORK/run" --quiet
    step "4. CPU vs $DEVICE, same weights and batch" 3600 env CUPY_TF32=0 "$PYTHON" benchmarks/compare_devices.py \
        --against "$DEVICE" $([ "$DEVICE" = cpu ] && echo "--batch 2 --crop 67 --num-classes 10")
    step "5a. benchmark on $DEVICE, FP32 (TF32 off): ${BENCH[*]}" 3600 "$PYTHON" benchmarks/bench_layers.py \
        --device "$DEVICE" --tf32 off "${BENCH[@]}" "${TORCH_FLAG[@]}" --json "$WORK/bench_fp32.json"
    if [ "$DEVICE" = cuda ]; then
        step "5b. benchmark on cuda, TF32 allowed (our convolutions stay FP32): ${BENCH[*]}" 3600 "$PYTHON" benchmarks/bench_layers.py \
            --device cuda --tf32 on "${BENCH[@]}" "${TORCH_FLAG[@]}" --json "$WORK/bench_tf32.json"
    fi
    step "5c. benchmark on $DEVICE, FP32, the recipe's shape: ${RECIPE[*]}" 3600 "$PYTHON" benchmarks/bench_layers.py \
        --device "$DEVICE" --tf32 off "${RECIPE[@]}" --layers step "${TORCH_FLAG[@]}"
fi

log ""
log "## summary ($SECONDS s in all)"
for line in "${SUMMARY[@]}"; do log "$line"; done
log "CUPY_CACHE_DIR $CUPY_CACHE_DIR: $(du -sh "$CUPY_CACHE_DIR" 2> /dev/null | cut -f1) after"
log "scratch files (subset, run, benchmark JSON) kept in $WORK"
echo "report: $REPORT" >&2
exit $FAILED
