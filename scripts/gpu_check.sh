#!/usr/bin/env bash
# The GPU-speed decision in one run on a CUDA machine, from the repository root:
#     OUT=<empty folder> bash scripts/gpu_check.sh [--cpu] [PART ...]
# Parts (default: all), each its own process under a time limit, its output in
# $OUT/<part>.log and its figures in $OUT/<part>.json. The one-step parts are not timed, so
# they run side by side (their compilations overlap); then the bench runs alone. A failing
# part does not stop the others; the exit status is 1 when any failed (onestep.py exits 3 on
# a FAIL verdict). $OUT/summary.log has the verdicts and projections.
#   env                 the GPU (nvidia-smi), torch and CUDA versions
#   onestep-paper-bf16  scripts/onestep.py at the paper's sizes in bf16, phases 2 and 1:
#                       eager, graphed and compiled variants, one step at a time
#   onestep-paper-fp32  the same in fp32 without TF32
#   onestep-tiny        tiny sizes, deterministic and default arithmetic, fp32 and bf16,
#                       uncompiled: graphed = eager bit for bit
#   bench               scripts/bench.py at the paper's sizes: the fp16 VGG check, the
#                       checkpoint costs, phases 1 and 2 for the plain recipe, the fast path,
#                       CUDA graphs and the extras (compile, phase 2's second D pass, fp16
#                       VGG, compile+fp16 VGG), the projected paper schedule (set-up included)
#   bench3d             scripts/bench.py --preset paper3d: the 3D runs' training (the
#                       authors' 64^3 HR cubes, batch 16) as the fast path and CUDA graphs,
#                       with peak GPU memory and the projected 3D schedule
# --cpu: the same command lines on the CPU at the smallest sizes (presets micro, tiny3d), with
# torch.compile a no-op (TORCHDYNAMO_DISABLE): a dry run of this script (tests/test_bench.py).
# Nothing is downloaded: VGG weights are random; jsonschema is not needed.
set -o pipefail
export PYTHONUNBUFFERED=1
cd "$(dirname "$0")/.." || exit 1
: "${OUT:?set OUT to a folder for the logs and JSON}"
mkdir -p "$OUT" || exit 1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# Compiled graphs are cached on disk: the bench reuses what onestep-paper-bf16 compiled.
export TORCHINDUCTOR_CACHE_DIR="${TORCHINDUCTOR_CACHE_DIR:-/tmp/rocksr-inductor}"
PY=${PYTHON:-python3}

if [ "${1:-}" = "--cpu" ]; then
    shift
    export TORCHDYNAMO_DISABLE=1
    DEVICE=(--device cpu --threads 1)
    PAPER=(--preset micro) TINY=(--preset micro) STEPS=(--steps 2 --free-steps 2)
    VOLUMES=(--preset tiny3d)
    BENCH=(--iters 1 --repeats 1 --workers 1)
    ONESTEP_LIMIT=900 BENCH_LIMIT=900  # a shared 2-core machine can be slow
else
    DEVICE=(--device cuda)
    PAPER=(--preset paper) TINY=(--preset tiny) STEPS=()
    VOLUMES=(--preset paper3d)
    BENCH=(--iters 20 --repeats 2 --workers 8)
    ONESTEP_LIMIT=200 BENCH_LIMIT=200  # 9 minutes at most in all, bench3d's 120 s included
fi
ALL=(env onestep-paper-bf16 onestep-paper-fp32 onestep-tiny bench bench3d)
PARTS=("$@")
[ ${#PARTS[@]} -gt 0 ] || PARTS=("${ALL[@]}")
for name in "${PARTS[@]}"; do
    [[ " ${ALL[*]} " == *" $name "* ]] || { echo "unknown part: $name (${ALL[*]})"; exit 2; }
done
wanted() { [[ " ${PARTS[*]} " == *" $1 "* ]]; }
begin=$SECONDS

part() {  # name, time limit in seconds, command...: the log in $OUT, the status beside it
    local name=$1 limit=$2 start=$SECONDS status
    shift 2
    echo "=== $name (limit $limit s): $*" > "$OUT/$name.log"
    timeout --kill-after=10 "$limit" "$@" >> "$OUT/$name.log" 2>&1
    status=$?
    echo "=== $name: exit $status after $((SECONDS - start)) s ($((SECONDS - begin)) s in all)" \
        >> "$OUT/$name.log"
    echo "$status" > "$OUT/$name.status"
}

if wanted env; then
    part env 30 bash -c '
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader \
            || echo "no nvidia-smi"
        "$0" -c "import os, sys, torch
print(\"python\", sys.version.split()[0], \"torch\", torch.__version__, \"CUDA\",
      torch.version.cuda, \"cuDNN\", torch.backends.cudnn.version(), \"CPUs\", os.cpu_count())
print(\"device:\", torch.cuda.get_device_name() if torch.cuda.is_available() else \"none\")"
    ' "$PY"
    cat "$OUT/env.log"
fi

onestep=()
for precision in bf16 fp32; do
    if wanted "onestep-paper-$precision"; then
        part "onestep-paper-$precision" "$ONESTEP_LIMIT" "$PY" scripts/onestep.py \
            "${DEVICE[@]}" "${PAPER[@]}" --precision "$precision" --phases 2 1 --compile on \
            "${STEPS[@]}" --json "$OUT/onestep-paper-$precision.json" &
        onestep+=("onestep-paper-$precision")
    fi
done
if wanted onestep-tiny; then
    part onestep-tiny "$ONESTEP_LIMIT" "$PY" scripts/onestep.py "${DEVICE[@]}" "${TINY[@]}" \
        --precision fp32 bf16 --phases 2 1 --modes deterministic default --compile off \
        "${STEPS[@]}" --json "$OUT/onestep-tiny.json" &
    onestep+=(onestep-tiny)
fi
wait
for name in "${onestep[@]}"; do cat "$OUT/$name.log"; done

if wanted bench; then
    part bench "$BENCH_LIMIT" "$PY" scripts/bench.py "${DEVICE[@]}" "${PAPER[@]}" \
        --stages vgg checkpoint phase1 phase2 \
        --extras compile d-twice vgg16 compile+vgg16 "${BENCH[@]}" --json "$OUT/bench.json"
    cat "$OUT/bench.log"
fi

if wanted bench3d; then
    part bench3d "$((BENCH_LIMIT * 3 / 5))" "$PY" scripts/bench.py "${DEVICE[@]}" "${VOLUMES[@]}" \
        --stages phase1 phase2 "${BENCH[@]}" --json "$OUT/bench3d.json"
    cat "$OUT/bench3d.log"
fi

failed=()
for name in "${PARTS[@]}"; do
    status=$(cat "$OUT/$name.status" 2>/dev/null || echo none)
    [ "$status" = 0 ] || failed+=("$name (exit $status)")
done
{
    echo "=== summary after $((SECONDS - begin)) s"
    for name in "${PARTS[@]}"; do cat "$OUT/$name.log"; done 2>/dev/null \
        | grep -E "^(=== .*: exit|verdict:|projected|plus phase|phase-2 checkpoint|  worst bias)"
    if [ ${#failed[@]} -gt 0 ]; then echo "FAILED: ${failed[*]}"; else echo "every part ran"; fi
} | tee "$OUT/summary.log"
[ ${#failed[@]} -eq 0 ]
