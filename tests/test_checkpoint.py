"""Checkpoints: a run stopped at a step end resumes to the History and weights of an uninterrupted run, and
what a kill or an old version can leave behind is read (or refused with a sentence that says what to do).
A process really killed mid-run is tested end to end in test_resume.py."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import threading

import pytest
import torch
from safetensors.torch import load_file

from helpers import checkpoint, data, training
from tests.tiny import tiny_classifier, tokenizer, two_class_dataset

# 32 examples, 8 per step: 4 steps an epoch, 12 in all; evaluations at steps 3, 6, 9 and 12. At this learning
# rate the eval loss is lowest at step 9 (measured: 0.85, 0.84, 0.70, 0.72): the run ends restoring step 9.
CONFIG = dict(learning_rate=0.05, epochs=3, batch_size=8, eval_every_steps=3, warmup_ratio=0.0, progress=False)


def press_ctrl_c_at(monkeypatch, step: int) -> None:
    """Ctrl-C during optimiser step ``step`` (the flag a real one sets; the loop reads it once per step end)."""

    class Flag(dict):
        reads = 0

        def __getitem__(self, key):
            Flag.reads += 1
            return Flag.reads >= step

    @contextlib.contextmanager
    def pressed(enabled):
        yield Flag(asked=False)

    monkeypatch.setattr(training, "_ctrl_c_at_step_end", pressed)


def run(folder, resume: bool = False, **overrides):
    """(History, weights) of the tiny classifier trained with CONFIG, checkpointing to ``folder``."""
    tok = tokenizer()
    ds = data.tokenize(two_class_dataset(), tok, 16)
    model = tiny_classifier()
    config = training.TrainConfig(checkpoint_dir=str(folder), **{**CONFIG, **overrides})
    history = training.train(model, ds, config, eval_dataset=ds, tokenizer=tok, resume=resume)
    return history, {n: p.detach().clone() for n, p in model.named_parameters()}


def same(a, b) -> bool:
    """Same History (but the wall time) and the same weights, to the last bit."""
    (ha, wa), (hb, wb) = a, b
    ha.train_seconds = hb.train_seconds = 0.0
    return ha == hb and all(torch.equal(wa[n], wb[n]) for n in wa)


def stop_at(monkeypatch, folder, step: int) -> dict:
    """Train until Ctrl-C at ``step``; return the checkpoint's state (strict JSON), with a note added to its History
    so that a resumed run shows it continued that History rather than starting again."""
    press_ctrl_c_at(monkeypatch, step)
    with pytest.raises(training.TrainingInterrupted, match=rf"^Stopped at step {step} of 12 \(checkpoint saved\)$"):
        run(folder)
    monkeypatch.undo()
    state = json.loads((folder / checkpoint.STATE_FILE).read_text(), parse_constant=pytest.fail)
    state["history"]["config"]["extra"] = {"resumed from": step}
    (folder / checkpoint.STATE_FILE).write_text(json.dumps(state))
    return state


def resumed(folder, step: int):
    """(History, weights) of resuming the run stopped at ``step``, checked to continue the checkpoint's History."""
    history, weights = run(folder, resume=True)
    assert history.config["extra"] == {"resumed from": step}
    history.config["extra"] = {}
    return history, weights


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted run (its checkpoint folder has the name every test uses: the History records it)."""
    folder = tmp_path_factory.mktemp("straight") / "ckpt"
    result = run(folder)
    assert result[0].best_step == result[0].restored_step == 9 and result[0].steps == 12  # what CONFIG promises
    return folder, result


@pytest.mark.parametrize("step", [2, 4, 10])  # mid-epoch, an epoch end, after the best evaluation
def test_stopped_run_resumes_to_the_same_history_and_weights(straight, monkeypatch, step):
    folder, expected = straight
    shutil.rmtree(folder, ignore_errors=True)
    state = stop_at(monkeypatch, folder, step)
    assert state["step"] == step and len(state["history"]["train"]) == step
    assert state["epoch"] == (step - 1) // 4 and state["batches_into_epoch"] == (step - 1) % 4 + 1
    assert (state["best_loss"] is None) == (step < 3)  # no evaluation yet: inf, written as null
    assert (folder / checkpoint.BEST_FILE).exists() == (step >= 3)
    if step >= 3:  # the best weights so far: only what training changes
        best = load_file(folder / checkpoint.BEST_FILE)
        assert best.keys() == {n for n, p in tiny_classifier().named_parameters() if p.requires_grad}
    assert same(resumed(folder, step), expected)


def test_a_kill_between_the_renames_resumes_from_the_old_copy(straight, monkeypatch):
    folder = straight[0]
    shutil.rmtree(folder, ignore_errors=True)
    stop_at(monkeypatch, folder, 5)
    tmp, old = folder.with_name("ckpt.tmp"), folder.with_name("ckpt.old")
    os.replace(folder, old)  # killed after the first rename of a save...
    tmp.mkdir()
    (tmp / "model.safetensors").write_bytes(b"half-written")  # ...with the next checkpoint half-written
    assert same(resumed(folder, 5), straight[1])  # the folder holds the same path as the uninterrupted run's
    assert not tmp.exists() and not old.exists()  # the next save cleared both


def test_older_checkpoints_without_the_micro_batch_load(straight, monkeypatch):
    folder = straight[0]
    shutil.rmtree(folder, ignore_errors=True)
    state = stop_at(monkeypatch, folder, 5)
    del state["batch_size"], state["grad_accum_steps"]  # written before the out-of-memory back-off existed
    (folder / checkpoint.STATE_FILE).write_text(json.dumps(state))
    assert same(resumed(folder, 5), straight[1])


@pytest.mark.parametrize("damage", ["truncated weights", "no history"])
def test_a_damaged_checkpoint_is_refused_with_what_to_do(tmp_path, monkeypatch, damage):
    folder = tmp_path / "ckpt"
    state = stop_at(monkeypatch, folder, 2)
    if damage == "truncated weights":
        (folder / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes()[:100])
    else:
        del state["history"]
        (folder / checkpoint.STATE_FILE).write_text(json.dumps(state))
    with pytest.raises(ValueError, match=rf"^The checkpoint in {folder} is damaged or incomplete \(\w+\); delete"):
        run(folder, resume=True)


def test_resume_without_a_checkpoint_starts_from_the_beginning(tmp_path):
    fresh = run(tmp_path / "ckpt", max_steps=2)
    again = run(tmp_path / "new" / "ckpt", resume=True, max_steps=2)  # nothing there yet
    assert again[0].train == fresh[0].train and again[0].steps == 2


def test_only_a_new_empty_or_checkpoint_folder_is_accepted(tmp_path):
    for fine in [None, tmp_path / "missing", tmp_path]:
        checkpoint.check_folder(fine)
    (tmp_path / checkpoint.STATE_FILE).write_text("{}")  # an earlier checkpoint: replaced by the next one
    checkpoint.check_folder(tmp_path)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    for refused in [mine, mine / "notes.txt"]:
        with pytest.raises(ValueError, match=rf"^checkpoint_dir {refused} holds files that are not a training"):
            checkpoint.check_folder(refused)


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread()
    or signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
    reason="Ctrl-C is only caught in the main thread, and only where nothing else handles it",
)
def test_a_first_ctrl_c_sets_the_flag_and_a_second_stops_at_once():
    with checkpoint.ctrl_c_at_step_end(True) as flag:
        assert flag == {"asked": False}
        signal.raise_signal(signal.SIGINT)
        assert flag["asked"]
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with checkpoint.ctrl_c_at_step_end(False) as flag:  # several processes: Ctrl-C is not caught
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
