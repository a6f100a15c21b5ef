#!/usr/bin/env bash
# TRM checks for a lent CUDA machine (issue 25), in one run:
#   1. benchmarks/trm_step.py at the paper size (D=512) on CUDA with bf16 and torch.compile, batch 768: our fast
#      path beside our plain reference (and the official model code with OFFICIAL=PATH), interleaved;
#   2. a Sudoku-Extreme-sized training run (`reasonlab trm train`: TRM-MLP, D=512, T=3, n=6, N_sup=16,
#      batch 768, bf16, compile) for MINUTES of wall time, with a line every PROGRESS_SECONDS (60) giving the
#      step, samples/s, training exact accuracy and the last validation accuracy; then the test accuracy of the
#      checkpoint chosen on validation.
#
# usage: benchmarks/trm_gpu_check.sh MINUTES OUT [DATA]
#   MINUTES  training time, wall clock, evaluation excluded (fractions allowed: 0.5)
#   OUT      folder for the reports: gpu.txt, step.jsonl, train.log, progress.txt and the run itself (trm-gpu/)
#   DATA     folder holding Sudoku-Extreme's train.csv and test.csv (HF sapientinc/sudoku-extreme): the paper's
#            `sudoku-extreme` preset on the real data. Without it, the same model on generated 9x9 puzzles
#            (28 givens, 1000 training puzzles): the same shapes and cost per step, easier puzzles.
# Without CUDA it runs a CPU fallback that only checks the script: the `cpu` preset (float32, no compile,
# one thread) and a batch-2 step benchmark.
# PARTS="step train" (default) runs both; EVAL_EVERY (500 optimizer steps), TEST_SIZE (2000 puzzles of DATA's
# test.csv; the preset's 423k take long), OFFICIAL (a TinyRecursiveModels checkout for part 1), PYTHON.
# Exits non-zero when a part fails or the run wrote no summary.
set -uo pipefail
usage="usage: benchmarks/trm_gpu_check.sh MINUTES OUT [DATA]"
MINUTES=${1:?$usage}
OUT=$(realpath -m "${2:?$usage}")
DATA=${3:+$(realpath "$3")}
cd "$(dirname "$0")/.."  # the repository root
PY=${PYTHON:-python3}
PARTS=${PARTS:-step train}
EVAL_EVERY=${EVAL_EVERY:-500}
PROGRESS_SECONDS=${PROGRESS_SECONDS:-60}
SECONDS_BUDGET=$(awk -v m="$MINUTES" 'BEGIN { if (m + 0 <= 0) exit 1; printf "%d", m * 60 }') \
    || { echo "MINUTES must be a positive number, got '$MINUTES'" >&2; exit 2; }
if [ -n "$DATA" ] && ! { [ -f "$DATA/train.csv" ] && [ -f "$DATA/test.csv" ]; }; then
    echo "DATA $DATA must hold train.csv and test.csv" >&2; exit 2
fi
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
CUDA=$($PY -c "import torch; print(int(torch.cuda.is_available()))") || exit 1
failed=0

{ if [ "$CUDA" = 1 ]; then nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  else echo "no CUDA device: CPU fallback (checks the script, measures nothing)"; fi
  $PY -c "import torch; print('torch', torch.__version__)"
} 2>&1 | tee "$OUT/gpu.txt"

if [[ " $PARTS " == *" step "* ]]; then
    echo "== 1. one supervision step: ours (fast), ours (reference)${OFFICIAL:+, official}"
    if [ "$CUDA" = 1 ]; then
        step_args=(--device cuda --sizes paper --models trm-mlp trm-att --batch 768 --bf16 --compile
                   --warmup 3 --repeats 5 --steps 5)
    else
        step_args=(--sizes cpu --models trm-mlp --batch 2 --steps 1 --threads 1)
    fi
    timeout "${STEP_TIMEOUT:-900}" $PY benchmarks/trm_step.py "${step_args[@]}" --reference \
        ${OFFICIAL:+--official "$OFFICIAL"} 2>&1 | tee "$OUT/step.jsonl"
    [ "${PIPESTATUS[0]}" = 0 ] || { echo "part 1 failed" >&2; failed=1; }
fi
[[ " $PARTS " == *" train "* ]] || exit "$failed"

echo "== 2. training for $MINUTES min ($SECONDS_BUDGET s) of wall time"
if [ "$CUDA" = 1 ] && [ -n "$DATA" ]; then
    train_args=(--preset sudoku-extreme --data-path "$DATA/train.csv" --test-path "$DATA/test.csv"
                --set "test_size=${TEST_SIZE:-2000}")
elif [ "$CUDA" = 1 ]; then
    # TRMTrainConfig's defaults are the sudoku-extreme preset's recipe with the attention mixer
    train_args=(--preset default --set mixer=mlp)
else
    train_args=(--preset cpu --set budget_clock=wall --set threads=1 --set test_size=100 --set val_size=50)
    EVAL_EVERY=${EVAL_EVERY_CPU:-20}
fi
if [ "$CUDA" = 1 ]; then
    train_args+=(--set device=cuda --set bf16=true --set compile=true --set max_steps=1000000000)
fi
train_args+=(--time-budget-s "$SECONDS_BUDGET" --eval-every "$EVAL_EVERY" --set progress=false
             --name trm-gpu --out "$OUT")
RUN="$OUT/trm-gpu"

# progress every PROGRESS_SECONDS from the run's metrics: step, samples/s, training and validation accuracy
monitor() {
    while sleep "$PROGRESS_SECONDS"; do
        $PY - "$RUN" <<'PYEOF' 2>/dev/null | tee -a "$OUT/progress.txt"
import sys
from pathlib import Path
from reasonlab.runs import Run

run = Path(sys.argv[1])
if (run / "config.yaml").is_file():
    records = Run.open(run).metrics()
    train = [r for r in records if "loss" in r]
    val = [r for r in records if "val_exact" in r]
    if train:
        last = train[-1]
        batch = Run.open(run).config()["batch_size"]
        rate = last["step"] * batch / max(last["train_seconds"], 1e-9)
        seen = f"val exact {val[-1]['val_exact']:.3f} at step {val[-1]['step']}" if val else "no validation yet"
        print(f"progress: step {last['step']}, {rate:.0f} samples/s, loss {last['loss']:.3f}, "
              f"train exact {last['exact']:.3f}, {seen}", flush=True)
PYEOF
    done
}
monitor &
monitor_pid=$!
timeout "${TRAIN_TIMEOUT:-$((SECONDS_BUDGET + 1800))}" $PY -m reasonlab.systems.trm.training "${train_args[@]}" \
    2>&1 | tee "$OUT/train.log"
status=${PIPESTATUS[0]}
kill "$monitor_pid" 2>/dev/null
wait "$monitor_pid" 2>/dev/null

if [ "$status" != 0 ] || ! [ -f "$RUN/summary.json" ]; then
    echo "part 2 failed (exit $status, summary: $([ -f "$RUN/summary.json" ] && echo yes || echo none))" >&2
    exit 1
fi
$PY - "$RUN/summary.json" <<'PYEOF' 2>&1 | tee -a "$OUT/progress.txt"
import json, sys

s = json.load(open(sys.argv[1]))
print(f"done: {s['train_steps']} steps in {s['train_seconds']} s, {s['samples_per_second']} samples/s; "
      f"val exact {s['val_exact']:.4f} (step {s['best_step']}), test exact {s['test_exact']:.4f} "
      f"on {s['test_count']} puzzles")
assert s["samples_per_second"] > 0 and s["train_steps"] > 0, "no training step was timed"
PYEOF
[ "${PIPESTATUS[0]}" = 0 ] || exit 1
exit "$failed"
