#!/usr/bin/env bash
# The GPU-speed decision in one run on a CUDA machine, from the repository root:
#     OUT=<empty folder> bash scripts/gpu_check.sh [--cpu] [PART ...]
# Parts (default: all four, in this order), each its own process under a time limit, its
# output teed to $OUT/<part>.log and its figures to $OUT/<part>.json. A failing part does not
# stop the others; the exit status is 1 when any failed (onestep exits 3 on a FAIL verdict).
#   env            the GPU (nvidia-smi), torch and CUDA versions
#   onestep-paper  scripts/onestep.py at the paper's sizes: bf16, then fp32 without TF32;
#                  phases 2 and 1; eager, graphed and compiled variants, one step at a time
#   bench          scripts/bench.py at the paper's sizes: phases 1 and 2 for the plain recipe,
#                  the fast path, CUDA graphs and the extras (compile, phase 2's second D pass,
#                  fp16 VGG, compile+fp16 VGG), the fp16 VGG check, the checkpoint costs,
#                  the projected paper schedule (set-up included)
#   onestep-tiny   scripts/onestep.py at tiny sizes, deterministic and default arithmetic,
#                  fp32 and bf16, uncompiled: graphed = eager bit for bit
# --cpu: the same command lines on the CPU at the smallest sizes (preset micro), with
# torch.compile a no-op (TORCHDYNAMO_DISABLE): a dry run of this script (tests/test_bench.py).
# Nothing is downloaded: VGG weights are random; jsonschema is not needed.
set -o pipefail
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.." || exit 1
: "${OUT:?set OUT to a folder for the logs and JSON}"
mkdir -p "$OUT" || exit 1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# Compiled graphs are cached on disk, so the bench reuses what onestep-paper compiled.
export TORCHINDUCTOR_CACHE_DIR="${TORCHINDUCTOR_CACHE_DIR:-/tmp/rocksr-inductor}"
PY=${PYTHON:-python3}

if [ "${1:-}" = "--cpu" ]; then
    shift
    export TORCHDYNAMO_DISABLE=1
    DEVICE=(--device cpu --threads 2)
    PAPER=(--preset micro) TINY=(--preset micro) STEPS=(--steps 2 --free-steps 2)
    BENCH=(--iters 1 --repeats 1 --workers 1)
    LIMITS=(60 900 900 900)  # a shared 2-core machine can be slow
else
    DEVICE=(--device cuda)
    PAPER=(--preset paper) TINY=(--preset tiny) STEPS=()
    BENCH=(--iters 20 --repeats 2 --workers 8)
    LIMITS=(30 180 150 60)  # env, onestep-paper, bench, onestep-tiny: 7 min at most
fi
PARTS=("$@")
[ ${#PARTS[@]} -gt 0 ] || PARTS=(env onestep-paper bench onestep-tiny)

failed=()
begin=$SECONDS

part() {  # name, time limit in seconds, command...
    local name=$1 limit=$2 start=$SECONDS status
    shift 2
    echo "=== $name (limit $limit s): $*" | tee "$OUT/$name.log"
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee -a "$OUT/$name.log"
    status=$?
    echo "=== $name: exit $status after $((SECONDS - start)) s ($((SECONDS - begin)) s in all)" \
        | tee -a "$OUT/$name.log"
    [ "$status" -eq 0 ] || failed+=("$name (exit $status)")
}

for name in "${PARTS[@]}"; do
    case $name in
        env)
            part env "${LIMITS[0]}" bash -c '
                nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader \
                    || echo "no nvidia-smi"
                "$0" -c "import os, sys, torch
print(\"python\", sys.version.split()[0], \"torch\", torch.__version__, \"CUDA\",
      torch.version.cuda, \"cuDNN\", torch.backends.cudnn.version(), \"CPUs\", os.cpu_count())
print(\"device:\", torch.cuda.get_device_name() if torch.cuda.is_available() else \"none\")"
            ' "$PY" ;;
        onestep-paper)
            part onestep-paper "${LIMITS[1]}" "$PY" scripts/onestep.py "${DEVICE[@]}" \
                "${PAPER[@]}" --precision bf16 fp32 --phases 2 1 --compile on "${STEPS[@]}" \
                --json "$OUT/onestep-paper.json" ;;
        bench)
            part bench "${LIMITS[2]}" "$PY" scripts/bench.py "${DEVICE[@]}" "${PAPER[@]}" \
                --stages phase1 phase2 vgg checkpoint \
                --extras compile d-twice vgg16 compile+vgg16 "${BENCH[@]}" \
                --json "$OUT/bench.json" ;;
        onestep-tiny)
            part onestep-tiny "${LIMITS[3]}" "$PY" scripts/onestep.py "${DEVICE[@]}" \
                "${TINY[@]}" --precision fp32 bf16 --phases 2 1 \
                --modes deterministic default --compile off "${STEPS[@]}" \
                --json "$OUT/onestep-tiny.json" ;;
        *)
            echo "unknown part: $name (env, onestep-paper, bench, onestep-tiny)"
            failed+=("$name (unknown)") ;;
    esac
done

{
    echo "=== summary after $((SECONDS - begin)) s"
    for name in "${PARTS[@]}"; do cat "$OUT/$name.log"; done 2>/dev/null \
        | grep -E "^(verdict:|projected|plus phase|phase-2 checkpoint|  worst bias)"
    if [ ${#failed[@]} -gt 0 ]; then echo "FAILED: ${failed[*]}"; else echo "every part ran"; fi
} | tee "$OUT/summary.log"
[ ${#failed[@]} -eq 0 ]
