"""Choose on validation, score the test split once: no notebook touches its test split before its final score.

Two guards (issue 20). At run time, training refuses a test split to monitor (``helpers.data.refuse_test_split``).
Before run time, a static reading of every notebook's code cells follows the test split from where it is loaded
(``load_banking77("test", ...)``, any call with a ``"test"`` split, the ``.test`` / ``.domain_test`` fields)
through every name computed from it, and flags:

- test data passed to a call that trains (monitoring on the test set, or training data filtered by it);
- a call that trains and touches the test split inside one helper (a sweep that scores each run on the test set);
- a choice (``idxmax``, ``max(..., key=...)``, ...) made on numbers computed from the test split;
- in the lesson (before "## Exercises"), a cell that scores the test split before the last cell that trains;
  a markdown cell whose metadata ``new_experiment`` gives a reason starts a new experiment (its own model on its own
  splits, after the lesson's final score), and this ordering rule starts again from there;
- an exercise cell that scores the test split (exercises compare on validation).

What trains and what touches the test split inside ``helpers/`` is read from the package's source, following calls
by name, so a helper that hides a test-set evaluation inside its training loop is caught too.

Names are followed statement by statement, so a name derived from the test split and scored in the same cell counts,
and so does a loop over test data (``for query in test_queries``, or a comprehension over them). What does not hold
test data is left alone: a split's metadata (``test.features``: the label names), the part of a tuple that ``_``
discards, a comprehension's own variable outside it, and a function's parameters and locals, which hide notebook
names of the same spelling.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from helpers import data, training
from helpers.classifier import fine_tune_classifier
from helpers.notebooks import notebook_paths
from helpers.paths import NOTEBOOKS_DIR

HELPERS_DIR = Path(__file__).resolve().parents[1] / "helpers"
TEST_FIELDS = {"test", "domain_test"}  # dataclass fields that hold a test split (SliceData.test, Suite.domain_test)
SCORING = re.compile(r"predict|evaluat|score|accura|perplex|measure|classify|generat|logits|complete|calibrat", re.I)
METADATA = {"features", "column_names", "num_rows"}  # what a split is, not what it holds
COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
SCOPES = COMPREHENSIONS + FUNCTIONS  # their names are their own
CHOICES = {"idxmax", "idxmin", "nlargest", "nsmallest"}  # pandas choices; max/min/sorted count with key=


# ---------------------------------------------------------------- what a call does, read from the source
def _callee(call: ast.Call) -> str | None:
    """The called function's own name: ``f`` for ``f(...)`` and ``m.f(...)``."""
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _is_train_call(call: ast.Call) -> bool:
    """``train(...)`` or ``training.train(...)``: the one loop (``model.train()``, the mode switch, is not)."""
    func = call.func
    if isinstance(func, ast.Name):
        return func.id == "train"
    return (
        isinstance(func, ast.Attribute)
        and func.attr == "train"
        and isinstance(func.value, ast.Name)
        and func.value.id == "training"
    )


def _loads_test(node: ast.AST) -> bool:
    """A call that asks for the ``"test"`` split (first argument or ``split=``), or a ``.test`` field read."""
    if isinstance(node, ast.Attribute) and node.attr in TEST_FIELDS and isinstance(node.ctx, ast.Load):
        return True
    if isinstance(node, ast.Call):
        args = node.args[:1] + [k.value for k in node.keywords if k.arg == "split"]
        return any(isinstance(a, ast.Constant) and a.value == "test" for a in args)
    return False


@dataclass
class Facts:
    """Per function name: the names it calls, whether it calls the training loop, whether it touches test."""

    calls: dict[str, set[str]] = field(default_factory=dict)
    trains: set[str] = field(default_factory=set)
    tests: set[str] = field(default_factory=set)

    def add(self, fn: ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda, name: str, tainted=frozenset()) -> None:
        """Record one function's body (``tainted``: notebook names already holding test data)."""
        nodes = list(ast.walk(fn))
        self.calls.setdefault(name, set()).update(c for n in nodes if isinstance(n, ast.Call) and (c := _callee(n)))
        if any(isinstance(n, ast.Call) and _is_train_call(n) for n in nodes):
            self.trains.add(name)
        if any(_loads_test(n) or (isinstance(n, ast.Name) and n.id in tainted) for n in nodes):
            self.tests.add(name)

    def close(self) -> None:
        """Propagate along calls: a function that calls one that trains (touches test) trains (touches test)."""
        for found in (self.trains, self.tests):
            changed = True
            while changed:
                new = {f for f, callees in self.calls.items() if f not in found and callees & found}
                found |= new
                changed = bool(new)


def helper_facts() -> Facts:
    """What every function in ``helpers/`` does, by name (methods and nested functions included)."""
    facts = Facts()
    for path in sorted(HELPERS_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                facts.add(node, node.name)
    facts.close()
    return facts


# ---------------------------------------------------------------- reading one notebook
@dataclass
class Cell:
    index: int
    tree: ast.Module
    exercise: bool  # in the exercises part (after the "## Exercises" heading)
    experiment: int = 0  # which experiment of the lesson: 0, then one more at each ``new_experiment`` heading


def code_cells(nb: nbformat.NotebookNode) -> list[Cell]:
    """The notebook's code cells, parsed (IPython magics blanked), each marked lesson or exercise."""
    cells, in_exercises, experiment = [], False, 0
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and re.search(r"^#+\s*Exercise", cell.source, re.M):
            in_exercises = True
        if cell.cell_type == "markdown" and cell.metadata.get("new_experiment"):
            experiment += 1
        if cell.cell_type == "code":
            source = "\n".join(
                "" if line.lstrip().startswith(("%", "!")) else line for line in cell.source.splitlines()
            )
            cells.append(Cell(i, ast.parse(source), in_exercises or bool(cell.metadata.get("exercise")), experiment))
    return cells


def _names(node: ast.AST) -> set[str]:
    """Names read in ``node``, except where only a split's metadata is read (``test.features``: label names)."""
    metadata = {id(n.value) for n in ast.walk(node) if isinstance(n, ast.Attribute) and n.attr in METADATA}
    names = (n for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load))
    return {n.id for n in names if id(n) not in metadata}


def _module_level(statement: ast.stmt):
    """The nodes of ``statement`` that run in the notebook's own scope: not function, lambda or comprehension bodies,
    whose names are their own."""
    todo = [statement]
    while todo:
        node = todo.pop()
        yield node
        if not isinstance(node, SCOPES) or node is statement:
            todo.extend(ast.iter_child_nodes(node))


def _targets(target: ast.AST) -> list[str]:
    return [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]


def leaks(nb: nbformat.NotebookNode, facts: Facts | None = None) -> list[str]:
    """Every place the notebook touches its test split before its final score, as sentences ([] when clean)."""
    base = facts or helper_facts()
    facts = Facts({k: set(v) for k, v in base.calls.items()}, set(base.trains), set(base.tests))
    tainted: set[str] = set()
    found: list[str] = []
    train_cells: list[tuple[int, int]] = []  # (experiment, cell) of lesson cells that train
    score_cells: list[tuple[int, int]] = []  # lesson cells that score the test split
    choice_cells: list[tuple[int, int, str]] = []  # lesson cells that choose on numbers from the test split

    def holds_test(node: ast.AST, extra: frozenset[str] = frozenset(), hidden: frozenset[str] = frozenset()) -> bool:
        return bool(_names(node) & ((tainted - hidden) | extra)) or any(
            _loads_test(n) or (isinstance(n, ast.Call) and _callee(n) in facts.tests) for n in ast.walk(node)
        )

    def taint(statement: ast.stmt) -> None:  # names computed from test data hold test data, to a fixed point
        size = -1
        while size != len(tainted):
            size = len(tainted)
            for node in _module_level(statement):
                if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign) and node.value is not None:
                    if isinstance(node.value, ast.Lambda) or not holds_test(node.value):
                        continue
                    for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                        names = _targets(target)
                        if isinstance(target, ast.Tuple):  # (train, val, test) = splits(...): only the test part,
                            names = [n for n in names if "test" in n] or [n for n in names if n == "_"] or names
                        tainted.update(names)  # which a `_` discards where no name says "test"
                elif isinstance(node, ast.For) and holds_test(node.iter):
                    tainted.update(_targets(node.target))  # for query in test_queries: each query is test data

    def scoped(statement: ast.stmt) -> dict[int, tuple[frozenset[str], frozenset[str]]]:
        """Per call inside a function or comprehension: (its names that hold test data there, the notebook names its
        own parameters and locals hide). ``for q in test_queries`` in a comprehension adds ``q``; ``def pick(frame)``
        hides the notebook's ``frame``."""
        scopes: dict[int, tuple[frozenset[str], frozenset[str]]] = {}
        for node in ast.walk(statement):
            extra, hidden = set(), set()
            if isinstance(node, COMPREHENSIONS):
                for generator in node.generators:
                    if holds_test(generator.iter, frozenset(extra)):
                        extra.update(_targets(generator.target))
            elif isinstance(node, FUNCTIONS):
                hidden.update(a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg))
                hidden.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))
            if extra or hidden:
                for call in ast.walk(node):
                    if isinstance(call, ast.Call):
                        more, less = scopes.get(id(call), (frozenset(), frozenset()))
                        scopes[id(call)] = (more | extra, less | hidden)
        return scopes

    for cell in code_cells(nb):
        where = f"cell {cell.index}"
        trains = scores = False
        for statement in cell.tree.body:  # in order, so a name derived in this cell is followed in it too
            taint(statement)
            for node in ast.walk(statement):  # functions defined in the notebook join the facts
                if isinstance(node, ast.FunctionDef):
                    facts.add(node, node.name, frozenset(tainted))
                elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Lambda):
                    for name in _targets(node.targets[0]):
                        facts.add(node.value, name, frozenset(tainted))
            facts.close()
            scopes = scoped(statement)
            for node in ast.walk(statement):
                if not isinstance(node, ast.Call):
                    continue
                name = _callee(node)
                args = [*node.args, *(k.value for k in node.keywords)]
                scope = scopes.get(id(node), (frozenset(), frozenset()))
                test_args = [a for a in args if holds_test(a, *scope)]
                if _is_train_call(node) or name in facts.trains:
                    trains = True
                    if test_args:
                        found.append(
                            f"{where}: {name}() trains on or monitors with test data ({ast.unparse(test_args[0])})"
                        )
                    elif name in facts.tests:
                        found.append(f"{where}: {name}() trains and touches the test split in one call")
                elif test_args and name and SCORING.search(name):
                    scores = True
                elif name in facts.tests and name and SCORING.search(name):
                    scores = True
                keyed = name in ("max", "min", "sorted") and any(k.arg == "key" for k in node.keywords)
                receiver = [node.func.value] if isinstance(node.func, ast.Attribute) else []
                if (name in CHOICES or keyed) and any(holds_test(a, *scope) for a in args + receiver):
                    choice = f"{ast.unparse(node)[:60]} chooses on numbers from the test split"
                    if cell.exercise:
                        found.append(f"{where}: {choice}")
                    else:  # a leak when training follows (it may steer it); after the last, it describes the final
                        choice_cells.append((cell.experiment, cell.index, choice))
        if cell.exercise:
            if scores:
                found.append(f"{where}: an exercise scores the test split (compare on validation)")
        else:
            train_cells += [(cell.experiment, cell.index)] if trains else []
            score_cells += [(cell.experiment, cell.index)] if scores else []
    last_train = {e: i for e, i in sorted(train_cells)}  # each experiment's last cell that trains
    found += [
        f"cell {i}: {choice} before training ends (cell {last_train[e]})"
        for e, i, choice in choice_cells
        if i < last_train.get(e, -1)
    ]
    found += [
        f"cell {i}: scores the test split before training ends (cell {last_train[e]})"
        for e, i in score_cells
        if i < last_train.get(e, -1)
    ]
    return found


# ---------------------------------------------------------------- the tests
def _notebook(*sources: str, exercises_from: int | None = None) -> nbformat.NotebookNode:
    cells = [nbformat.v4.new_code_cell(s) for s in sources]
    if exercises_from is not None:
        cells.insert(exercises_from, nbformat.v4.new_markdown_cell("## Exercises"))
    return nbformat.v4.new_notebook(cells=cells)


LOAD = (
    "train_set, val_set = data.stratified_split(data.load_banking77('train', per_class=8))\n"
    "test_set = data.load_banking77('test', per_class=4)\n"
)


def test_a_clean_lesson_passes():
    nb = _notebook(
        LOAD,
        "run = fine_tune_classifier(train_set, config, eval_data=val_set)",
        "best = max(runs, key=lambda r: r['val_accuracy'])",
        "final = evaluate(run, test_set)\nclaim('x', final['accuracy'] > 0.5, '')",
        "mine = fine_tune_classifier(train_set, config, eval_data=val_set)",
        "check('ex', evaluate(mine, val_set)['accuracy'] > 0.5, '')",
        exercises_from=4,
    )
    assert leaks(nb) == []


def test_what_does_not_hold_test_data_is_not_flagged():
    nb = _notebook(
        LOAD,
        "intents = test_set.features['label'].names  # label names: what the split is, not what it holds",
        "fit_train, fit_val, _ = held_out_splits(intents)  # the `_` discards the test part",
        "frame = evaluate_all(test_set)",
        "def pick(frame):\n    return frame.loc[frame['val_accuracy'].idxmax()]  # its own frame, not the test one",
        "best = pick(val_table)",
        "p = TrainConfig(1e-4)\nok = all(check(p) for p in test_pairs)  # this p lives in the comprehension only\n"
        "run = fine_tune_classifier(fit_train, p, eval_data=fit_val, labels=intents)",
        "final = evaluate(run, test_set)",
    )
    facts = helper_facts()
    facts.add(ast.parse("def held_out_splits(i):\n  return load_banking77('test')").body[0], "held_out_splits")
    facts.close()
    assert leaks(nb, facts) == ["cell 3: scores the test split before training ends (cell 6)"]


@pytest.mark.parametrize(
    "cells, found",
    [
        (  # 00, 01, 04 before the fix: the test set monitors training
            ["run = fine_tune_classifier(train_set, config, eval_data=data.tokenize(test_set, tok, 32))"],
            "monitors with test data",
        ),
        (  # 03 before the fix: training data filtered by the test questions
            [
                "keep = [q for q in train_set['text'] if q not in set(test_set['text'])]",
                "run = fine_tune_chat(keep, config)",
            ],
            "trains on or monitors with test data",
        ),
        (  # a learning rate chosen on the test set, then trained with
            [
                "scores = {lr: evaluate(fine_tune_classifier(train_set, TrainConfig(lr)), test_set) for lr in lrs}",
                "best = max(scores, key=lambda lr: scores[lr]['accuracy'])",
                "final = fine_tune_classifier(train_set, TrainConfig(best))",
            ],
            "chooses on numbers from the test split",
        ),
        (  # scored on test, then trained again: the score may steer what comes next
            [
                "first = evaluate(fine_tune_classifier(train_set, config), test_set)",
                "second = fine_tune_classifier(train_set, config)",
            ],
            "scores the test split before training ends",
        ),
        (  # derived and scored in one cell, then trained again
            [
                "held = test_set.select(range(8))\nfirst = evaluate(run, held)",
                "second = fine_tune_classifier(train_set, config)",
            ],
            "scores the test split before training ends",
        ),
        (  # derived and monitored with in one cell
            ["held = data.tokenize(test_set, tok, 32)\nrun = fine_tune_classifier(train_set, config, eval_data=held)"],
            "monitors with test data",
        ),
        (  # each test query generated from in a loop, then trained again
            [
                "replies = [generate(model, query) for query in test_set['text']]",
                "second = fine_tune_classifier(train_set, config)",
            ],
            "scores the test split before training ends",
        ),
        (  # a helper that scores every run on the test set while the sweep goes on (01 before the fix)
            ["runs = from_scratch.run_sweep(P, S)"],
            "trains and touches the test split in one call",
        ),
        (  # run_slice(..., test_every_eval=True) in 05 before the fix, written out
            [
                "run = fine_tune_classifier(train_set, config, eval_data=val_set, "
                "evaluate_fn=evaluation.metrics_fn(sd.test, tok))"
            ],
            "monitors with test data",
        ),
    ],
)
def test_each_leak_is_found(cells, found):
    facts = helper_facts()
    facts.add(ast.parse("def run_sweep(p, s):\n  t = load_banking77('test')\n  train(m, d, c)").body[0], "run_sweep")
    facts.close()
    report = leaks(_notebook(LOAD, *cells), facts)
    assert any(found in line for line in report), report


def test_a_new_experiment_after_the_final_score_starts_the_order_again():
    cells = [
        LOAD,
        "run = fine_tune_classifier(train_set, config, eval_data=val_set)",
        "final = evaluate(run, test_set)",
        "drift_train, drift_val, drift_test = held_out_splits(new_intents)",
        "run2 = fine_tune_classifier(drift_train, config, eval_data=drift_val)",
        "drifted = evaluate(run2, drift_test)",
    ]
    assert leaks(_notebook(*cells)) == ["cell 2: scores the test split before training ends (cell 4)"]
    nb = _notebook(*cells)
    heading = nbformat.v4.new_markdown_cell("## Drift", metadata={"new_experiment": "new intents, new splits"})
    nb.cells.insert(3, heading)
    assert leaks(nb) == []
    nb.cells[3].metadata["new_experiment"] = ""  # a heading without a reason starts nothing
    assert leaks(nb) == ["cell 2: scores the test split before training ends (cell 5)"]


def test_an_exercise_compares_on_validation_not_test():
    nb = _notebook(
        LOAD,
        "run = fine_tune_classifier(train_set, config)",
        "final = evaluate(run, test_set)",
        "mine = fine_tune_classifier(train_set, config)",
        "ok = evaluate(mine, test_set)",
        exercises_from=3,
    )
    assert leaks(nb) == ["cell 5: an exercise scores the test split (compare on validation)"]  # cell 3: the heading


@pytest.mark.parametrize(
    "path",
    notebook_paths(),
    ids=lambda p: p.stem,
)
def test_no_notebook_touches_its_test_split_before_its_final_score(path: Path):
    found = leaks(nbformat.read(path, as_version=4))
    assert not found, f"{path.relative_to(NOTEBOOKS_DIR.parent)}:\n" + "\n".join(found)


def test_training_refuses_the_test_split_to_monitor():
    labels = ["card_arrival", "pin_blocked"]
    test = data.load_banking77("test", per_class=2, intents=labels)
    train_set = data.load_banking77("train", per_class=4, intents=labels)
    with pytest.raises(ValueError, match="This is the test split"):
        fine_tune_classifier(train_set, training.TrainConfig(max_steps=1, progress=False), eval_data=test)
