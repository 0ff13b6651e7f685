"""Overfitting helpers: slicing, dropout, remedies, the grid, summaries, and one real (tiny) run."""

from __future__ import annotations

from dataclasses import replace

import pytest
from datasets import Dataset
from transformers import BertConfig, BertForSequenceClassification

from helpers import data, models
from helpers.adapters import set_dropout
from helpers.history import History
from helpers.lessons import overfitting as O
from helpers.runtime import profile

LABELS = ["card_arrival", "exchange_rate"]


@pytest.fixture(scope="module")
def slice_data():
    _, tokenizer = models.load_classifier(LABELS)
    rows = {
        "text": [
            "where is my card",
            "card not here",
            "still waiting for card",
            "rate for euros",
            "exchange rate today",
            "how much is a dollar",
        ],
        "label": [0, 0, 0, 1, 1, 1],
    }
    ds = data.tokenize(Dataset.from_dict(rows), tokenizer, 16)
    return O.SliceData(LABELS, ds, ds.select([0, 3]), tokenizer, 16)


def test_train_slice_takes_per_class_examples(slice_data):
    labels = slice_data.train_slice(2)["labels"]
    assert sorted(labels) == [0, 0, 1, 1]
    assert len(slice_data.train_slice(10)) == 6


def test_set_dropout_changes_every_dropout_layer():
    net = BertForSequenceClassification(
        BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, num_labels=2)
    )
    set_dropout(net, 0.3)
    probs = {m.p for m in net.modules() if m.__class__.__name__ == "Dropout"}
    assert probs == {0.3} and net.config.hidden_dropout_prob == net.config.attention_probs_dropout_prob == 0.3
    with pytest.raises(ValueError, match="dropout"):
        set_dropout(net, 1.0)


def test_remedies_change_one_thing_each():
    base = O.SliceSettings()
    fields = base.__dataclass_fields__
    changed = {
        name: {f for f in fields if getattr(s, f) != getattr(base, f)}
        for name, s in O.remedies(base, more_data_per_class=8).items()
    }
    assert changed == {
        "baseline (overfits)": set(),
        "early stopping": {"early_stopping_patience", "restore_best"},
        "weight decay 1.0": {"weight_decay"},
        "dropout 0.3": {"dropout"},
        "lower LR (÷10)": {"learning_rate"},
        "LoRA r=4 instead of all weights": {"rank"},
        "more data (8/intent, same steps)": {"per_class", "epochs"},
    }
    remedies = O.remedies(base, 8)
    assert remedies["lower LR (÷10)"].learning_rate == pytest.approx(base.learning_rate / 10)
    more = remedies["more data (8/intent, same steps)"]
    assert more.per_class * more.epochs == base.per_class * base.epochs  # 8 x 10 = 2 x 40 examples seen


def test_grid_points_cover_every_combination():
    grid = O.grid_for(profile("full"))
    points = grid.points()
    assert len(points) == 54 and len({O.key(p) for p in points}) == 54
    assert len(O.grid_for(profile("smoke")).points()) == 2


def test_quick_remedies_keep_the_ones_the_checks_use():
    quick = O.remedies(O.SliceSettings(), more_data_per_class=8, quick=True)
    assert "early stopping" in quick and "baseline (overfits)" in quick and len(quick) == 4


def fake_run(evals: list[float], restored: int | None = None) -> dict:
    h = History()
    for step, loss in enumerate(evals):
        h.log_train(step + 1, 0, 1.0 / (step + 1), 1e-3, 8)
        h.log_eval(step, {"eval_loss": loss})
    h.best_step = min(range(len(evals)), key=evals.__getitem__)
    h.restored_step = restored
    return {"history": h.to_dict(), "val_accuracy": 0.5, "train_size": 30}


def test_summarize_measures_the_overfit_gap():
    row = O.summarize(fake_run([2.0, 1.0, 1.5, 1.8]))
    assert row["best step"] == 1 and row["min val loss"] == 1.0
    assert row["overfit gap"] == pytest.approx(0.8) and row["val loss of final weights"] == 1.8
    restored = O.summarize(fake_run([2.0, 1.0, 1.5, 1.8], restored=1))
    assert restored["val loss of final weights"] == 1.0
    assert O.turning_point(History.from_dict(fake_run([3.0, 2.0, 2.5])["history"])) == 1


def test_run_slice_trains_and_grid_reuses_known_runs(slice_data, monkeypatch):
    settings = O.SliceSettings(per_class=2, epochs=2, rank=2, batch_size=4, learning_rate=1e-3, evals_per_epoch=1.0)
    run = O.run_slice(settings, slice_data)
    h = History.from_dict(run["history"])
    assert run["train_size"] == 4 and h.steps == 2 and [r["step"] for r in h.evals] == [0, 1, 2]  # start, epochs
    assert h.evals[-1]["eval_loss"] != h.evals[0]["eval_loss"]  # the weights moved
    assert 0 <= run["val_accuracy"] <= 1 and "accuracy" in h.evals[-1]  # validation accuracy at every evaluation
    # A known point must come from `done`; only the new point trains (a fake run_slice records what trains).
    trained = []
    monkeypatch.setattr(O, "run_slice", lambda s, sd: trained.append(s) or {"history": {}, "val_accuracy": 0.0})
    grid = O.Grid((2,), (1e-3, 1e-4), (2,), (2,))
    results = O.run_grid(grid, replace(settings, per_class=9), slice_data, done=[run])
    assert trained == [replace(settings, learning_rate=1e-4)]
    reused = results[O.key({"per_class": 2, "learning_rate": 1e-3, "epochs": 2, "rank": 2})]
    assert reused["history"] is run["history"] and reused["val_accuracy"] == run["val_accuracy"]
