#!/usr/bin/env bash
# Everything a short loan of a GPU should measure, in one call (results land in bench/results/, then
# `python -m bench.report` renders docs/benchmarks.md):
#   1. the loop against transformers.Trainer, with model FLOPs utilisation (MFU);
#   2. banking77 quality (full data and 10 per intent);
#   3. every notebook in the full profile.
# SIZE=tiny runs each step at a toy size (minutes on a CPU) to prove the script works before a GPU is lent:
#   SIZE=tiny bash bench/gpu_all.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WORKBOOK_CACHE=off
if [ "${SIZE:-real}" = tiny ]; then
    OUT=$(mktemp -d)  # a rehearsal: its numbers must not replace measured ones
    export WORKBOOK_BENCH_RESULTS="$OUT"
    $PY -m bench.loop_vs_trainer --steps 2 --reps 1 --batch 8 --per-class 2
    $PY -m bench.quality --settings 10-shot --shots-epochs 0.05
    $PY -m bench.notebook_times --profile smoke --pattern "07*.ipynb"
    ls "$OUT"
else
    $PY -c "import torch; assert torch.cuda.is_available(), 'no GPU: run with SIZE=tiny to rehearse'"
    $PY -m bench.loop_vs_trainer --steps 300 --reps 3 --batch 32
    $PY -m bench.quality --settings full 10-shot --epochs 8
    WORKBOOK_PROFILE=full $PY -m bench.notebook_times --profile full
    $PY -m bench.report
fi
