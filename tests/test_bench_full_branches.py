"""bench/full_branches.py: each switch turns on what the full profile does, and claims are recorded, not raised."""

from __future__ import annotations

import importlib

import nbformat
import pytest

from bench.full_branches import CLAIMS_RECORDED, FULL_BRANCHES, recorded_claims, rehearsal_copy
from helpers.notebooks import notebook_paths
from helpers.runtime import profile

# The module attributes each switch replaces, restored after every test.
PATCHED = {
    "helpers.lessons.prompting_vs_fine_tuning_vs_rag": ("rag_candidates", "experiment_sizes", "seeds"),
    "helpers.lessons.forgetting": ("plan_for",),
    "helpers.lessons.forgetting_seeds": ("seeds_for",),
    "helpers.lessons.preference": ("settings",),
    "helpers.exercises": ("claim",),
}


@pytest.fixture
def switched(monkeypatch):
    """Run a notebook's switch in this process; monkeypatch puts every replaced function back afterwards."""
    modules = {name: importlib.import_module(name) for name in PATCHED}
    for name, attributes in PATCHED.items():
        for attribute in attributes:
            monkeypatch.setattr(modules[name], attribute, getattr(modules[name], attribute))

    def run(number: str) -> dict:
        namespace: dict = {}
        exec(CLAIMS_RECORDED + FULL_BRANCHES[number][1], namespace)
        return modules

    return run


def test_every_switched_notebook_exists_and_says_what_it_switches_on():
    for number, (what, _) in FULL_BRANCHES.items():
        assert len(notebook_paths(f"{number}_*.ipynb")) == 1, number
        assert what


def test_03_compares_every_full_profile_candidate_over_two_seeds(switched):
    m = importlib.import_module("helpers.lessons.prompting_vs_fine_tuning_vs_rag")
    smoke, full = m.rag_candidates(profile("smoke")), m.rag_candidates(profile("full"))
    assert m.experiment_sizes(profile("smoke"))["validation_questions"] == 0  # smoke compares no prompts
    n_full = m.experiment_sizes(profile("full"))["validation_questions"]
    assert n_full > 0
    switched("03")
    assert m.rag_candidates(profile("smoke")) == full
    assert len(full) > len(smoke)
    assert m.experiment_sizes(profile("smoke"))["validation_questions"] == n_full  # the comparison runs only then
    assert m.experiment_sizes(profile("smoke"))["max_new_tokens"] == 24  # the other sizes stay smoke's
    assert m.seeds(profile("smoke")) == [0, 1]


def test_05_asks_the_full_profiles_strict_claim_over_two_seeds(switched):
    modules = switched("05")
    plan = modules["helpers.lessons.forgetting"].plan_for(profile("smoke"))
    assert plan["lora_forgets_less"] is True
    assert plan["steps"] == 12  # the sizes stay smoke's
    assert modules["helpers.lessons.forgetting_seeds"].seeds_for(profile("smoke")) == [0, 1]


def test_10_runs_dpo_only_the_probe_and_every_candidate_at_smoke_sizes(switched):
    full = importlib.import_module("helpers.lessons.preference").settings(profile("full"))
    s = switched("10")["helpers.lessons.preference"].settings(profile("smoke"))
    assert (s.dpo_only, s.probe, s.candidates) == (True, True, full.candidates)
    assert s.n_test == 12 and s.dpo_steps == 8  # smoke's sizes


def test_a_failed_claim_is_recorded_and_printed_not_raised(switched, capsys):
    modules = switched("05")
    modules["helpers.exercises"].claim("LoRA forgets less", False, "gap -3%")
    modules["helpers.exercises"].claim("both learned", True, "+40%")
    assert "✘ (rehearsal: recorded, not raised) LoRA forgets less: gap -3%" in capsys.readouterr().out


def test_the_copy_runs_the_switch_first_and_its_claims_are_read_back(tmp_path):
    (source,) = notebook_paths("05_*.ipynb")
    copy = rehearsal_copy(source, "x = 1", tmp_path)
    nb = nbformat.read(copy, as_version=4)
    assert nb.cells[0].source.endswith("x = 1") and "_recorded_claim" in nb.cells[0].source
    assert len(nb.cells) == len(nbformat.read(source, as_version=4).cells) + 1
    printed = "✔ both learned: +40%\n✘ (rehearsal: recorded, not raised) LoRA forgets less: gap -3%\n"
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed)]
    nbformat.write(nb, copy)
    assert recorded_claims(copy) == [
        {"claim": "both learned", "holds": True},
        {"claim": "LoRA forgets less", "holds": False},
    ]
