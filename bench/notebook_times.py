"""Wall time of every notebook in one profile, by executing them headless (nbclient), as `make run` does.

    python -m bench.notebook_times --profile smoke [--pattern "05*.ipynb"]
Writes bench/results/notebooks-<profile>.json; bench/report.py turns it into tables. With a --pattern, only the
matching notebooks are re-timed and their rows replace the old ones (the machine line is the newest run's).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from bench.common import RESULTS, save
from helpers.notebooks import execute_notebook, notebook_paths


def main() -> None:
    """Execute the notebooks in order, timing each; keep the executed copies in build/<profile>/."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default="smoke", choices=["smoke", "workshop", "full"])
    parser.add_argument("--pattern", default="*.ipynb")
    args = parser.parse_args()
    os.environ.setdefault("WORKBOOK_CACHE", "off")  # time the real work, not cached results
    rows = []
    for path in notebook_paths(args.pattern):
        result = execute_notebook(path, Path("build") / args.profile, args.profile)
        rows.append({k: result[k] for k in ("notebook", "seconds", "ok")})
        print(rows[-1], flush=True)
    old = RESULTS / f"notebooks-{args.profile}.json"
    if args.pattern != "*.ipynb" and old.exists():  # a partial re-run: keep the other notebooks' rows
        fresh = {r["notebook"] for r in rows}
        rows = sorted(
            [r for r in json.loads(old.read_text())["rows"] if r["notebook"] not in fresh] + rows,
            key=lambda r: r["notebook"],
        )
    save(
        f"notebooks-{args.profile}",
        {"profile": args.profile, "rows": rows, "total_seconds": round(sum(r["seconds"] for r in rows), 1)},
    )


if __name__ == "__main__":
    main()
