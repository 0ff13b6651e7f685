import numpy as np
import pytest
import torch

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
    model = tiny_classifier()  # in training mode: dropout on
    logits, labels = evaluation.predict_logits(model, ds, tok, batch_size=3)  # padded batches of 3
    assert logits.shape == (8, 2)
    assert labels.tolist() == list(ds["labels"])
    assert model.training  # restored
    # Row i is example i alone through the model in eval mode: same order, padding masked, no dropout.
    model.eval()
    with torch.no_grad():
        one_by_one = [
            model(**{k: torch.tensor([ds[i][k]]) for k in ("input_ids", "token_type_ids", "attention_mask")}).logits[0]
            for i in range(len(ds))
        ]
    np.testing.assert_allclose(logits, torch.stack(one_by_one).numpy(), atol=1e-5)
    assert evaluation.predict_labels(model, ds, tok, batch_size=5).tolist() == logits.argmax(-1).tolist()


def test_confusion_matrix_counts():
    m = evaluation.confusion_matrix([0, 1, 1], [0, 0, 1], n_labels=3)
    assert m.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 0]]
    assert isinstance(m, np.ndarray)
