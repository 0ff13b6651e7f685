"""helpers.lessons.few_shot and few_shot_scores: splits, training apart from the test split, one final scoring."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import cache, runtime
from helpers.lessons import few_shot as fs
from helpers.lessons import few_shot_scores as scores
from tests.tiny import TEXTS, two_class_dataset


class BagOfWords:
    """A stand-in embedder: unit-length word counts over the tiny dataset's vocabulary (no model, no download)."""

    def __init__(self):
        self.vocab = sorted({w for texts in TEXTS.values() for t in texts for w in t.split()})

    def encode(self, texts, normalize_embeddings=True, batch_size=64, show_progress_bar=False):
        x = np.array([[t.split().count(w) for w in self.vocab] for t in texts], dtype=float) + 1e-6
        return x / np.linalg.norm(x, axis=1, keepdims=True)


def row(method, per_intent, val_accuracy, right):
    return {"method": method, "per_intent": per_intent, "val_accuracy": val_accuracy, "right": right}


def hits(predictions, labels):
    return [int(p == y) for p, y in zip(predictions, labels)]


def test_first_per_class_is_balanced_nested_and_skips():
    data = two_class_dataset(repeat=4)  # 16 per label
    four, eight = fs.first_per_class(data, 4), fs.first_per_class(data, 8)
    assert sorted(np.bincount(four["label"])) == [4, 4]
    assert set(four["text"]) <= set(eight["text"])
    held = fs.first_per_class(data, 2, skip=14)
    assert len(held) == 4 and np.bincount(held["label"]).tolist() == [2, 2]
    assert fs.first_per_class(data, {0: 3})["label"] == [0, 0, 0]


def test_splits_are_disjoint_and_sized():
    s = fs.Settings(intents=runtime.CORE_INTENTS[:3], sizes=(4,), test_per_class=5)
    pool, val, test = fs.splits(s)
    assert np.bincount(val["label"]).tolist() == [10, 10, 10]
    assert np.bincount(test["label"]).tolist() == [5, 5, 5]
    assert not set(val["text"]) & set(pool["text"])
    assert len(pool) + len(val) == len(fs.data.load_banking77("train", intents=s.intents))


def test_settings_follow_the_profile():
    smoke, workshop, full = (fs.settings(runtime.profile(n)) for n in ("smoke", "workshop", "full"))
    assert smoke.sizes == (8,) and len(smoke.intents) == 10
    assert workshop.sizes == (4, 8, 16) and len(workshop.intents) == 10
    assert full.intents is None and 10 in full.sizes and len(full.lr_grid["full"]) > 1


def test_labelled_buys_counts_and_rejects_unknown_intents():
    data = two_class_dataset()
    assert np.bincount(fs.labelled(data, {"card": 3, "fee": 1})["label"]).tolist() == [3, 1]
    with pytest.raises(ValueError, match="Unknown intents"):
        fs.labelled(data, {"cards": 2})


def test_frozen_head_learns_and_reports_costs():
    data = two_class_dataset(repeat=4)
    train, val, test = fs.first_per_class(data, 4), fs.first_per_class(data, 2, skip=4), data
    fitted = fs.frozen_head(BagOfWords(), train, val, c_grid=(1.0, 10.0))
    out = fitted.row
    assert out["method"] == "frozen + head" and out["per_intent"] == 4 and out["val_accuracy"] == 1.0
    assert out["setting"] in ("C=1", "C=10") and out["train_seconds"] > 0
    assert "predictions" not in out and "ms_per_query" not in out  # training never scores the test split
    (row,) = scores.score_test([fitted], test)
    assert row["accuracy"] == 1.0 and row["right"] == [1] * len(test)
    assert row["ms_per_query"] > 0 and {k: row[k] for k in out} == out


def test_score_test_scores_every_predictor_once_in_order():
    data = two_class_dataset(repeat=2)
    calls = []

    def constant(label):
        return fs.Fitted({"method": f"always {label}"}, lambda d: calls.append(label) or [label] * len(d))

    rows = scores.score_test([constant(0), constant(1)], data)
    assert calls == [0, 1] and [r["method"] for r in rows] == ["always 0", "always 1"]
    assert rows[1]["right"] == hits([1] * len(data), data["label"]) and rows[1]["accuracy"] == 0.5
    assert rows[1]["low"] < 0.5 < rows[1]["high"]


def test_stored_returns_a_saved_run_only_with_the_cache_on(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "cache_root", lambda: tmp_path)
    monkeypatch.setenv("WORKBOOK_CACHE", "on")
    key, rows = {"sizes": (8,)}, [row("SetFit", 8, 0.9, [0, 1])]
    assert fs.stored(key) is None and not list(tmp_path.rglob("*.json"))  # looking up writes nothing
    cache.cached(fs.CACHE_NAME, key, lambda: rows)
    assert fs.stored(key) == rows and fs.stored({"sizes": (4,)}) is None
    monkeypatch.setenv("WORKBOOK_CACHE", "off")
    assert fs.stored(key) is None


def test_validation_frame_has_no_test_column():
    frame = fs.validation_frame([row("LoRA", 8, 0.8, [0, 1]) | {"ms_per_query": 3.0, "steps": 40, "best_step": 40}])
    assert list(frame.columns) == ["method", "per_intent", "val_accuracy", "best_step", "steps"]
    assert str(frame.steps.dtype) == "Int64"


def test_right_method_is_chosen_on_validation_not_test():
    labels = [0, 1] * 20
    good_on_test = row("full fine-tune", 8, 0.5, hits(labels, labels))
    good_on_val = row("SetFit", 8, 0.9, hits([0] * 40, labels))  # half right on test
    prompt = row("prompt few-shot", 0, float("nan"), hits([1] * 40, labels))
    assert scores.right_method([good_on_test, good_on_val, prompt], 8)["method"] == "SetFit"
    with pytest.raises(ValueError, match="No trained method at 4"):
        scores.right_method([good_on_val], 4)


def test_the_claim_can_fail_and_faces_every_prompt():
    labels = [0, 1] * 50
    weak = row("prompt zero-shot", 0, float("nan"), hits([0] * 100, labels))  # 50% right
    strong = row("prompt few-shot", 1, float("nan"), [1] * 100)  # all right: no method can beat it
    good = row("frozen + head", 8, 0.9, [1] * 90 + [0] * 10)  # 90% right
    broken = row("frozen + head", 8, 0.9, [0] * 100)  # a broken method: always wrong
    chosen, gaps = scores.versus_prompting([good, weak], 8)
    assert chosen is good and gaps["prompt zero-shot"].low > 0
    chosen, gaps = scores.versus_prompting([broken, weak], 8)
    assert chosen is broken and gaps["prompt zero-shot"].high < 0
    _, gaps = scores.versus_prompting([good, weak, strong], 8)  # no prompt is picked: both are faced
    assert set(gaps) == {"prompt zero-shot", "prompt few-shot"} and gaps["prompt few-shot"].high < 0


def test_results_frame_shows_each_runs_interval_without_per_message_columns():
    data = two_class_dataset(repeat=2)
    always_card = fs.Fitted({"method": "LoRA", "per_intent": 4, "steps": 8}, lambda d: [0] * len(d))
    perfect = fs.Fitted({"method": "frozen + head", "per_intent": 4}, lambda d: d["label"])
    frame = scores.results_frame(scores.score_test([always_card, perfect], data))
    assert frame.accuracy.tolist() == [0.5, 1.0] and "right" not in frame
    assert (frame.low <= frame.accuracy).all() and (frame.accuracy <= frame.high).all()
    assert frame.low[0] < 0.5 < frame.high[0] and str(frame.steps.dtype) == "Int64"


def test_spend_scores_on_validation_and_needs_two_intents():
    data = two_class_dataset(repeat=4)
    pool, val = fs.first_per_class(data, 12, skip=4), fs.first_per_class(data, 4)
    recall = fs.spend(BagOfWords(), pool, val, {"card": 2, "fee": 2})
    assert set(recall.index) == {"card", "fee"} and recall.mean() == 1.0
    with pytest.raises(ValueError, match="at least two intents"):
        fs.spend(BagOfWords(), pool, val, {"card": 4})
