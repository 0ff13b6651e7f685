"""Exercise checks, learner copies, and the rule that every notebook's exercises are real ones."""

from __future__ import annotations

import nbformat
import pytest

from helpers import exercises
from helpers.learner_copies import find_exercises, learner_notebook, learner_source, write_learner_copies
from helpers.notebooks import execute_notebook, notebook_paths

SOLUTION = "x = 1\n### BEGIN SOLUTION\nanswer = 6 * 7\n### END SOLUTION\nprint(answer)\n"


def _notebook(start: str | None = "answer = None", check: bool = True) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(SOLUTION)
    if start is not None:
        cell.metadata["exercise"] = {"start": start, "experiment": True}
    cells = [nbformat.v4.new_markdown_cell("**Exercise 1.** Set `answer`."), cell]
    if check:
        cells.append(nbformat.v4.new_code_cell('exercises.check("Exercise 1", answer == 42, "Multiply.")'))
    return nbformat.v4.new_notebook(cells=cells)


def test_check_passes_prints_and_fails_with_hint(capsys):
    exercises.check("Exercise 1", True, "hint", "42")
    assert "Exercise 1: passed (42)" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="Exercise 1: not yet. Multiply. \\(41\\)"):
        exercises.check("Exercise 1", False, "Multiply.", "41")


def test_check_with_unset_answer_says_what_to_set_without_evaluating():
    def boom() -> bool:
        raise TypeError("evaluated with None")

    with pytest.raises(AssertionError, match="not yet. Set `answer`"):
        exercises.check("Exercise 1", boom, "hint", boom, answers={"answer": None, "other": 3})
    with pytest.raises(TypeError):  # once answered, the callables run
        exercises.check("Exercise 1", boom, "hint", answers={"answer": 1})


def test_learner_source_replaces_regions_keeping_indentation():
    indented = "for i in range(2):\n    ### BEGIN SOLUTION\n    y = i\n    ### END SOLUTION\n"
    assert learner_source(indented, "y = None") == "for i in range(2):\n    # YOUR CODE HERE" + (
        " (the check below says what it expects)\n    y = None\n"
    )
    out = learner_source(SOLUTION, "answer = None")
    assert "6 * 7" not in out and "BEGIN" not in out and out.startswith("x = 1\n") and out.endswith("print(answer)\n")


def test_find_exercises_requires_a_start_and_a_check():
    [found] = find_exercises(_notebook())
    assert (found.solution, found.check, found.name, found.experiment) == (1, 2, "Exercise 1", True)
    with pytest.raises(ValueError, match="cell 1: a solution region needs metadata.exercise.start"):
        find_exercises(_notebook(start=None))
    with pytest.raises(ValueError, match="no later cell calls"):
        find_exercises(_notebook(check=False))


def test_learner_copies_keep_the_learners_edits(tmp_path):
    source = tmp_path / "notebooks" / "01_x.ipynb"
    source.parent.mkdir()
    nbformat.write(_notebook(), source)
    out = tmp_path / "exercises"
    assert write_learner_copies([source], out) == {"01_x.ipynb": "written"}
    copy = nbformat.read(out / "01_x.ipynb", as_version=4)
    assert "answer = None" in copy.cells[1].source and "6 * 7" not in copy.cells[1].source
    assert write_learner_copies([source], out) == {"01_x.ipynb": "up to date"}

    copy.cells[1].source = copy.cells[1].source.replace("answer = None", "answer = 41")  # the learner's work
    nbformat.write(copy, out / "01_x.ipynb")
    assert write_learner_copies([source], out)["01_x.ipynb"].startswith("kept")
    assert "answer = 41" in (out / "01_x.ipynb").read_text()
    assert write_learner_copies([source], out, force=True)["01_x.ipynb"].startswith("replaced")
    [backup] = out.glob("01_x.*.ipynb.bak")
    assert "answer = 41" in backup.read_text() and "answer = 41" not in (out / "01_x.ipynb").read_text()


def test_learner_copy_of_a_run_notebook_has_no_outputs():
    nb = _notebook()
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="42\n")]
    nb.cells[1].execution_count = 3
    copy = learner_notebook(nb)
    assert copy.cells[1].outputs == [] and copy.cells[1].execution_count is None


def test_every_notebook_has_real_exercises():
    """At least two exercises per notebook, each with a starting point and a check; a third change an experiment."""
    counts, experiments = {}, 0
    for path in notebook_paths():
        found = find_exercises(nbformat.read(path, as_version=4), path.name)
        counts[path.name] = len(found)
        experiments += sum(e.experiment for e in found)
    assert all(n >= 2 for n in counts.values()), f"notebooks with fewer than two exercises: {counts}"
    assert experiments * 3 >= sum(counts.values()), f"{experiments} of {sum(counts.values())} change an experiment"


def test_starting_points_run_in_the_notebooks_kernel_and_must_fail(tmp_path):
    """The harness make test uses: a check that says "not yet" on its start passes; one that passes fails."""
    nb = _notebook()
    nb.cells.insert(0, nbformat.v4.new_code_cell("from helpers import exercises"))
    lax = nbformat.v4.new_code_cell("### BEGIN SOLUTION\nother = 1\n### END SOLUTION")
    lax.metadata["exercise"] = {"start": "other = 2", "experiment": False}
    nb.cells += [lax, nbformat.v4.new_code_cell('exercises.check("Exercise 2", other > 0, "Any positive number.")')]
    path = tmp_path / "01_x.ipynb"
    nbformat.write(nb, path)

    result = execute_notebook(path, tmp_path / "out", "smoke", timeout_s=60, html=False, starting_points=True)

    first, second = result["exercises"]
    assert first["ok"] and "Exercise 1: not yet. Multiply." in first["outcome"]
    assert not second["ok"] and second["outcome"] == "its check passed on the starting point"
    assert not result["ok"] and "Exercise 2: its check passed" in result["error"]
    executed = nbformat.read(tmp_path / "out" / "01_x.ipynb", as_version=4)
    assert executed.cells[2].outputs[0]["text"] == "42\n"  # the saved copy holds the solution's run, not the start
