"""The package's two layers run one way: notebooks -> helpers.lessons -> the library. The library
(every module of ``helpers`` outside ``helpers/lessons``) never imports a lesson."""

from __future__ import annotations

import ast
from pathlib import Path

import helpers

PACKAGE = Path(helpers.__file__).parent
LESSONS = PACKAGE / "lessons"


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, by full name (``from helpers import x`` counts as ``helpers.x``)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def library_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if LESSONS not in p.parents)


def test_the_library_imports_no_lesson():
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(n for n in imported_modules(path) if n.startswith("helpers.lessons"))
        for path in library_modules()
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, f"library modules import lessons (move the shared code into the library): {offenders}"


def test_the_check_sees_an_import_of_a_lesson(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text("from helpers.lessons import capstone\nimport helpers.lessons.forgetting\n")
    assert {"helpers.lessons.capstone", "helpers.lessons.forgetting"} <= imported_modules(module)


def test_every_library_module_is_listed():
    assert {p.stem for p in library_modules()} >= {"training", "data", "models", "evaluation", "lora"}
    assert (LESSONS / "capstone.py").exists()


def test_no_module_is_over_250_lines():
    long = {
        str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 250
    }
    assert not long, f"modules over 250 lines (split them by concern): {long}"
