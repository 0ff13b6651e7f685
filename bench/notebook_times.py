"""Wall time of every notebook in one profile, by executing them headless (nbclient), as `make run` does.

    python -m bench.notebook_times --profile smoke [--pattern "05*.ipynb" "11*.ipynb"] [--on amd-epyc]
Writes bench/results/notebooks-<profile>.json (with --on TAG: notebooks-<profile>-on-TAG.json, a second machine's
column beside the first) after every notebook; bench/report.py turns it into tables. With
--pattern, only the matching notebooks are re-timed and their rows replace the old ones; rows timed on another CPU
are dropped, so one file never mixes machines.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bench.common import RESULTS, kept_rows, save
from helpers.notebooks import execute_notebook, notebook_paths


def main() -> None:
    """Execute the notebooks in order, timing each; keep the executed copies in build/<profile>/."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default="smoke", choices=["smoke", "workshop", "full"])
    parser.add_argument("--pattern", nargs="+", default=["*.ipynb"], help="notebook file patterns")
    parser.add_argument("--on", default=None, help="a short machine name: results go to a file of their own")
    args = parser.parse_args()
    name = f"notebooks-{args.profile}" + (f"-on-{args.on}" if args.on else "")
    os.environ.setdefault("WORKBOOK_CACHE", "off")  # time the real work, not cached results
    kept = kept_rows(RESULTS / f"{name}.json") if args.pattern != ["*.ipynb"] else []
    paths = list(dict.fromkeys(p for pattern in args.pattern for p in notebook_paths(pattern)))  # in pattern order
    kept = [r for r in kept if r["notebook"] not in {p.name for p in paths}]
    rows = []
    for path in paths:  # saved after each notebook, so a run cut short keeps what it timed
        result = execute_notebook(path, Path("build") / args.profile, args.profile)
        rows.append({k: result[k] for k in ("notebook", "seconds", "ok")})
        print(rows[-1], flush=True)
        done = sorted(kept + rows, key=lambda r: r["notebook"])
        save(
            name,
            {"profile": args.profile, "rows": done, "total_seconds": round(sum(r["seconds"] for r in done), 1)},
        )


if __name__ == "__main__":
    main()
