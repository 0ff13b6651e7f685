"""Notebook 02's planted problems: flipped labels, a finder's catch rate, rare intents, support conversations."""

from __future__ import annotations

import numpy as np
import pytest
from datasets import ClassLabel, Dataset, Features, Value

from helpers.lessons import preparing_data as lesson

NAMES = ["a", "b", "c"]


def make_dataset(labels: list[int]) -> Dataset:
    features = Features({"text": Value("string"), "label": ClassLabel(names=NAMES)})
    return Dataset.from_dict({"text": [f"text {i}" for i in range(len(labels))], "label": labels}, features=features)


def test_flip_labels_flips_exactly_the_share_to_other_labels():
    clean = make_dataset([0, 1, 2] * 10)
    noisy, flipped = lesson.flip_labels(clean, 0.4, seed=3)
    before, after = np.array(clean["label"]), np.array(noisy["label"])
    assert flipped.sum() == 12
    assert np.all(before[flipped] != after[flipped]) and np.all(before[~flipped] == after[~flipped])
    assert noisy.features["label"].names == NAMES and noisy["text"] == clean["text"]
    with pytest.raises(ValueError, match="share of rows"):
        lesson.flip_labels(clean, 1.5)


def test_catch_rate_scores_flagged_rows_against_the_truth():
    rate = lesson.catch_rate([1, 2], np.array([False, True, False]))
    assert rate == {"flagged": 2, "caught": 1, "precision": 0.5, "recall": 1.0}
    assert lesson.catch_rate([], np.array([True]))["recall"] == 0.0


def test_subsample_classes_makes_the_chosen_labels_rare():
    ds = make_dataset([0] * 6 + [1] * 6 + [2] * 6)
    imbalanced = lesson.subsample_classes(ds, [1, 2], keep=2)
    assert np.bincount(imbalanced["label"]).tolist() == [6, 2, 2]
    assert set(imbalanced["text"]) <= set(ds["text"])


def test_support_conversations_end_with_the_agent():
    convs = lesson.support_conversations(["Where is my card?", "Help"], ["card_arrival", "some_new_intent"])
    assert [m["role"] for m in convs[0]] == ["system", "user", "assistant"]
    assert convs[0][-1]["content"] == lesson.REPLIES["card_arrival"] and "some new intent" in convs[1][-1]["content"]
    assert [m["role"] for m in lesson.support_conversations(["x"], ["y"], system=None)[0]] == ["user", "assistant"]


def test_recall_frame_and_group_recall_measure_rare_and_common_intents():
    labels = [0, 0, 1, 1, 2, 2]
    runs = {"zeta": [0, 0, 1, 0, 2, 2], "alpha": [0, 1, 0, 0, 2, 0]}  # order kept, not sorted
    frame = lesson.recall_frame(runs, labels, NAMES, rare=[1])
    assert frame.set_index(["training data", "intent"]).loc[("zeta", "b"), "recall"] == 0.5
    assert frame[frame["rare"]]["intent"].unique().tolist() == ["b"]
    assert set(frame[frame["rare"]]["group"]) == {"rare intents"} and set(frame[~frame["rare"]]["group"]) == {
        "common intents"
    }
    assert frame.set_index(["training data", "intent"]).loc[("alpha", "c"), "recall"] == 0.5
    table = lesson.group_recall(frame)
    assert table.index.tolist() == ["zeta", "alpha"]
    assert table.loc["zeta"].tolist() == [0.5, 1.0] and table.loc["alpha"].tolist() == [0.0, 0.5]


def test_recall_frame_gives_each_intent_its_own_recall_and_group():
    frame = lesson.recall_frame({"run": [0, 0, 0, 0, 0, 2]}, [0, 0, 1, 1, 2, 2], NAMES, rare=[2])
    assert frame["intent"].tolist() == NAMES and frame["recall"].tolist() == [1.0, 0.0, 0.5]
    assert frame["group"].tolist() == ["common intents", "common intents", "rare intents"]


def test_recall_frame_refuses_a_split_without_the_rare_intents():
    with pytest.raises(ValueError, match=r"rare intents \['c'\]"):
        lesson.recall_frame({"run": [0, 1]}, [0, 1], NAMES, rare=[2])


def test_rare_only_keeps_the_rare_examples_in_order():
    predictions, labels = lesson.rare_only([0, 1, 0, 2, 1], [0, 1, 1, 2, 2], rare=[1, 2])
    assert predictions.tolist() == [1, 0, 2, 1] and labels.tolist() == [1, 1, 2, 2]
