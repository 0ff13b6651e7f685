"""helpers.few_shot: the head's softmax equals sklearn's, a saved EncoderHead reloads, and the validation split."""

from __future__ import annotations

import numpy as np
import pytest
from datasets import ClassLabel, Dataset, Features, Value

from helpers import few_shot
from helpers.finetune_files import per_label, split_validation


@pytest.mark.parametrize("n_classes", [2, 5])
def test_head_weights_give_sklearns_probabilities(n_classes):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(60, 8)), np.arange(60) % n_classes
    head = few_shot.fit_head(x, y, c=1.0)
    weight, bias = few_shot.head_weights(head, n_classes)
    z = x @ weight.T + bias
    probs = np.exp(z - z.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    assert weight.shape == (n_classes, 8)
    np.testing.assert_allclose(probs, head.predict_proba(x), atol=1e-6)


def test_a_label_the_head_never_saw_is_never_predicted():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 4)), np.array([0, 2, 3] * 10)  # label 1 has no example
    weight, bias = few_shot.head_weights(few_shot.fit_head(x, y), 4)
    assert ((x @ weight.T + bias).argmax(1) != 1).all()


def labelled(counts: dict[str, int]) -> Dataset:
    texts = [f"{name} {i}" for name, n in counts.items() for i in range(n)]
    labels = [name for name, n in counts.items() for _ in range(n)]
    features = Features({"text": Value("string"), "label": ClassLabel(names=sorted(counts))})
    return Dataset.from_dict({"text": texts, "label": labels}, features=features)


def test_split_validation_holds_out_a_fifth_of_each_label():
    data = labelled({"a": 8, "b": 16, "c": 1, "d": 2})
    train, val = split_validation(data, seed=0)
    held = {name: val["label"].count(i) for i, name in enumerate(data.features["label"].names)}
    assert held == {"a": 1, "b": 3, "c": 0, "d": 1}  # at least one; none of a label with a single example
    assert len(train) + len(val) == len(data) and not set(train["text"]) & set(val["text"])
    assert split_validation(data, seed=0)[1]["text"] == val["text"]  # the same seed, the same split
    assert per_label(data) == 5.0  # median of 8, 16, 1, 2
    with pytest.raises(ValueError, match="single training example"):
        split_validation(labelled({"a": 1, "b": 1}))


def test_setfit_config_caps_its_steps():
    assert few_shot.SetFitConfig(iterations=5, batch_size=16).steps(80) == 50
    assert few_shot.SetFitConfig(iterations=5, batch_size=16, max_steps=20).steps(80) == 20
