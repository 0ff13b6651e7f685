"""Every notebook runs top to bottom in the active profile (smoke under `make test`); its check cells assert the
lesson."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from helpers.notebooks import execute_notebook, notebook_paths
from helpers.paths import NOTEBOOKS_DIR, build_dir


def test_notebooks_are_stored_without_outputs():
    for path in sorted(p for p in NOTEBOOKS_DIR.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts):
        cells = json.loads(path.read_text())["cells"]
        dirty = [i for i, c in enumerate(cells) if c["cell_type"] == "code" and (c["outputs"] or c["execution_count"])]
        assert not dirty, f"{path.name} has outputs in cells {dirty}; clear them before committing."


@pytest.mark.notebook
@pytest.mark.filterwarnings("default")  # the kernel's machinery (jupyter_client, zmq) is not ours to fix
@pytest.mark.parametrize("path", notebook_paths(), ids=lambda p: p.stem)
def test_notebook_executes(path: Path):
    profile = os.environ.get("WORKBOOK_PROFILE", "smoke")
    result = execute_notebook(path, build_dir() / profile, profile, starting_points=True)
    print(f"{path.name}: {result['seconds']} s in the {profile} profile; exercise checks on their starting points:")
    for exercise in result["exercises"]:
        print(f"  {exercise['name']}: {exercise['outcome']}")
    assert result["ok"], f"{path.name} failed (executed copy in build/{profile}/):\n{result['error']}"
