"""``python -m helpers finetune-classifier``: trains, writes model + metrics + card into a new folder,
and turns every learner mistake into one line on stderr and exit code 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_resume import LABELS, ROOT, make_tiny_model, subprocess_env  # noqa: E402

from helpers.cli import main
from helpers.data import BANKING77_DIR


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A tiny model and banking77 train/test CSVs whose label column is called 'intent'."""
    root = tmp_path_factory.mktemp("cli")
    found = {"model": make_tiny_model(root / "model", dropout=0.0)}
    for split, n in (("train", 8), ("test", 4)):
        frame = pd.read_csv(BANKING77_DIR / f"{split}.csv").rename(columns={"category": "intent"})
        frame = frame[frame["intent"].isin(LABELS)].groupby("intent").head(n)
        frame.to_csv(root / f"{split}.csv", index=False)
        found[split] = root / f"{split}.csv"
    return found


def args(files, out, *extra) -> list[str]:
    return ["finetune-classifier", "--train", str(files["train"]), "--test", str(files["test"]),
            "--label-column", "intent", "--output", str(out), "--model", str(files["model"]),
            "--max-steps", "3", "--batch-size", "8", "--max-length", "12", "--lora-rank", "4", *extra]


def test_finetune_writes_a_reloadable_model_metrics_and_card(files, tmp_path, capsys):
    before = {k: files[k].read_bytes() for k in ("train", "test")}
    out = tmp_path / "run1"
    assert main(args(files, out)) == 0
    said = capsys.readouterr().out
    assert "were truncated" in said and f"are in {out}/" in said
    assert {"model.safetensors", "config.json", "tokenizer.json", "labels.json", "metrics.json", "README.md",
            "history.json"} <= {p.name for p in out.iterdir()}
    assert not any(p.suffix in (".bin", ".pt", ".pkl") for p in out.iterdir())
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["accuracy"] <= 1 and 0 <= metrics["macro_f1"] <= 1
    assert metrics["steps"] == 3 and metrics["n_train"] == 32 and metrics["truncated_train"] > 0
    assert json.loads((out / "labels.json").read_text()) == sorted(LABELS)
    assert f"{metrics['accuracy']:.4f}" in (out / "README.md").read_text()

    # The merged LoRA model reloads as a plain classifier (no peft) with the same test accuracy.
    from helpers.data import load_text_classification, tokenize
    from helpers.evaluation import evaluate_classifier
    from helpers.models import load_classifier
    model, tokenizer = load_classifier(sorted(LABELS), model=out)
    test = tokenize(load_text_classification(files["test"], label_column="intent", label_names=sorted(LABELS)),
                    tokenizer, 12)
    assert evaluate_classifier(model, test, tokenizer)["accuracy"] == pytest.approx(metrics["accuracy"])
    assert {k: files[k].read_bytes() for k in ("train", "test")} == before  # inputs untouched

    # A second run into the same folder is refused before any work, and the first run's files survive.
    assert main(args(files, out)) == 1
    assert "already has files" in capsys.readouterr().err
    assert json.loads((out / "metrics.json").read_text()) == metrics


@pytest.mark.parametrize("change, expected", [
    ({"--label-column": "label"}, "columns are: text, intent. Pass --label-column"),
    ({"--train": "no_such_file.csv"}, "no_such_file.csv does not exist"),
    ({"--model": "./no_such_model"}, "Model path ./no_such_model does not exist"),
    ({"--lora-rank": "0"}, "LoRA rank must be a positive integer"),
    ({"--lr": "-0.001"}, "learning_rate must be > 0"),
    ({"--batch-size": "0"}, "batch_size must be >= 1"),
])
def test_mistakes_give_one_line_and_exit_1(files, tmp_path, capsys, change, expected):
    argv = args(files, tmp_path / "out")
    for flag, value in change.items():
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and expected in err and "\n" not in err, err
    assert not (tmp_path / "out").exists()


def test_real_process_exits_nonzero_without_traceback(tmp_path):
    done = subprocess.run([sys.executable, "-m", "helpers", "finetune-classifier", "--train", "missing.csv",
                           "--test", "missing.csv", "--output", str(tmp_path / "out")],
                          cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and done.stderr.strip().count("\n") == 0, done.stderr
    assert done.stderr.startswith("error: missing.csv does not exist")


def test_run_notebooks_is_still_there(capsys):
    assert main(["run-notebooks", "--pattern", "no_such_notebook*"]) == 1
    assert "No notebooks match" in capsys.readouterr().err
