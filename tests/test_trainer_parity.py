"""helpers.lessons.trainer_parity: transformers.Trainer given our TrainConfig trains as our loop does."""

from __future__ import annotations

import pytest
import torch

from helpers import data
from helpers.classifier import fine_tune_classifier
from helpers.lessons import trainer_parity as tp
from helpers.training import TrainConfig
from tests.tiny import tiny_classifier, tokenizer, two_class_dataset


def _no_dropout_tiny(labels):
    model = tiny_classifier(n_labels=len(labels), seed=3)
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    return model, tokenizer()


def test_trainer_arguments_repeat_the_config(tmp_path):
    config = TrainConfig(
        learning_rate=3e-4, batch_size=4, weight_decay=0.1, warmup_ratio=0.2, seed=7, max_grad_norm=0.5
    )
    args = tp.trainer_arguments(config, 25, str(tmp_path))
    assert (args.max_steps, args.per_device_train_batch_size, args.learning_rate) == (25, 4, 3e-4)
    assert (args.warmup_steps, args.weight_decay, args.max_grad_norm, args.seed) == (5, 0.1, 0.5, 7)
    assert args.save_strategy == "no" and args.report_to == [] and not args.bf16
    best = tp.trainer_arguments(config, 25, str(tmp_path), keep_best=True)
    assert best.load_best_model_at_end and best.eval_strategy == "epoch" and best.metric_for_best_model == "eval_loss"


def test_full_batch_steps_give_the_same_losses(monkeypatch):
    """Without dropout and with one batch per step, the two differ only in float rounding, step after step."""
    monkeypatch.setattr(tp.models, "load_classifier", _no_dropout_tiny)
    monkeypatch.setattr("helpers.classifier.load_classifier", lambda labels, model=None: _no_dropout_tiny(labels))
    train, labels = two_class_dataset(repeat=2), ["card", "fee"]
    config = TrainConfig(
        learning_rate=5e-3, max_steps=6, batch_size=len(train), weight_decay=0.1, progress=False, mixed_precision="no"
    )
    ours = fine_tune_classifier(train, config, labels=labels, max_length=16)
    theirs = tp.trainer_fine_tune(ours.train_data, labels, config, ours.history.total_steps)
    curves = tp.loss_curves(ours.history, theirs["losses"])
    assert list(curves.columns) == ["our loop", "Trainer"] and len(curves) == 6
    assert (curves["our loop"] - curves["Trainer"]).abs().max() < 1e-4
    assert curves["our loop"].iloc[-1] < curves["our loop"].iloc[0] - 1e-3  # it learned: the match is not trivial
    table = tp.compare(ours.model.eval(), theirs["model"], ours.tokenizer, {"train": ours.train_data})
    assert table.loc["train", "different predictions"] == 0 and table.loc["train", "max logit gap"] < 1e-3


def test_side_by_side_keeps_the_best_weights_and_reports_both(monkeypatch):
    monkeypatch.setattr(tp.models, "load_classifier", _no_dropout_tiny)
    monkeypatch.setattr("helpers.classifier.load_classifier", lambda labels, model=None: _no_dropout_tiny(labels))
    pool, labels = two_class_dataset(repeat=3), ["card", "fee"]
    train, val = data.stratified_split(pool, test_size=0.25, seed=0)
    config = TrainConfig(learning_rate=5e-3, epochs=2, batch_size=len(train), progress=False, mixed_precision="no")
    ours = fine_tune_classifier(train, config, eval_data=val, labels=labels, max_length=16)
    result = tp.side_by_side(ours, labels, config, ours.eval_data)
    losses = result["eval_losses"]
    assert list(losses.index) == [1, 2] and (losses["our loop"] - losses["Trainer"]).abs().max() < 1e-4
    row = result["table"].loc["test"]
    assert row["examples"] == len(val) and row["accuracy gap (messages)"] == 0
    assert row["our loop"].estimate == pytest.approx(row["Trainer"].estimate)


def test_parity_steps_short_only_in_smoke():
    from helpers.runtime import profile  # noqa: PLC0415

    assert tp.parity_steps(profile("smoke")) >= 1
    assert tp.parity_steps(profile("workshop")) is None and tp.parity_steps(profile("full")) is None
