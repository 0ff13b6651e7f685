"""Rehearse the full profile's branches on a CPU: a notebook runs at smoke sizes with the choices only the full
profile makes switched on (more seeds, every candidate, the strict claims, the extra runs).

Unset, WORKBOOK_PROFILE means `full` on a GPU, so these branches are what a learner with a GPU runs first; a full
run takes a GPU, this rehearsal minutes on a CPU. It proves the code runs, not the full profile's numbers: a claim
that fails at smoke sizes is recorded (and printed in the executed copy) instead of stopping the notebook.

    python -m bench.full_branches            # every notebook with a full-only branch
    python -m bench.full_branches 05 10      # some of them

Writes the executed copies to build/full-branches/ and bench/results/full_branches.json (the rows of notebooks not
re-run are kept when they were rehearsed on this CPU).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import nbformat

from bench.common import RESULTS, kept_rows, save
from helpers.notebooks import execute_notebook, notebook_paths
from helpers.paths import build_dir

# Every claim() in the rehearsal prints its outcome instead of raising, so one run shows each of them
# (recorded_claims reads them back from the executed copy).
CLAIMS_RECORDED = """
import helpers.exercises as _exercises


def _recorded_claim(statement, holds, evidence):
    print(("✔ " if holds else "✘ (rehearsal: recorded, not raised) ") + f"{statement}: {evidence}")


_exercises.claim = _recorded_claim
"""

# What only the full profile does, switched on at smoke sizes: notebook prefix -> the code that switches it on.
FULL_BRANCHES = {
    "03": (
        "every RAG prompt and top-k compared on validation (as many questions as full); two fine-tune seeds",
        """
from helpers.lessons import prompting_vs_fine_tuning_vs_rag as _m
from helpers.runtime import profile as _profile
_m.rag_candidates = lambda p, _full=_m.rag_candidates(_profile("full")): list(_full)
_n = _m.experiment_sizes(_profile("full"))["validation_questions"]
_m.experiment_sizes = lambda p, _sizes=_m.experiment_sizes: {**_sizes(p), "validation_questions": _n}
_m.seeds = lambda p: [0, 1]
""",
    ),
    "05": (
        "two forgetting seeds (smoke and workshop run one); the strict claim that LoRA forgets less",
        """
from helpers.lessons import forgetting as _f, forgetting_seeds as _fs
from helpers.runtime import profile as _profile
_strict = _f.plan_for(_profile("full"))["lora_forgets_less"]
_f.plan_for = lambda p, _plan_for=_f.plan_for: {**_plan_for(p), "lora_forgets_less": _strict}
_fs.seeds_for = lambda p: [0, 1]
""",
    ),
    "10": (
        "DPO straight from the base model; every (learning rate, beta) candidate; the forgetting probe",
        """
import dataclasses
from helpers.lessons import preference as _p
from helpers.runtime import profile as _profile
_full = _p.settings(_profile("full"))
_p.settings = lambda p, _settings=_p.settings: dataclasses.replace(
    _settings(p), dpo_only=_full.dpo_only, probe=_full.probe, candidates=_full.candidates
)
""",
    ),
}


def rehearsal_copy(source: Path, switch: str, folder: Path) -> Path:
    """A copy of notebook ``source`` in ``folder`` that first runs ``switch`` (and records its claims)."""
    nb = nbformat.read(source, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(CLAIMS_RECORDED.strip() + "\n" + switch.strip()))
    target = folder / source.name
    nbformat.write(nb, target)
    return target


def recorded_claims(executed: Path) -> list[dict]:
    """The claims an executed rehearsal copy printed: [{'claim', 'holds'}] in order."""
    rows = []
    for cell in nbformat.read(executed, as_version=4).cells:
        for out in cell.get("outputs", []):
            for line in out.get("text", "").splitlines() if out.get("output_type") == "stream" else []:
                if line.startswith("✔ "):
                    rows.append({"claim": line[2:].split(":")[0], "holds": True})
                elif line.startswith("✘ (rehearsal"):
                    rows.append({"claim": line.split(") ", 1)[1].split(":")[0], "holds": False})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", default=sorted(FULL_BRANCHES), help="notebook numbers, e.g. 05")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.notebooks) - set(FULL_BRANCHES))
    if unknown:
        sys.exit(f"No full-only branches listed for {unknown}; choose from {sorted(FULL_BRANCHES)}.")
    out = build_dir() / "full-branches"
    kept = [r for r in kept_rows(RESULTS / "full_branches.json") if r["notebook"][:2] not in args.notebooks]
    rows = []
    with tempfile.TemporaryDirectory(dir=notebook_paths()[0].parent, prefix=".rehearsal-") as tmp:
        for number in args.notebooks:
            what, switch = FULL_BRANCHES[number]
            (source,) = notebook_paths(f"{number}_*.ipynb")
            copy = rehearsal_copy(source, switch, Path(tmp))
            result = execute_notebook(copy, out, "smoke", timeout_s=3600)
            claims = recorded_claims(out / source.name)
            row = {**{k: result[k] for k in ("notebook", "seconds", "ok", "error")}, "switched_on": what}
            rows.append({**row, "claims": claims})
            held = sum(c["holds"] for c in claims)
            print(f"{source.name}: ran={result['ok']} in {result['seconds']:.0f} s; claims held {held}/{len(claims)}")
            if result["error"]:
                print("  error:", result["error"][-600:])
    every = sorted(kept + rows, key=lambda r: r["notebook"])
    save("full_branches", {"profile": "smoke sizes, full-profile branches", "rows": every})
    if not all(r["ok"] for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
