"""Where each notebook's time goes: per-cell wall times read from executed notebooks (nbclient records them).

    python -m bench.cell_times --profile smoke            # reads build/smoke/*.ipynb (after `make test`)
    python -m bench.cell_times --profile workshop --top 5

Writes bench/results/cell-times-<profile>.json: every code cell's seconds and first line, per notebook.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

import nbformat

from bench.common import save
from helpers.paths import build_dir


def cell_seconds(cell) -> float | None:
    """Wall seconds from the kernel's busy to idle status for one executed code cell, or None if not timed."""
    timing = cell.get("metadata", {}).get("execution", {})
    if "iopub.status.busy" not in timing or "iopub.status.idle" not in timing:
        return None
    busy, idle = (
        datetime.fromisoformat(timing[k].replace("Z", "+00:00")) for k in ("iopub.status.busy", "iopub.status.idle")
    )
    return (idle - busy).total_seconds()


def notebook_cells(path: Path) -> list[dict]:
    """[{'cell': index, 'seconds', 'first_line'}] for the timed code cells of one executed notebook."""
    nb = nbformat.read(path, as_version=4)
    rows = []
    for index, cell in enumerate(nb.cells):
        seconds = cell_seconds(cell) if cell.cell_type == "code" else None
        if seconds is not None:
            first = next((line for line in cell.source.splitlines() if line.strip()), "")
            rows.append({"cell": index, "seconds": round(seconds, 2), "first_line": first[:100]})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="smoke", choices=["smoke", "workshop", "full"])
    parser.add_argument("--top", type=int, default=3, help="slowest cells printed per notebook")
    parser.add_argument("--build", type=Path, default=build_dir(), help="the folder holding <profile>/*.ipynb")
    parser.add_argument("--name", default=None, help="results file name (default cell-times-<profile>)")
    args = parser.parse_args(argv)
    folder = args.build / args.profile
    paths = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise SystemExit(f"No executed notebooks in {folder}; run `make test` (smoke) or `make run` first.")
    notebooks = {p.name: notebook_cells(p) for p in paths}
    for name, rows in notebooks.items():
        total = sum(r["seconds"] for r in rows)
        slowest = sorted(rows, key=lambda r: -r["seconds"])[: args.top]
        print(
            f"{name}: {total:.0f} s in cells; slowest: "
            + "; ".join(f"cell {r['cell']} {r['seconds']:.0f} s ({r['first_line'][:50]})" for r in slowest)
        )
    save(args.name or f"cell-times-{args.profile}", {"profile": args.profile, "notebooks": notebooks})


if __name__ == "__main__":
    main()
