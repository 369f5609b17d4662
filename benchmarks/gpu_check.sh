#!/usr/bin/env bash
# VRAdam on CUDA in under 5 minutes: the optimizer tests (CUDA-marked ones included, with
# torch.cuda.set_sync_debug_mode("error") no-sync checks), then the step benchmark on a
# GPT-2-small parameter set with achieved bandwidth against a measured copy bandwidth.
#
#   bash benchmarks/gpu_check.sh            # from the repository root, on a machine with CUDA
#   PY=/path/to/python bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

"$PY" - <<'PYCHECK'
import sys
import torch
if not torch.cuda.is_available():
    sys.exit("gpu_check.sh: no CUDA device visible to torch; nothing to check")
print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}")
PYCHECK

echo "== tests/vradam (CUDA tests selected by the 'cuda' marker run here) =="
timeout 180 "$PY" -m pytest -q -p no:cacheprovider tests/vradam -m "cuda or not cuda" -rA \
  | tail -n 40

echo "== step benchmark: GPT-2 small (124M float32 parameters) =="
timeout 150 "$PY" benchmarks/optimizer_step.py --device cuda --sets gpt2 --compiled-sets gpt2 \
  --bandwidth --budget 20 \
  --impls "AdamW fused,AdamW foreach,AdamW compiled,VRAdam fused,VRAdam fused eager-norm,VRAdam foreach,VRAdam compiled"
