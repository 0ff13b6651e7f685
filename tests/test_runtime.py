import pytest
import torch

from helpers import runtime
from helpers.data import banking77_intents


def test_profile_reads_environment(monkeypatch):
    monkeypatch.setenv("WORKBOOK_PROFILE", "smoke")
    assert runtime.profile().name == "smoke"
    monkeypatch.setenv("WORKBOOK_PROFILE", "Workshop ")
    assert runtime.profile().name == "workshop"


def test_default_profile_depends_on_device(monkeypatch):
    monkeypatch.delenv("WORKBOOK_PROFILE", raising=False)
    expected = "full" if torch.cuda.is_available() else "workshop"
    assert runtime.profile().name == expected


def test_unknown_profile_names_the_choices(monkeypatch):
    monkeypatch.setenv("WORKBOOK_PROFILE", "huge")
    with pytest.raises(ValueError, match="smoke, workshop, full"):
        runtime.profile()


def test_pick_selects_by_profile():
    assert runtime.profile("smoke").pick(smoke=1, workshop=2, full=3) == 1
    assert runtime.profile("full").pick(smoke=1, workshop=2, full=3) == 3


def test_profile_intents_are_banking77_names():
    assert set(runtime.profile("smoke").intents) <= set(banking77_intents())
    assert runtime.profile("full").intents is None


def test_seed_everything_repeats_random_draws():
    runtime.seed_everything(3)
    a = torch.rand(3)
    runtime.seed_everything(3)
    assert torch.equal(a, torch.rand(3))


def test_environment_report_lists_models_and_profile(monkeypatch):
    monkeypatch.setenv("WORKBOOK_PROFILE", "smoke")
    report = runtime.environment_report()
    assert report["profile"] == "smoke"  # the active profile, not a default
    assert set(report["models"]) == {"all-MiniLM-L6-v2", "SmolLM2-135M-Instruct"}
    assert report["device"] in ("cpu", "cuda", "mps") and report["torch"] == torch.__version__
