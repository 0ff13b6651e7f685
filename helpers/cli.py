"""Command line: ``python -m helpers <command>``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def run_notebooks(args: argparse.Namespace) -> int:
    """Execute notebooks into args.out, print a run-time table, exit 1 if any failed."""
    from helpers.notebooks import execute_notebook, notebook_paths, write_summary

    paths = notebook_paths(args.pattern)
    if not paths:
        print(f"No notebooks match {args.pattern!r} in notebooks/.", file=sys.stderr)
        return 1
    out, results = Path(args.out), []
    for path in paths:
        print(f"▶ {path.name} ({args.profile})", flush=True)
        result = execute_notebook(path, out, args.profile, timeout_s=args.timeout)
        print(f"  {'ok' if result['ok'] else 'FAILED'} in {result['seconds']} s", flush=True)
        if result["error"]:
            print(result["error"], file=sys.stderr)
        results.append(result)
    table = write_summary(results, out)
    print(table.read_text())
    print(f"Executed notebooks and HTML are in {out}/")
    return 0 if all(r["ok"] for r in results) else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m helpers`` and the ``workbook`` script."""
    parser = argparse.ArgumentParser(prog="python -m helpers", description="Fine-tuning workbook tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run-notebooks", help="execute notebooks headless into a folder, timed")
    run.add_argument("--profile", default="workshop", choices=["smoke", "workshop", "full"])
    run.add_argument("--out", default="build/workshop", help="folder for executed notebooks and HTML")
    run.add_argument("--pattern", default="*.ipynb", help="which notebooks, e.g. '0[0-2]*.ipynb'")
    run.add_argument("--timeout", type=int, default=1800, help="seconds allowed per cell")
    run.set_defaults(func=run_notebooks)
    args = parser.parse_args(argv)
    return args.func(args)
