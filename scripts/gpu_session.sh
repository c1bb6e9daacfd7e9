#!/usr/bin/env bash
# The GPU checks of a session lent a device machine, as one command within its time budget.
#
#   bash scripts/gpu_session.sh            # on the device machine, from the repository root
#   bash scripts/gpu_session.sh --dry-run  # print the steps and their time limits, run nothing
#
# In order of value: the smoke test of pidkit_distill on CUDA (scripts/gpu_smoke.py), then the
# GPU rows of the benchmarks (train_step, the BROJA regulariser's training-step rows, BROJA on
# CUDA against the CPU, Gaussian PID). Each step runs under `timeout` with its own limit, cut
# to what is left of TOTAL_S, so the whole run ends inside one device call and leaves time to
# rerun a failed step. The device image has torch, numpy, scipy, scikit-learn, matplotlib,
# tqdm and threadpoolctl but not pidkit: the checkout is put on PYTHONPATH (both packages are
# pure Python). The result files the steps write (benchmarks/results/*cuda*) and the log are
# packed into $OUT/gpu_results.tgz and $OUT/gpu_session.log (the device tool brings back at
# most 8 files); unpack the archive at the repository root, then read and commit the tables.
set -u

TOTAL_S=${TOTAL_S:-500}
PYTHON=${PYTHON:-python3}
OUT=${OUT:-/tmp/gpu_session}
STEPS=(
    "150 scripts/gpu_smoke.py --device cuda --out benchmarks/results/gpu_smoke_cuda.json"
    "150 benchmarks/train_step.py --device cuda"
    "90 benchmarks/broja_cuda.py --training"
    "150 benchmarks/broja_cuda.py"
    "90 benchmarks/gaussian.py --device cuda"
)

if [[ "${1:-}" == "--dry-run" ]]; then
    for step in "${STEPS[@]}"; do
        read -r limit script args <<<"$step"
        echo "${limit}s ${PYTHON} ${script} ${args}"
    done
    exit 0
fi

mkdir -p "$OUT"
LOG="$OUT/gpu_session.log"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
start=$SECONDS
failed=0
{
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
    "$PYTHON" -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
} 2>&1 | tee "$LOG"
for step in "${STEPS[@]}"; do
    read -r limit script args <<<"$step"
    left=$((TOTAL_S - (SECONDS - start)))
    if ((left < 20)); then
        echo "=== skipped (time budget spent): ${script} ${args}" | tee -a "$LOG"
        failed=1
        continue
    fi
    ((limit > left)) && limit=$left
    echo "=== ${script} ${args} (limit ${limit} s)" | tee -a "$LOG"
    # shellcheck disable=SC2086  # args are words by design
    timeout "$limit" "$PYTHON" "$script" $args 2>&1 | tee -a "$LOG"
    rc=${PIPESTATUS[0]}
    echo "=== rc ${rc} after $((SECONDS - start)) s" | tee -a "$LOG"
    ((rc != 0)) && failed=1
done
tar czf "$OUT/gpu_results.tgz" benchmarks/results/*cuda* 2>>"$LOG"
exit "$failed"
