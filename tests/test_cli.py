"""``python -m helpers finetune-classifier``: trains, writes model + metrics + card into a new folder,
turns every learner mistake into one line on stderr and exit code 1, and never loses or overwrites a run.
(A real Ctrl-C and resume: test_cli_interrupt.py.)"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pandas as pd
import pytest
from transformers import BertConfig, BertForSequenceClassification
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_resume import LABELS, ROOT, make_tiny_model, subprocess_env  # noqa: E402

import helpers.finetune
import helpers.training
from helpers.cli import main
from helpers.data import BANKING77_DIR, load_text_classification, tokenize
from helpers.evaluation import evaluate_classifier
from helpers.finetune_files import sha256_file
from helpers.models import load_classifier

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A tiny model and banking77 train/test CSVs whose label column is called 'intent'."""
    return make_files(tmp_path_factory.mktemp("cli"))


def make_files(root: Path) -> dict[str, Path]:
    """The tiny model and 'intent'-labelled CSVs (8 train, 4 test per label) in ``root``."""
    found = {"model": make_tiny_model(root / "model", dropout=0.0)}
    for split, n in (("train", 8), ("test", 4)):
        frame = pd.read_csv(BANKING77_DIR / f"{split}.csv").rename(columns={"category": "intent"})
        frame = frame[frame["intent"].isin(LABELS)].groupby("intent").head(n)
        frame.to_csv(root / f"{split}.csv", index=False)
        found[split] = root / f"{split}.csv"
    return found


def args(files, out, *extra) -> list[str]:
    return [
        "finetune-classifier",
        "--train",
        str(files["train"]),
        "--test",
        str(files["test"]),
        "--label-column",
        "intent",
        "--output",
        str(out),
        "--model",
        str(files["model"]),
        "--max-steps",
        "3",
        "--batch-size",
        "8",
        "--max-length",
        "12",
        "--lora-rank",
        "4",
        "--method",
        "lora",
        *extra,
    ]


@pytest.fixture(autouse=True)
def baseline_loses():
    """These tests are about the LoRA run: the frozen baseline never wins here (test_cli_few_shot.py: when it does).

    A mock.patch, not monkeypatch: fixtures below call monkeypatch.undo() and the patch must outlive that."""
    real = helpers.finetune.baseline

    def losing(*args, **kwargs):
        model, scores = real(*args, **kwargs)
        scores["frozen"]["validation_accuracy"] = -1.0
        return model, scores

    with mock.patch.object(helpers.finetune, "baseline", losing):
        yield


def test_finetune_writes_a_reloadable_model_metrics_and_card(files, tmp_path, capsys, monkeypatch):
    before = {k: files[k].read_bytes() for k in ("train", "test")}
    out = tmp_path / "run1"
    users = tmp_path / "run1.partial"  # a folder of the user's that an older version deleted
    users.mkdir()
    (users / "keep.txt").write_text("mine")
    texts = count_tokenised_texts(monkeypatch)
    assert main(args(files, out)) == 0
    monkeypatch.undo()
    said = capsys.readouterr().out
    assert "were truncated" in said and f"are in {out}/" in said
    # each text tokenised once for the fine-tune (train, validation, test; truncation counted from that pass) and
    # once by the frozen baseline's sentence encoder
    assert sum(texts) == 2 * (32 + 16)
    assert {
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "labels.json",
        "metrics.json",
        "README.md",
        "history.json",
    } <= {p.name for p in out.iterdir()}
    assert not any(p.suffix in (".bin", ".pt", ".pkl") for p in out.iterdir())
    assert not (out / ".in-progress").exists() and (users / "keep.txt").read_text() == "mine"
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 <= metrics["accuracy"] <= 1 and 0 <= metrics["macro_f1"] <= 1
    assert (
        metrics["steps"] == 3 and metrics["n_train"] + metrics["n_validation"] == 32 and metrics["truncated_train"] > 0
    )
    assert metrics["n_validation"] == 4 and metrics["method"] == metrics["chosen_method"] == "lora"
    assert set(metrics["methods"]) == {"frozen", "lora"} and 0 <= metrics["baseline"]["accuracy"] <= 1
    assert json.loads((out / "labels.json").read_text()) == sorted(LABELS)
    card = (out / "README.md").read_text()
    assert f"{metrics['accuracy']:.4f}" in card and sha256_file(files["train"]) in card and "`train.csv`" in card
    assert str(files["train"].parent) not in card and str(tmp_path) not in card  # no paths of this machine

    # The merged LoRA model reloads as a plain classifier (no peft) with the same test accuracy.
    model, tokenizer = load_classifier(sorted(LABELS), model=out)
    test = tokenize(
        load_text_classification(files["test"], label_column="intent", label_names=sorted(LABELS)), tokenizer, 12
    )
    assert evaluate_classifier(model, test, tokenizer)["accuracy"] == pytest.approx(metrics["accuracy"])
    assert {k: files[k].read_bytes() for k in ("train", "test")} == before  # inputs untouched

    # A second run into the same folder is refused before any work, and the first run's files survive.
    assert main(args(files, out)) == 1
    assert "already has files" in capsys.readouterr().err
    assert main(args(files, out, "--resume")) == 1
    assert "holds a finished run, so there is nothing to resume" in capsys.readouterr().err
    assert json.loads((out / "metrics.json").read_text()) == metrics


def said_last(capsys) -> str:
    """The last line on stderr (progress bars come before it), after checking that no traceback was shown."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return err.strip().splitlines()[-1]


def count_tokenised_texts(monkeypatch) -> list[int]:
    """Record how many texts each tokenizer call gets."""
    calls, real = [], PreTrainedTokenizerBase.__call__

    def counting(self, text=None, *rest, **kwargs):
        calls.append(len(text) if isinstance(text, list) else 1)
        return real(self, text, *rest, **kwargs)

    monkeypatch.setattr(PreTrainedTokenizerBase, "__call__", counting)
    return calls


def replace(argv: list[str], change: dict[str, str]) -> list[str]:
    argv = list(argv)
    for flag, value in change.items():
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    return argv


NUMBERS = [(flag, value) for flag in ("--epochs", "--lr") for value in ("nan", "inf", "0", "-1")] + [
    (flag, value)
    for flag in ("--batch-size", "--lora-rank", "--max-steps", "--max-length", "--checkpoint-every")
    for value in ("0", "-1")
]


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"--label-column": "label"}, "columns are: text, intent. Pass --label-column"),
        ({"--text-column": "intent"}, "'intent' is given as both the text and the label column; pass --text-column"),
        ({"--train": "no_such_file.csv"}, "no_such_file.csv does not exist"),
        ({"--model": "./no_such_model"}, "Model path ./no_such_model does not exist"),
        ({"--lr": "-0.001"}, "--lr -0.001 is not allowed: it must be a finite number above 0 (for example --lr 5e-4)."),
        ({"--max-length": "1"}, "--max-length 1 is not allowed: it must be a whole number of at least 2"),
        *[
            ({flag: value}, f"{flag} {float(value) if flag in ('--epochs', '--lr') else int(value)} is not allowed")
            for flag, value in NUMBERS
        ],
    ],
)
def test_mistakes_give_one_line_and_exit_1(files, tmp_path, capsys, change, expected):
    assert main(replace(args(files, tmp_path / "out"), change)) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and expected in err and "\n" not in err, err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"--batch-size": "2.5"}, "argument --batch-size: invalid int value"),
        ({"--epochs": "three"}, "argument --epochs: invalid float value"),
        ({"--no-such-flag": "1"}, "unrecognized arguments: --no-such-flag"),
    ],
)
def test_unreadable_flags_give_one_line_and_exit_2(files, tmp_path, capsys, change, expected):
    with pytest.raises(SystemExit) as stop:
        main(replace(args(files, tmp_path / "out"), change))
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and err.startswith("error: ") and expected in err and "\n" not in err, err
    assert re.search(r"; see python -m helpers( finetune-classifier)? --help\.$", err), err


def test_a_saved_classifier_for_other_labels_is_refused(files, tmp_path, capsys):
    three = tmp_path / "three_labels"
    config = BertConfig.from_pretrained(
        files["model"], num_labels=3, id2label={0: "a", 1: "b", 2: "c"}, label2id={"a": 0, "b": 1, "c": 2}
    )
    BertForSequenceClassification(config).save_pretrained(three)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (three / name).write_bytes((files["model"] / name).read_bytes())
    assert main(replace(args(files, tmp_path / "out"), {"--model": str(three)})) == 1
    err = said_last(capsys)
    assert err == (
        f"error: The model {three} is a classifier for 3 labels but the training data has 4; pass --model "
        "'<the model it was fine-tuned from>', or train on data with its labels."
    ), err
    assert not (tmp_path / "out").exists()  # checked and created before the model, removed when it failed


def test_an_output_folder_that_cannot_be_made(files, tmp_path, capsys, monkeypatch):
    under_a_file = files["train"] / "run"
    assert main(args(files, under_a_file)) == 1
    assert said_last(capsys) == (
        f"error: Cannot create the output folder {under_a_file} "
        f"({files['train']} is a file); pass a folder you can write to."
    )

    def read_only(self, *a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "mkdir", read_only)  # root ignores chmod, so the refusal is simulated
    assert main(args(files, tmp_path / "locked" / "run")) == 1
    assert said_last(capsys) == (
        f"error: Cannot create the output folder {tmp_path}/locked/run "
        "(permission denied); pass a folder you can write to."
    )


@pytest.fixture
def stopped(files, tmp_path, capsys, monkeypatch) -> tuple[Path, list[str]]:
    """An unfinished run: Ctrl-C (simulated: the flag a real one sets) at the end of step 1 of 3."""

    @contextlib.contextmanager
    def pressed_at_once(enabled):
        yield {"asked": True}

    monkeypatch.setattr(helpers.training, "_ctrl_c_at_step_end", pressed_at_once)
    out = tmp_path / "run"
    argv = args(files, out, "--checkpoint-every", "1")
    assert main(argv) == 130
    monkeypatch.undo()
    err = said_last(capsys)
    assert err == (
        "Stopped at step 1 of 3 (checkpoint saved); to continue, run: python -m helpers " + " ".join(argv) + " --resume"
    ), err
    assert (out / ".in-progress" / "checkpoint" / "trainer_state.json").exists()
    assert not (out / ".in-progress" / "lock").exists()  # released
    return out, argv


def test_resume_with_other_settings_or_data_is_refused(stopped, files, tmp_path, capsys):
    out, argv = stopped
    changed = tmp_path / "train.csv"
    changed.write_bytes(files["train"].read_bytes() + b"one more,card_arrival\n")
    assert main(replace(argv, {"--lr": "0.01", "--seed": "1", "--train": str(changed)}) + ["--resume"]) == 1
    err = said_last(capsys)
    assert err == (
        f"error: Cannot resume the run in {out} with other settings: --lr (0.0005 then, 0.01 now); "
        "--seed (0 then, 1 now); the contents of the train file; resume with the settings it started "
        "with, or pass a new folder to start again."
    ), err
    assert main(argv) == 1  # without --resume: refused too, and told how to continue
    assert f"Output folder {out} holds an unfinished run; add --resume to continue it" in said_last(capsys)
    assert (out / ".in-progress" / "checkpoint" / "trainer_state.json").exists()  # nothing was lost


def test_a_running_run_is_not_joined_and_a_dead_ones_lock_is_taken_over(stopped, capsys):
    out, argv = stopped
    lock = out / ".in-progress" / "lock"
    lock.write_text(str(os.getpid()))  # a live process holds it
    for extra in ([], ["--resume"]):
        assert main(argv + extra) == 1
        assert f"Another run (process {os.getpid()}) is writing into {out}" in said_last(capsys)
    dead = subprocess.Popen(["true"])
    dead.wait()
    lock.write_text(str(dead.pid))
    assert main(argv + ["--resume"]) == 0
    said = capsys.readouterr().out
    assert f"Taking over the lock of an earlier run (process {dead.pid})" in said
    assert "Resuming the run" in said and json.loads((out / "history.json").read_text())["train"][-1]["step"] == 3
    assert not (out / ".in-progress").exists()


def test_a_damaged_checkpoint_gives_a_sentence(stopped, capsys):
    out, argv = stopped
    checkpoint = out / ".in-progress" / "checkpoint"
    (checkpoint / "model.safetensors").write_bytes(b"half-written")
    assert main(argv + ["--resume"]) == 1
    err = said_last(capsys)
    assert err == (
        f"error: The checkpoint in {checkpoint} is damaged or incomplete (SafetensorError); delete that "
        "folder to train from the start."
    ), err


def test_a_diverging_run_stops_and_saves_nothing(files, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(replace(args(files, out), {"--lr": "1e6", "--max-steps": "20", "--checkpoint-every": "1"})) == 1
    err = said_last(capsys)
    assert err.startswith("error: Training diverged at step ") and "the loss became nan" in err, err
    assert "learning rate (1e+06) is too high" in err and "\n" not in err
    assert not out.exists()  # no model saved as if it had worked, no checkpoint of a broken run: as before


def test_real_process_exits_nonzero_without_traceback(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "helpers",
            "finetune-classifier",
            "--train",
            "missing.csv",
            "--test",
            "missing.csv",
            "--output",
            str(tmp_path / "out"),
        ],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and done.stderr.strip().count("\n") == 0, done.stderr
    assert done.stderr.startswith("error: missing.csv does not exist")


def test_run_notebooks_is_still_there(capsys):
    assert main(["run-notebooks", "--pattern", "no_such_notebook*"]) == 1
    assert "No notebooks match" in capsys.readouterr().err


def test_the_cli_card_adds_a_reviewers_sections_only_when_given():
    from helpers import finetune_files  # noqa: PLC0415

    facts = dict(lora_rank=None, skip_labels=None, model="m", lr=1e-4, batch_size=8, seed=0, text_column="text")
    facts |= dict(label_column="label", train="train.csv", test="test.csv", train_sha256="aa", test_sha256="bb")
    metrics = dict(steps=3, n_train=4, n_test=2, max_length=32, truncated_train=0, truncated_test=0)
    metrics |= dict(accuracy=0.5, macro_f1=0.4)
    plain = finetune_files.model_card(["a", "b"], metrics, facts)
    assert "## Intended use" not in plain and "## Memorisation check" not in plain
    extra = dict(intended_use="Route tickets.", out_of_scope="Credit decisions.", memorisation="No canary exposed.")
    card = finetune_files.model_card(["a", "b"], metrics, facts | extra)
    assert card.startswith(plain.split("\n## Data")[0].split("\n")[0])
    assert "## Intended use\nRoute tickets." in card and "## Out-of-scope use\nCredit decisions." in card
    assert "## Memorisation check\nNo canary exposed." in card and "sha256 `aa`" in card
