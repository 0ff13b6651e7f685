"""Execute the workbook's notebooks headless (nbclient) and time each one."""

from __future__ import annotations

import copy
import json
import os
import time
import traceback
from pathlib import Path

import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter

from helpers.exercises import NOT_YET
from helpers.learner_copies import Exercise, find_exercises, learner_source
from helpers.paths import NOTEBOOKS_DIR


def notebook_paths(pattern: str = "*.ipynb") -> list[Path]:
    """The numbered notebooks matching ``pattern``, in course order."""
    return sorted(p for p in NOTEBOOKS_DIR.glob(pattern) if p.name[:2].isdigit())


def execute_notebook(
    path: Path, out_dir: Path, profile: str, timeout_s: int = 1200, html: bool = True, starting_points: bool = False
) -> dict:
    """Run ``path`` top to bottom with WORKBOOK_PROFILE=``profile``; save the executed copy in out_dir.

    With ``starting_points``, the same kernel then runs every exercise from the learner's starting point and
    requires its check to say "not yet" (see ``check_starting_points``). Returns {'notebook', 'profile',
    'seconds', 'ok', 'error', 'exercises'}; the executed copy is saved even when a cell fails, so the failing
    output can be read.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    nb = nbformat.read(path, as_version=4)
    os.environ["WORKBOOK_PROFILE"] = profile  # the kernel inherits this process's environment
    kernel = KernelManager(kernel_name="python3")  # ours, so execute() leaves it running for the starting points
    client = NotebookClient(nb, km=kernel, timeout=timeout_s, resources={"metadata": {"path": str(path.parent)}})
    start, error, checked = time.perf_counter(), None, []
    try:
        client.execute()
        if starting_points:
            checked = check_starting_points(client, nb, path.name)
            wrong = [f"{e['name']}: {e['outcome']}" for e in checked if not e["ok"]]
            error = "exercise checks that do not fail on the starting point: " + "; ".join(wrong) if wrong else None
    except Exception as err:  # a failing cell: keep its output, report it
        error = f"{type(err).__name__}: {str(err)[-2000:]}"
        if not str(err).strip():  # nbclient's own failures can carry no message
            error += "".join(traceback.format_exception(err))[-2000:]
    finally:
        if client.kc is not None:
            client.kc.stop_channels()
        if kernel.has_kernel:
            kernel.shutdown_kernel(now=True)
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
        "exercises": checked,
    }


def check_starting_points(client: NotebookClient, nb: nbformat.NotebookNode, name: str) -> list[dict]:
    """In ``client``'s live kernel, run each exercise from its starting point: [{'name', 'ok', 'outcome'}].

    For each exercise, last first (so no later cell sees a starting point): the solution cell with its regions
    replaced by the starting point, the cells between it and the check, then the check, which must raise an
    AssertionError saying "not yet" with its hint. Copies of the cells run; ``nb`` keeps the solution's outputs.
    """
    results, client.nb = [], copy.deepcopy(nb)  # nbclient writes each cell it runs into client.nb: not into nb
    try:
        for exercise in reversed(find_exercises(nb, name)):
            results.append(_run_from_start(client, nb, exercise))
    finally:
        client.nb = nb
    return results[::-1]


def _run_from_start(client: NotebookClient, nb: nbformat.NotebookNode, exercise: Exercise) -> dict:
    """Run one exercise's cells from its starting point; ok when its check (and only it) says "not yet"."""
    cells = [copy.deepcopy(nb.cells[i]) for i in range(exercise.solution, exercise.check + 1)]
    cells[0].source = learner_source(cells[0].source, cells[0].metadata["exercise"]["start"])
    outcome, ok = "its check passed on the starting point", False
    try:
        for offset, cell in enumerate(cells):
            client.execute_cell(cell, exercise.solution + offset)
    except CellExecutionError as err:
        failed_at = exercise.solution + offset
        ok = err.ename == "AssertionError" and NOT_YET in err.evalue and failed_at == exercise.check
        outcome = f"cell {failed_at} raised {err.ename}: {err.evalue[:300]}"
    return {"name": exercise.name, "ok": ok, "outcome": outcome, "experiment": exercise.experiment}


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
