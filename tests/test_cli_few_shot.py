"""``finetune-classifier`` on few examples per label: ``--method auto`` picks SetFit and says why, the frozen
baseline is always fitted and reported, and shipped when the chosen method scores lower; ``predict`` reads both
kinds of output folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_cli import args, make_files, replace  # noqa: E402
from test_resume import LABELS  # noqa: E402

import helpers.finetune
from helpers import few_shot
from helpers.cli import main
from helpers.data import load_text_classification
from helpers.finetune import finetune_classifier
from helpers.finetune_files import load_predictor
from helpers.finetune_methods import FEW_SHOT_BELOW, choose_method

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """test_cli's tiny model and CSVs (8 training examples per label)."""
    return make_files(tmp_path_factory.mktemp("cli_few_shot"))


def auto(files, out, *extra) -> list[str]:
    """The shared test command with --method auto (8 per label) and SetFit's steps capped at 2."""
    return replace(args(files, out, *extra), {"--method": "auto", "--max-steps": "2"})


def test_auto_chooses_by_examples_per_label_and_says_why():
    few = load_text_classification(_csv({"a": 8, "b": 8}))
    method, why = choose_method("auto", few)
    assert method == "setfit" and why.startswith("Method setfit (auto): the median label has 8 training examples")
    assert f"fewer than {FEW_SHOT_BELOW}" in why and "\n" not in why
    many = load_text_classification(_csv({"a": FEW_SHOT_BELOW, "b": FEW_SHOT_BELOW + 4}))
    method, why = choose_method("auto", many)
    assert method == "lora" and f"at least {FEW_SHOT_BELOW}" in why
    assert choose_method("frozen", few)[0] == "frozen"  # asked for: kept


def _csv(counts: dict[str, int]) -> Path:
    import tempfile  # noqa: PLC0415

    path = Path(tempfile.mkdtemp()) / "train.csv"
    rows = [f"text {i} of {name},{name}" for name, n in counts.items() for i in range(n)]
    path.write_text("text,label\n" + "\n".join(rows) + "\n")
    return path


def test_auto_trains_setfit_reports_both_scores_and_predict_reads_it(files, tmp_path, capsys):
    out = tmp_path / "auto"
    assert main(auto(files, out)) == 0
    said = capsys.readouterr().out
    assert "Method setfit (auto): the median label has 8 training examples" in said
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["chosen_method"] == "setfit" and metrics["method"] in ("setfit", "frozen")
    assert set(metrics["methods"]) == {"frozen", "setfit"} and metrics["methods"]["setfit"]["steps"] == 2
    for scores in metrics["methods"].values():
        assert {"validation_accuracy", "accuracy", "macro_f1", "train_seconds"} <= set(scores)
    shipped = metrics["methods"][metrics["method"]]
    assert shipped["validation_accuracy"] >= metrics["baseline"]["validation_accuracy"]  # never below the baseline
    assert few_shot.is_encoder_head(out) and (out / "encoder" / "model.safetensors").exists()
    assert not any(p.suffix in (".bin", ".pt", ".pkl") for p in out.rglob("*"))

    # the saved folder predicts what was scored: the same test accuracy from a fresh load
    test = load_text_classification(files["test"], label_column="intent", label_names=sorted(LABELS))
    labels, predict_proba = load_predictor(out)
    assert labels == sorted(LABELS)
    assert np.mean(predict_proba(test["text"]).argmax(1) == np.asarray(test["label"])) == pytest.approx(
        metrics["accuracy"]
    )
    assert main(["predict", "--model", str(out), "--text", "my card has not arrived", "--text", "top up failed"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].split("\t")[0] in LABELS and lines[0].endswith("my card has not arrived")


def test_the_baseline_is_shipped_when_the_chosen_method_scores_lower(files, tmp_path, capsys, monkeypatch):
    real = helpers.finetune.baseline

    def winning(*a, **k):
        model, scores = real(*a, **k)
        scores["frozen"]["validation_accuracy"] = 2.0  # above anything a method can score
        return model, scores

    monkeypatch.setattr(helpers.finetune, "baseline", winning)
    out = tmp_path / "fallback"
    assert main(args(files, out)) == 0  # --method lora, 3 steps
    said = capsys.readouterr().out
    assert "lora scored " in said and "below the frozen baseline's 2.000: shipping the baseline instead." in said
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == "frozen" and metrics["chosen_method"] == "lora"
    assert metrics["accuracy"] == metrics["baseline"]["accuracy"] and "lora" in metrics["methods"]
    assert few_shot.is_encoder_head(out) and "shipped: frozen" in (out / "README.md").read_text()
    assert main(["predict", "--model", str(out), "--input", str(files["test"])]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 16


def test_method_mistakes_give_one_line(files, tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(replace(args(files, tmp_path / "out"), {"--method": "magic"}))
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and "argument --method: invalid choice: 'magic'" in err and "\n" not in err
    assert main(args(files, tmp_path / "out", "--full")) == 1  # --method lora and --full
    assert capsys.readouterr().err.strip() == (
        "error: --full asks for --method full, not --method lora; pass one of them."
    )
    with pytest.raises(ValueError, match="method='magic' is not one of auto, frozen, setfit, full, lora"):
        finetune_classifier(files["train"], files["test"], method="magic", output_dir=tmp_path / "out")
    assert main(["predict", "--model", str(tmp_path), "--text", "hi"]) == 1
    assert "has no labels.json; pass a folder written by finetune-classifier" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
