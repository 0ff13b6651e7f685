import numpy as np
import pytest

from helpers import data, evaluation
from tests.tiny import tiny_classifier, tokenizer, two_class_dataset


def test_metrics_match_hand_computation():
    out = evaluation.classification_metrics([0, 1, 1, 2], [0, 1, 2, 2])
    assert out["accuracy"] == pytest.approx(0.75)
    # per-class F1: 1.0, 2/3, 2/3 -> mean 7/9
    assert out["macro_f1"] == pytest.approx(7 / 9)


def test_unknown_metric_lists_available():
    with pytest.raises(ValueError, match="accuracy"):
        evaluation.load_metric("bleu")


def test_predict_logits_shapes_and_order():
    tok = tokenizer()
    ds = data.tokenize(two_class_dataset(repeat=1), tok, 16)
    logits, labels = evaluation.predict_logits(tiny_classifier(), ds, tok, batch_size=3)
    assert logits.shape == (8, 2)
    assert labels.tolist() == list(ds["labels"])


def test_confusion_matrix_counts():
    m = evaluation.confusion_matrix([0, 1, 1], [0, 0, 1], n_labels=3)
    assert m.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 0]]
    assert isinstance(m, np.ndarray)
