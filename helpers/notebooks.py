"""Execute the workbook's notebooks headless (nbclient) and time each one."""

from __future__ import annotations

import json
import os
import time
import traceback
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbconvert import HTMLExporter

from helpers.paths import NOTEBOOKS_DIR


def notebook_paths(pattern: str = "*.ipynb") -> list[Path]:
    """The numbered notebooks matching ``pattern``, in course order."""
    return sorted(p for p in NOTEBOOKS_DIR.glob(pattern) if p.name[:2].isdigit())


def execute_notebook(path: Path, out_dir: Path, profile: str, timeout_s: int = 1200, html: bool = True) -> dict:
    """Run ``path`` top to bottom with WORKBOOK_PROFILE=``profile``; save the executed copy in out_dir.

    Returns {'notebook', 'profile', 'seconds', 'ok', 'error'}; the executed
    copy is saved even when a cell fails, so the failing output can be read.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(path, as_version=4)
    os.environ["WORKBOOK_PROFILE"] = profile  # the kernel inherits this process's environment
    client = NotebookClient(
        nb, timeout=timeout_s, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    start, error = time.perf_counter(), None
    try:
        client.execute()
    except Exception as err:  # a failing cell: keep its output, report it
        error = f"{type(err).__name__}: {str(err)[-2000:]}"
        if not str(err).strip():  # nbclient's own failures can carry no message
            error += "".join(traceback.format_exception(err))[-2000:]
    seconds = time.perf_counter() - start
    nbformat.write(nb, out_dir / path.name)
    if html:
        body, _ = HTMLExporter().from_notebook_node(nb)
        (out_dir / path.with_suffix(".html").name).write_text(body, encoding="utf-8")
    return {
        "notebook": path.name,
        "profile": profile,
        "seconds": round(seconds, 1),
        "ok": error is None,
        "error": error,
    }


def write_summary(results: list[dict], out_dir: Path) -> Path:
    """Write results.json and a Markdown table of run times into out_dir; return the table's path."""
    (out_dir / "results.json").write_text(json.dumps(results, indent=1))
    lines = ["| notebook | profile | seconds | result |", "|---|---|---|---|"]
    lines += [
        f"| {r['notebook']} | {r['profile']} | {r['seconds']} | {'ok' if r['ok'] else 'FAILED'} |" for r in results
    ]
    lines.append(f"| **total** | | {sum(r['seconds'] for r in results):.1f} | |")
    table = out_dir / "results.md"
    table.write_text("\n".join(lines) + "\n")
    return table
