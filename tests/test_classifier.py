from dataclasses import replace

import torch
from datasets import ClassLabel

from helpers import classifier
from helpers.runtime import profile
from tests.test_resume import LABELS, make_tiny_model
from tests.tiny import tiny_classifier, two_class_dataset


def test_fine_tune_learns_scores_and_repeats(tmp_path):
    tiny = make_tiny_model(tmp_path / "tiny", dropout=0.0)
    P = replace(profile("smoke"), epochs=15, batch_size=8)
    ds = two_class_dataset().cast_column("label", ClassLabel(names=LABELS))  # the tiny model's 4 labels
    run = lambda **kw: classifier.fine_tune(
        ds,
        P,
        5e-3,
        eval_dataset=ds,
        progress=False,  # noqa: E731
        model=tiny,
        **kw,
    )
    net, tok, history = run()
    assert history.evals[-1]["accuracy"] > 0.9 and history.evals[-1]["eval_loss"] < history.evals[0]["eval_loss"]
    assert [r["loss"] for r in run()[2].train] == [r["loss"] for r in history.train]  # same seed, same head and run
    weights = torch.tensor([1.0, 3.0, 1.0, 1.0])
    weighted, _, weighted_history = run(weights=weights)
    assert isinstance(weighted, classifier.WeightedLossClassifier) and torch.equal(weighted.weights, weights)
    # Same seed, data and head: only the class weights differ, so the training losses must too.
    assert [r["loss"] for r in weighted_history.train] != [r["loss"] for r in history.train]


def test_weighted_loss_wrapper_equals_plain_loss_with_unit_weights():
    model = tiny_classifier(n_labels=3).eval()
    batch = {
        "input_ids": torch.randint(0, 50, (4, 7)),
        "attention_mask": torch.ones(4, 7, dtype=torch.long),
        "labels": torch.tensor([0, 1, 2, 1]),
    }
    plain = model(**batch)
    wrapped = classifier.WeightedLossClassifier(model, torch.ones(3))(**batch)
    assert torch.allclose(plain.loss, wrapped.loss, atol=1e-6) and torch.equal(plain.logits, wrapped.logits)
    heavy = classifier.WeightedLossClassifier(model, torch.tensor([1.0, 1.0, 10.0]))(**batch)
    losses = torch.nn.functional.cross_entropy(plain.logits, batch["labels"], reduction="none")
    expected = (losses * torch.tensor([1.0, 1, 10, 1])).sum() / 13
    assert torch.allclose(heavy.loss, expected, atol=1e-6)
    assert classifier.WeightedLossClassifier(model, torch.ones(3))(input_ids=batch["input_ids"]).loss is None
