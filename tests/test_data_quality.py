"""helpers.data_quality: the data report, duplicate finding, mislabel finding, class imbalance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Value

from helpers import data_quality as dq

NAMES = ["a", "b", "c"]


def make_dataset(labels: list[int]) -> Dataset:
    features = Features({"text": Value("string"), "label": ClassLabel(names=NAMES)})
    return Dataset.from_dict({"text": [f"text {i}" for i in range(len(labels))], "label": labels}, features=features)


def test_data_report_counts_every_problem(tmp_path):
    frame = pd.DataFrame(
        {
            "text": ["Hello there", "hello  THERE", "", None, "Card lost", "card lost", "Top up"],
            "label": ["a", "a", "a", "b", "b", "c", "c"],
        }
    )
    path = tmp_path / "tickets.csv"
    frame.to_csv(path, index=False)
    other = pd.DataFrame({"text": ["TOP UP", "unseen"], "label": ["c", "a"]})
    report = dq.data_report(path, other=other)
    assert (report.rows, report.empty_texts, report.duplicate_texts, report.conflicting_texts) == (7, 2, 2, 1)
    assert report.label_counts == {"a": 2, "b": 1, "c": 2}
    assert report.leaked_texts == 1
    assert report.length_words["max"] == 2.0
    assert len(report.problems()) == 4  # empty, duplicates, conflicts, leak; balance 2x is fine
    assert "check" in report.table().columns


def test_data_report_on_clean_dataset_has_no_problems():
    report = dq.data_report(make_dataset([0, 1, 2, 0, 1, 2]))
    assert report.problems() == [] and report.label_counts == {"a": 2, "b": 2, "c": 2}
    assert report.leaked_texts is None


def test_data_report_names_missing_column():
    with pytest.raises(ValueError, match="column 'label' not found.*intent"):
        dq.data_report(pd.DataFrame({"text": ["x"], "intent": ["a"]}))


def test_similar_pairs_within_and_across():
    emb = np.eye(4, dtype=np.float32)
    emb[1] = emb[0]  # 0 and 1 are identical
    assert dq.similar_pairs(emb, threshold=0.9) == [(0, 1, 1.0)]
    across = dq.similar_pairs(emb[:2], emb[1:], threshold=0.9)
    assert sorted((i, j) for i, j, _ in across) == [(0, 0), (1, 0)]


def test_find_duplicates_marks_exact_and_near():
    texts = ["Where is my card?", "where is  my CARD?", "Where is my new card?", "What is the exchange rate?"]
    emb = np.array([[1, 0], [1, 0], [0.97, 0.243], [0, 1]], dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    found = dq.find_duplicates(texts, threshold=0.95, embeddings=(emb, None))
    kinds = {(r.i, r.j): r.kind for r in found.itertuples()}
    assert kinds == {(0, 1): "exact", (0, 2): "near", (1, 2): "near"}
    with pytest.raises(ValueError, match="threshold"):
        dq.find_duplicates(texts, threshold=1.5, embeddings=(emb, None))


def test_loss_and_disagreement_find_the_wrong_label():
    logits = np.array([[5.0, 0, 0], [0, 5.0, 0], [0, 0, 0.1]])
    labels = [0, 2, 2]  # row 1 is labelled 2 but the model says 1
    losses = dq.per_example_loss(logits, labels)
    assert losses.argmax() == 1 and losses[0] < 0.05
    assert dq.confident_disagreements(logits, labels, 0.5).tolist() == [1]
    assert dq.confident_disagreements(logits, labels, 0.99).tolist() == []  # row 1's prediction has p = 0.987


def test_class_weights_favour_rare_labels():
    weights = dq.class_weights([0, 0, 0, 0, 1, 1, 2, 2], 3)
    assert torch.allclose(weights, torch.tensor([8 / 12, 8 / 6, 8 / 6]))


def test_per_class_recall():
    recall = dq.per_class_recall([0, 1, 1, 2], [0, 1, 2, 2], 4)
    assert recall[:3].tolist() == [1.0, 1.0, 0.5] and np.isnan(recall[3])


def test_oversample_repeats_rare_labels_up_to_the_largest():
    ds = make_dataset([0] * 6 + [1] * 5 + [2] * 2)
    balanced = dq.oversample(ds)
    assert np.bincount(balanced["label"]).tolist() == [6, 6, 6]
    assert set(balanced["text"]) == set(ds["text"])  # only repeats, nothing new


def test_dedup_key_ignores_case_and_spacing_only():
    assert dq.dedup_key("  Where is  my CARD? ") == dq.dedup_key("where is my card?") == "where is my card?"
    assert dq.dedup_key("top-up") != dq.dedup_key("top up")
