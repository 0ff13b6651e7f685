"""The notebooks' one recipe for fine-tuning MiniLM as an intent classifier on text/label datasets."""

from __future__ import annotations

from pathlib import Path

import torch
from datasets import Dataset
from transformers.modeling_outputs import SequenceClassifierOutput

from helpers.data import tokenize
from helpers.evaluation import metrics_fn
from helpers.history import History
from helpers.models import load_classifier
from helpers.runtime import Profile, seed_everything
from helpers.training import TrainConfig, train


class WeightedLossClassifier(torch.nn.Module):
    """Wraps a sequence classifier so its ``.loss`` is cross-entropy weighted per class (works with train())."""

    def __init__(self, model: torch.nn.Module, weights: torch.Tensor):
        super().__init__()
        self.model = model
        self.register_buffer("weights", weights.float())

    def forward(self, labels: torch.Tensor | None = None, **inputs) -> SequenceClassifierOutput:
        """The wrapped model's logits, and the weighted loss when ``labels`` are given."""
        logits = self.model(**inputs).logits
        loss = None if labels is None else torch.nn.functional.cross_entropy(logits, labels, weight=self.weights)
        return SequenceClassifierOutput(loss=loss, logits=logits)


def fine_tune(
    train_dataset: Dataset,
    p: Profile,
    learning_rate: float = 1e-4,
    eval_dataset: Dataset | None = None,
    weights: torch.Tensor | None = None,
    restore_best: bool = False,
    seed: int = 0,
    progress: bool = True,
    model: str | Path | None = None,
) -> tuple[torch.nn.Module, object, History]:
    """(model, tokenizer, History): MiniLM fine-tuned for the profile's epochs, batch size and length.

    Labels come from the dataset's ClassLabel. With ``eval_dataset`` it is scored (loss, accuracy, macro-F1) every
    epoch and ``restore_best`` can end on the best epoch. ``weights`` (one per label) trains with a class-weighted
    loss (``WeightedLossClassifier``). ``model`` is another hub id or folder.
    """
    seed_everything(seed)  # the new head's random init repeats too
    net, tokenizer = load_classifier(train_dataset.features["label"].names, model=model)
    if weights is not None:
        net = WeightedLossClassifier(net, weights)
    config = TrainConfig(
        learning_rate=learning_rate,
        epochs=p.epochs,
        batch_size=p.batch_size,
        seed=seed,
        restore_best=restore_best,
        progress=progress,
    )
    tokenized_eval = None if eval_dataset is None else tokenize(eval_dataset, tokenizer, p.max_length)
    evaluate_fn = None if eval_dataset is None else metrics_fn(tokenized_eval, tokenizer)
    history = train(
        net,
        tokenize(train_dataset, tokenizer, p.max_length),
        config,
        tokenizer=tokenizer,
        eval_dataset=tokenized_eval,
        evaluate_fn=evaluate_fn,
    )
    return net, tokenizer, history
