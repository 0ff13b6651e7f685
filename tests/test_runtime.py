import json

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


def test_measured_run_times_name_the_profile_and_the_cpu(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime, "BENCH_RESULTS_DIR", tmp_path)
    assert "no measured run time yet" in runtime.measured_run_times("07")
    machine = {"cpu_cores": 2, "cpu_model": "Example CPU", "cpu_features": ["AVX2", "AMX"]}
    rows = [{"notebook": "07_evaluation_and_shipping.ipynb", "seconds": 90.0, "ok": True}]
    (tmp_path / "notebooks-smoke.json").write_text(json.dumps({"machine": machine, "rows": rows}))
    line = runtime.measured_run_times("07")
    assert "smoke 1.5 min on 2 cores of Example CPU (AVX2, AMX)" in line and "workshop" not in line
    assert "no measured run time yet" in runtime.measured_run_times("06")
