#!/usr/bin/env bash
# Before/after run time of notebooks, interleaved in one sitting (machine drift hits both sides alike):
#   bash bench/ab_notebooks.sh BEFORE_CHECKOUT AFTER_CHECKOUT "04 05" [ROUNDS]
# Each checkout runs its own helpers/ (PYTHONPATH) with this venv's libraries, smoke profile, cache off.
set -euo pipefail
before=$1 after=$2 notebooks=$3 rounds=${4:-2}
PY=${PYTHON:-$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python}
for nb in $notebooks; do
  for _ in $(seq "$rounds"); do
    for side in "$before" "$after"; do
      (cd "$side" && env PYTHONPATH="$side" HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
        WORKBOOK_CACHE=off "$PY" -c "
from pathlib import Path
from helpers.notebooks import execute_notebook
r = execute_notebook(next(Path('notebooks').glob('$nb*.ipynb')), Path('/tmp/ab-$(basename "$side")'), 'smoke', html=False)
print('$(git -C "$side" rev-parse --short HEAD)$(git -C "$side" diff --quiet || echo +changes)', r['notebook'], r['seconds'], r['ok'], flush=True)
" 2>/dev/null | tail -1)
    done
  done
done
