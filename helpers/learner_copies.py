"""Learner copies of the notebooks: every ``### BEGIN SOLUTION`` / ``### END SOLUTION`` region (nbgrader's
markers) replaced by the starting point stored in the cell's metadata (``metadata.exercise.start``).

The complete notebooks in ``notebooks/`` are the solutions; ``make exercises`` writes the copies learners work in.
A copy the learner has edited is never overwritten: it is kept, and a fresh one is written only when asked
(``--force``), after a dated backup of theirs.
"""

from __future__ import annotations

import copy
import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
CHECK_CALL = re.compile(r"(?<![\w.])(?:exercises\.)?check\(")  # exercises.check( or check( imported from it
REGION = re.compile(rf"^([ \t]*){re.escape(BEGIN)}[^\n]*\n.*?^[ \t]*{re.escape(END)}[^\n]*(\n|$)", re.S | re.M)
STUB = "# YOUR CODE HERE (the check below says what it expects)"


@dataclass(frozen=True)
class Exercise:
    """One exercise: its solution cell, the cells that use the answer, and the cell that checks it."""

    solution: int  # index of the cell holding the solution region
    check: int  # index of the first later cell calling exercises.check( (or check( imported from it)
    name: str  # the first string passed to exercises.check, e.g. "Exercise 2"
    experiment: bool  # whether the exercise changes an experiment and is checked on its measured result


def has_solution(source: str) -> bool:
    """Whether a cell's source holds a solution region."""
    return bool(REGION.search(source))


def learner_source(source: str, start: str) -> str:
    """``source`` with every solution region replaced by a stub line and ``start``, at the marker's indentation."""

    def replace(match: re.Match) -> str:
        indent = match.group(1)
        lines = [STUB, *start.rstrip("\n").splitlines()]
        return "".join(f"{indent}{line}\n" if line else "\n" for line in lines)

    return REGION.sub(replace, source)


def find_exercises(nb: nbformat.NotebookNode, name: str = "notebook") -> list[Exercise]:
    """The exercises of ``nb`` in order; ValueError names the cell if one lacks a starting point or a check."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not has_solution(cell.source):
            continue
        meta = cell.metadata.get("exercise", {})
        if "start" not in meta:
            raise ValueError(
                f"{name}, cell {index}: a solution region needs metadata.exercise.start (the learner's starting point)"
            )
        later = [i for i in range(index + 1, len(nb.cells)) if CHECK_CALL.search(nb.cells[i].source)]
        if not later:
            raise ValueError(f"{name}, cell {index}: no later cell calls exercises.check(...) to check this exercise")
        title = re.search(r"check\(\s*[\"']([^\"']+)", nb.cells[later[0]].source)
        found.append(Exercise(index, later[0], title.group(1) if title else "?", bool(meta.get("experiment"))))
    return found


def learner_notebook(nb: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """A copy of ``nb`` with solutions replaced by starting points and no outputs."""
    out = copy.deepcopy(nb)
    for exercise in find_exercises(out, name):
        cell = out.cells[exercise.solution]
        cell.source = learner_source(cell.source, cell.metadata["exercise"]["start"])
    for cell in out.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    out.metadata["workbook_learner_copy"] = {"sources_sha256": _sources_hash(out)}
    return out


def _sources_hash(nb: nbformat.NotebookNode) -> str:
    return hashlib.sha256("\x00".join(c.source for c in nb.cells).encode()).hexdigest()


def _edited(nb: nbformat.NotebookNode) -> bool:
    """Whether a learner copy holds work of the learner's: changed sources, or outputs from a run."""
    stored = nb.metadata.get("workbook_learner_copy", {}).get("sources_sha256")
    ran = any(c.cell_type == "code" and (c.outputs or c.execution_count) for c in nb.cells)
    return ran or stored != _sources_hash(nb)


def write_learner_copies(notebooks: list[Path], out_dir: Path, force: bool = False) -> dict[str, str]:
    """Write a learner copy of each notebook into ``out_dir``; return {file name: what happened}.

    An existing copy the learner has edited is kept (``force`` backs it up beside itself, then replaces it).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    done = {}
    for path in notebooks:
        fresh = learner_notebook(nbformat.read(path, as_version=4), path.name)
        target = out_dir / path.name
        current = nbformat.read(target, as_version=4) if target.exists() else None
        if current is not None and _edited(current):
            if not force:
                done[path.name] = "kept (you edited it; `make exercises FORCE=1` backs it up and writes a fresh one)"
                continue
            backup = target.with_name(f"{target.stem}.{time.strftime('%Y%m%d-%H%M%S')}.ipynb.bak")
            target.rename(backup)
            done[path.name] = f"replaced; your edited copy is in {backup.name}"
        elif current is not None and _sources_hash(current) == _sources_hash(fresh):
            done[path.name] = "up to date"
            continue
        else:
            done[path.name] = "written" if current is None else "updated"
        nbformat.write(fresh, target)
    return done
