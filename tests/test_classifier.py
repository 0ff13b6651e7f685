from dataclasses import replace

import torch
from datasets import ClassLabel

from helpers import classifier
from helpers.runtime import profile
from tests.test_resume import LABELS, make_tiny_model
from tests.tiny import two_class_dataset


def test_fine_tune_learns_scores_and_repeats(tmp_path):
    tiny = make_tiny_model(tmp_path / "tiny", dropout=0.0)
    P = replace(profile("smoke"), epochs=15, batch_size=8)
    ds = two_class_dataset().cast_column("label", ClassLabel(names=LABELS))  # the tiny model's 4 labels
    run = lambda **kw: classifier.fine_tune(ds, P, 5e-3, eval_dataset=ds, progress=False,  # noqa: E731
                                            model=tiny, **kw)
    net, tok, history = run()
    assert history.evals[-1]["accuracy"] > 0.9 and history.evals[-1]["eval_loss"] < history.evals[0]["eval_loss"]
    assert [r["loss"] for r in run()[2].train] == [r["loss"] for r in history.train]  # same seed, same head and run
    weighted, _, _ = run(weights=torch.tensor([1.0, 3.0, 1.0, 1.0]))
    assert type(weighted).__name__ == "WeightedLossClassifier"
