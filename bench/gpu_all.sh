#!/usr/bin/env bash
# Everything a short loan of a GPU should measure, in one call (results land in bench/results/, then
# `python -m bench.report` renders docs/benchmarks.md):
#   1. the banking77 recipe search on validation, and the chosen recipe scored on test once (bench/banking77_search.py);
#   2. the loop against transformers.Trainer, with model FLOPs utilisation (MFU);
#   3. with FULL=1, every notebook in the full profile (needs the whole requirements.txt installed there).
# SIZE=tiny runs each step at a toy size (minutes on a CPU) to prove the script works before a GPU is lent:
#   SIZE=tiny bash bench/gpu_all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WORKBOOK_CACHE=off
if [ "${SIZE:-real}" = tiny ]; then
    OUT=$(mktemp -d)  # a rehearsal: its numbers must not replace measured ones
    export WORKBOOK_BENCH_RESULTS="$OUT"
    $PY -m bench.banking77_search --tiny --workers 1
    $PY -m bench.loop_vs_trainer --steps 2 --reps 1 --batch 8 --per-class 2
    $PY -m bench.quality --settings 10-shot --shots-epochs 0.05
    $PY -m bench.notebook_times --profile smoke --pattern "07*.ipynb"
    ls "$OUT"
else
    $PY -c "import torch; assert torch.cuda.is_available(), 'no GPU: run with SIZE=tiny to rehearse'"
    $PY -m bench.banking77_search --workers "${WORKERS:-8}" --budget-minutes "${BUDGET_MINUTES:-7}"
    $PY -m bench.loop_vs_trainer --steps 300 --reps 2 --batch 32
    if [ "${FULL:-0}" = 1 ]; then WORKBOOK_PROFILE=full $PY -m bench.notebook_times --profile full; fi
    $PY -m bench.report
fi
