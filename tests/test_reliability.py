"""Bad input gets one clear error and loses nothing; out-of-memory recovery; determinism; offline and safe.

One test per row of the table in docs/reliability.md.
"""

from __future__ import annotations

import json
import math
import re
import socket
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from datasets import Dataset
from test_resume import LABELS, make_tiny_model, run_tiny  # noqa: E402

import helpers.models
from helpers.adapters import add_lora
from helpers.data import load_text_classification, tokenize_and_count
from helpers.finetune import finetune_classifier, load_train_test
from helpers.history import History
from helpers.models import load_classifier
from helpers.run_folder import RunFolder
from helpers.training import TrainConfig, TrainingDiverged

PACKAGE = Path(__file__).resolve().parent.parent / "helpers"


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model", dropout=0.0)


pytestmark = pytest.mark.usefixtures("one_thread")


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def strict_json(text: str):
    """Parse as strict JSON: bare NaN / Infinity (which Python's json writes by default) fail."""
    return json.loads(text, parse_constant=lambda word: pytest.fail(f"{word} is not JSON"))


# --- bad input: one test per table row ---------------------------------------------------------------
def test_missing_and_empty_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_text_classification(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match="is empty"):
        load_text_classification(write(tmp_path / "empty.csv", ""))
    with pytest.raises(ValueError, match="header but no rows"):
        load_text_classification(write(tmp_path / "header.csv", "text,label\n"))


def test_wrong_columns_lists_found_columns_and_the_argument(tmp_path):
    path = write(tmp_path / "tickets.csv", "message,intent\nhello,greet\n")
    with pytest.raises(
        ValueError,
        match=r"column 'text' not found in tickets.csv; columns are: message, intent\. "
        r"Pass text_column=",
    ):
        load_text_classification(path)
    with pytest.raises(ValueError, match=r"columns are: message, intent\. Pass label_column="):
        load_text_classification(path, text_column="message")


def test_empty_and_non_string_texts(tmp_path):
    with pytest.raises(ValueError, match=r"1 empty texts in column 'text' \(first at lines \[3\]\)"):
        load_text_classification(write(tmp_path / "a.csv", "text,label\nhi,x\n  ,y\n"))
    with pytest.raises(ValueError, match=r"lists or objects instead of text .*lines \[2\]"):
        load_text_classification(
            write(tmp_path / "b.jsonl", '{"text": "hi", "label": "x"}\n{"text": ["a", "b"], "label": "y"}\n')
        )
    with pytest.raises(ValueError, match=r"empty labels in column 'label'"):
        load_text_classification(write(tmp_path / "c.csv", "text,label\nhi,x\nho,\n"))
    numbers = load_text_classification(
        write(tmp_path / "d.jsonl", '{"text": 42, "label": 1}\n{"text": "hi", "label": 2}\n')
    )
    assert sorted(numbers["text"]) == ["42", "hi"]  # numbers are read as their text, documented


def test_test_labels_unseen_in_training(tmp_path):
    train = write(tmp_path / "train.csv", "text,label\na,x\nb,y\n")
    test = write(tmp_path / "test.csv", "text,label\nc,x\nd,z\n")
    with pytest.raises(ValueError, match=r"test.csv has labels not in label_names: \['z'\]"):
        load_train_test(train, test, "text", "label")


def test_a_single_class(tmp_path):
    train = write(tmp_path / "train.csv", "text,label\na,x\nb,x\n")
    with pytest.raises(ValueError, match="single label .'x'.; a classifier needs examples of at least two"):
        load_train_test(train, train, "text", "label")
    with pytest.raises(ValueError, match="at least 2 labels"):
        load_classifier(["x"])


def test_non_utf8_bytes(tmp_path):
    with pytest.raises(ValueError, match=r"latin.csv is not UTF-8 text \(byte 14, line 2\); re-save it as UTF-8"):
        load_text_classification(write(tmp_path / "latin.csv", b"text,label\ncaf\xe9,x\nhi,y\n"))
    with pytest.raises(ValueError, match="is not UTF-8"):
        load_text_classification(write(tmp_path / "latin.jsonl", b'{"text": "caf\xe9", "label": "x"}\n'))


def test_texts_over_the_max_length_are_truncated_and_counted(tiny_dir):
    _, tokenizer = load_classifier(LABELS, model=tiny_dir)
    texts = Dataset.from_dict({"text": ["short", "word " * 500, "word " * 10, "word " * 6], "label": [0, 1, 0, 1]})
    for max_length, cut in ((16, 1), (8, 2), (7, 3)):  # "word " * 6 is 8 tokens with [CLS] and [SEP]
        tokens, n = tokenize_and_count(texts, tokenizer, max_length)
        assert n == cut and max(len(ids) for ids in tokens["input_ids"]) == max_length
        assert tokens.column_names == ["input_ids", "token_type_ids", "attention_mask", "labels"]


def test_a_model_path_that_does_not_exist(tmp_path):
    with pytest.raises(FileNotFoundError, match="Model path .* does not exist"):
        load_classifier(["a", "b"], model=str(tmp_path / "no_such_model"))
    with pytest.raises(OSError, match="Could not load 'nobody/no-such-model' from local files"):
        load_classifier(["a", "b"], model="nobody/no-such-model")  # a hub id, offline: no download attempted


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("learning_rate", -1e-4, "learning_rate must be > 0"),
        ("batch_size", 0, "batch_size must be >= 1"),
        ("epochs", 0, "epochs must be > 0"),
    ],
)
def test_config_values_out_of_range(field, value, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{field: value})


def test_lora_rank_zero(tiny_dir, tmp_path):
    model, _ = load_classifier(LABELS, model=tiny_dir)
    with pytest.raises(ValueError, match="LoRA rank must be a positive integer"):
        add_lora(model, rank=0)
    with pytest.raises(ValueError, match="lora_rank=0 is not allowed"):  # before any file is read
        finetune_classifier("missing.csv", "missing.csv", output_dir=tmp_path / "out", lora_rank=0)


def test_nothing_the_user_owns_is_overwritten(tmp_path, tiny_dir):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="already has files"):
        RunFolder.start(mine, {})
    with pytest.raises(FileExistsError, match="existing file"):
        RunFolder.start(mine / "notes.txt", {})
    with pytest.raises(FileNotFoundError, match="no unfinished run, so there is nothing to resume"):
        RunFolder.start(mine, {}, resume=True)
    with pytest.raises(ValueError, match="not a training checkpoint"):
        run_tiny(tiny_dir, checkpoint_dir=mine, max_steps=1)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"] and (mine / "notes.txt").read_text() == "keep me"
    run = RunFolder.start(tmp_path / "new", {"lr": 1})
    assert [p.name for p in run.out.iterdir()] == [".in-progress"] and run.checkpoint_dir.parent == run.work
    run.abandon()
    assert not (tmp_path / "new").exists()  # it made the folder, so it removes it; mine is never touched


# --- the files a user brings: separators, JSON, labels as written ------------------------------------------
@pytest.mark.parametrize("sep", [",", ";", "\t", "|"])
def test_csv_separator_is_sniffed(tmp_path, sep):
    rows = [f"text{sep}label", f'"hello, there; you|x"{sep}a', f"bye{sep}b"]  # quoted text holds the others
    data = load_text_classification(write(tmp_path / "sep.csv", "\n".join(rows) + "\n"))
    assert sorted(data["text"]) == ["bye", "hello, there; you|x"] and data.features["label"].names == ["a", "b"]


def test_csv_rows_with_extra_fields_name_the_line_and_the_separator(tmp_path):
    with pytest.raises(
        ValueError,
        match=r"bad.csv could not be read as CSV separated by ';': line 3 has 3 fields but "
        r"the header has 2; put texts that contain ';' in double quotes",
    ):
        load_text_classification(write(tmp_path / "bad.csv", "text;label\nhi;a\nho;hum;b\n"))


def test_a_broken_jsonl_line_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"broken.jsonl line 3 is not valid JSON \(Expecting .*\); fix or remove"):
        load_text_classification(
            write(tmp_path / "broken.jsonl", '{"text": "a", "label": "x"}\n\n{"text": "b", "label": "y"\n')
        )
    with pytest.raises(ValueError, match=r"list.jsonl line 2 is not a JSON object"):
        load_text_classification(write(tmp_path / "list.jsonl", '{"text": "a", "label": "x"}\n["b", "y"]\n'))


def test_a_json_array_of_objects_is_read(tmp_path):
    data = load_text_classification(
        write(tmp_path / "a.json", '[{"text": "a", "label": "x"},\n {"text": "b", "label": "y"}]')
    )
    assert sorted(data["text"]) == ["a", "b"] and data.features["label"].names == ["x", "y"]
    lines = load_text_classification(
        write(tmp_path / "lines.json", '{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n')
    )
    assert len(lines) == 2  # a .json file of JSON lines is read as such
    with pytest.raises(ValueError, match=r"bad.json is not valid JSON \(line 2, column 1: .*\); fix it"):
        load_text_classification(write(tmp_path / "bad.json", '[{"text": "a", "label": "x"},\n]'))
    with pytest.raises(ValueError, match=r"empty.json has 1 empty labels in column 'label' \(first at examples \[2\]"):
        load_text_classification(write(tmp_path / "empty.json", '[{"text": "a", "label": "x"}, {"text": "b"}]'))


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_labels_and_texts_are_the_strings_written(tmp_path, suffix):
    rows = [
        ("007", "007"),
        ("7", "7"),
        ("NA", "NA"),
        ("None", "None"),
        ("null", "null"),
        ("1.50", "1.5"),
        ("flag", "true"),
    ]
    if suffix == ".csv":
        text = "text,label\n" + "".join(f"{t},{label}\n" for t, label in rows)
    else:  # JSON numbers and booleans keep their JSON spelling; quoted strings stay exactly as they are
        text = "".join(json.dumps({"text": t, "label": label}) + "\n" for t, label in rows[:5])
        text += '{"text": "1.50", "label": 1.5}\n{"text": "flag", "label": true}\n'
    data = load_text_classification(write(tmp_path / f"labels{suffix}", text))
    names = data.features["label"].names
    assert sorted(names) == sorted(["007", "7", "NA", "None", "null", "1.5", "true"])
    assert sorted(data["text"]) == sorted(t for t, _ in rows)  # "007" stays "007", "NA" stays "NA"
    kept = load_text_classification(tmp_path / f"labels{suffix}", skip_labels=["NA", "None", "null"])
    assert sorted(kept.features["label"].names) == ["007", "1.5", "7", "true"] and len(kept) == 4
    with pytest.raises(ValueError, match="empty labels"):  # an empty cell is still a mistake
        load_text_classification(write(tmp_path / "blank.csv", "text,label\na,NA\nb, \n"))


def test_the_same_column_for_text_and_label(tmp_path):
    with pytest.raises(ValueError, match="'intent' is given as both the text and the label column"):
        load_text_classification(write(tmp_path / "t.csv", "intent\nx\n"), "intent", "intent")


# --- a run that diverges stops at once, and every JSON file stays valid -----------------------------------
def test_divergence_stops_training_at_once(tiny_dir, tmp_path):
    with pytest.raises(
        TrainingDiverged,
        match=r"Training diverged at step (\d+): the loss became nan, most likely "
        r"because the learning rate \(1e\+06\) is too high",
    ) as stopped:
        run_tiny(tiny_dir, learning_rate=1e6, checkpoint_dir=tmp_path / "ckpt", checkpoint_every_steps=1)
    step = int(re.search(r"at step (\d+)", str(stopped.value)).group(1))
    state = strict_json((tmp_path / "ckpt" / "trainer_state.json").read_text())  # the step before it diverged
    assert step >= 2 and state["step"] == step - 1 and state["best_loss"] is None  # no evaluation yet: null
    assert all(math.isfinite(r["loss"]) for r in state["history"]["train"])


def test_json_files_are_strict_json(tmp_path):
    history = History(total_steps=2)
    history.log_train(1, 0, float("nan"), 1e-3, 8)
    history.log_eval(1, {"eval_loss": float("inf")})
    history.save(tmp_path / "h.json")
    saved = strict_json((tmp_path / "h.json").read_text())
    assert saved["train"][0]["loss"] is None and saved["evals"][0]["eval_loss"] is None


# --- GPU memory: an out-of-memory error halves the micro-batch ------------------------------------------
def _fail_big_batches(model, after_calls: int, limit: int = 4):
    """Make ``model`` raise CUDA's out-of-memory error on micro-batches above ``limit`` after some calls."""
    forward, calls = model.forward, {"n": 0}

    def guarded(*args, **kwargs):
        calls["n"] += model.training
        if model.training and calls["n"] > after_calls and len(kwargs["input_ids"]) > limit:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return forward(*args, **kwargs)

    model.forward = guarded


def test_out_of_memory_halves_the_micro_batch_and_continues(tiny_dir, capsys, monkeypatch):
    real = helpers.models.AutoModelForSequenceClassification.from_pretrained

    def patched(*args, **kwargs):
        model = real(*args, **kwargs)
        _fail_big_batches(model, after_calls=3)
        return model

    monkeypatch.setattr(helpers.models.AutoModelForSequenceClassification, "from_pretrained", patched)
    recovered, _ = run_tiny(tiny_dir, batch_size=8, max_steps=8)
    monkeypatch.undo()
    said = capsys.readouterr().out
    assert said.count("Out of memory") == 1 and "micro-batch 8 -> 4, gradient accumulation 1 -> 2" in said
    assert recovered.config["extra"]["oom_micro_batch"] == 4
    plain, _ = run_tiny(tiny_dir, batch_size=8, max_steps=8)
    assert recovered.steps == plain.steps == 8
    assert [r["examples"] for r in recovered.train] == [r["examples"] for r in plain.train]
    assert recovered.train[:3] == plain.train[:3]  # identical before the error
    for a, b in zip(recovered.train[3:], plain.train[3:]):  # same examples per step, summed in two halves
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-4)


# --- determinism ------------------------------------------------------------------------------------------
def test_same_seed_same_history_on_cpu(tiny_dir):
    first, _ = run_tiny(tiny_dir, max_steps=8)
    second, _ = run_tiny(tiny_dir, max_steps=8)
    assert first.train == second.train and first.evals == second.evals
    assert first.to_dict() | {"train_seconds": 0} == second.to_dict() | {"train_seconds": 0}


# --- offline and safe -------------------------------------------------------------------------------------
def _package_source() -> dict[Path, str]:
    return {p: p.read_text() for p in PACKAGE.rglob("*.py")}


def test_no_remote_code_and_no_unsafe_torch_load():
    for path, text in _package_source().items():
        assert not re.search(r"trust_remote_code\s*=\s*True", text), path
        for call in re.finditer(r"torch\.load\(([^)]*)\)", text):
            assert re.search(r"weights_only\s*=\s*True", call.group(1)), f"{path}: {call.group(0)}"
        assert not re.search(r"use_safetensors\s*=\s*False|safe_serialization\s*=\s*False", text), path


def test_weights_load_from_safetensors_only(tmp_path, tiny_dir):
    model, _ = load_classifier(LABELS, model=tiny_dir)
    assert (tiny_dir / "model.safetensors").exists()
    pickled = tmp_path / "pickled"
    model.config.save_pretrained(pickled)
    torch.save(model.state_dict(), pickled / "pytorch_model.bin")  # pickled weights only
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (pickled / name).write_bytes((tiny_dir / name).read_bytes())
    assert not (pickled / "model.safetensors").exists()
    with pytest.raises(OSError):
        load_classifier(LABELS, model=pickled)


def test_the_suite_blocks_the_network():
    with pytest.raises(RuntimeError, match="must run offline"):
        socket.create_connection(("1.1.1.1", 443), timeout=1)
