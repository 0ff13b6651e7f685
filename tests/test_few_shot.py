"""helpers.lessons.few_shot: splits, the frozen baseline, choosing on validation, the claim's paired interval."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import runtime
from helpers.lessons import few_shot as fs
from tests.tiny import TEXTS, two_class_dataset


class BagOfWords:
    """A stand-in embedder: unit-length word counts over the tiny dataset's vocabulary (no model, no download)."""

    def __init__(self):
        self.vocab = sorted({w for texts in TEXTS.values() for t in texts for w in t.split()})

    def encode(self, texts, normalize_embeddings=True, batch_size=64, show_progress_bar=False):
        x = np.array([[t.split().count(w) for w in self.vocab] for t in texts], dtype=float) + 1e-6
        return x / np.linalg.norm(x, axis=1, keepdims=True)


def row(method, per_intent, val_accuracy, predictions):
    return {"method": method, "per_intent": per_intent, "val_accuracy": val_accuracy, "predictions": predictions}


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
    out = fs.frozen_head(BagOfWords(), train, val, test, c_grid=(1.0, 10.0))
    assert out["method"] == "frozen + head" and out["per_intent"] == 4
    assert np.mean(np.array(out["predictions"]) == np.array(test["label"])) == 1.0
    assert out["setting"] in ("C=1", "C=10") and out["train_seconds"] > 0 and out["ms_per_query"] > 0


def test_right_method_is_chosen_on_validation_not_test():
    labels = [0, 1] * 20
    good_on_test = row("full fine-tune", 8, 0.5, labels)
    good_on_val = row("SetFit", 8, 0.9, [0] * 40)  # half right on test
    prompt = row("prompt few-shot", 0, float("nan"), [1] * 40)
    assert fs.right_method([good_on_test, good_on_val, prompt], 8)["method"] == "SetFit"
    with pytest.raises(ValueError, match="No trained method at 4"):
        fs.right_method([good_on_val], 4)


def test_the_claim_can_fail():
    labels = [0, 1] * 50
    prompt = row("prompt zero-shot", 0, float("nan"), [0] * 100)  # 50% right
    good = row("frozen + head", 8, 0.9, labels)
    broken = row("frozen + head", 8, 0.9, [1 - y for y in labels])  # a broken method: always wrong
    assert fs.versus_prompting([good, prompt], 8, labels)[2].low > 0
    chosen, opponent, gap = fs.versus_prompting([broken, prompt], 8, labels)
    assert chosen is broken and opponent is prompt and gap.high < 0


def test_results_frame_puts_an_interval_on_each_run():
    labels = [0, 1] * 50
    frame = fs.results_frame([row("LoRA", 4, 0.7, [0] * 100), row("LoRA", 8, 0.8, labels)], labels)
    assert frame.accuracy.tolist() == [0.5, 1.0]
    assert (frame.low <= frame.accuracy).all() and (frame.accuracy <= frame.high).all()
    assert frame.low[0] < 0.5 < frame.high[0] and "predictions" not in frame


def test_spend_scores_on_validation_and_needs_two_intents():
    data = two_class_dataset(repeat=4)
    pool, val = fs.first_per_class(data, 12, skip=4), fs.first_per_class(data, 4)
    recall = fs.spend(BagOfWords(), pool, val, {"card": 2, "fee": 2})
    assert set(recall.index) == {"card", "fee"} and recall.mean() == 1.0
    with pytest.raises(ValueError, match="at least two intents"):
        fs.spend(BagOfWords(), pool, val, {"card": 4})
