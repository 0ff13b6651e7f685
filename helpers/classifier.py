"""The one recipe for fine-tuning a sequence classifier: full, head-only or LoRA, on text/label datasets.

``fine_tune_classifier`` loads the model (the bundled MiniLM by default), sets up what trains, tokenises,
trains with the one loop (``helpers.training.train``) and returns a ``FineTuned``. Notebooks, the command
line (``helpers.finetune``) and the benchmarks all call it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from transformers.modeling_outputs import SequenceClassifierOutput

from helpers.adapters import add_lora, count_parameters, freeze_all_but_head
from helpers.data import tokenize
from helpers.evaluation import evaluate_classifier, logits_metrics
from helpers.history import History
from helpers.models import load_classifier
from helpers.runtime import seed_everything
from helpers.training import TrainConfig, train

METHODS = ("full", "head-only", "lora")


@dataclass
class FineTuned:
    """What a fine-tune produced: the trained model, its tokenizer and History, and what trained."""

    model: torch.nn.Module
    tokenizer: Any
    history: History
    trainable: int  # parameters that trained
    total: int  # parameters in the model
    train_data: Dataset  # the tokenised training set, as trained on
    eval_data: Dataset | None = None  # the tokenised evaluation set
    labels: list[str] | None = None  # a classifier's label names, in output order
    max_length: int | None = None  # tokens kept per example


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


def check_method(method: str, methods: Sequence[str] = METHODS) -> None:
    """Raise ValueError in one sentence unless ``method`` is one of ``methods``."""
    if method not in methods:
        raise ValueError(f"method must be one of {', '.join(map(repr, methods))}, not {method!r}.")


def prepare_classifier(
    model: torch.nn.Module,
    method: str = "full",
    *,
    rank: int = 8,
    alpha: float | None = None,
    target_modules: Sequence[str] | None = None,
    train_head: bool = True,
) -> torch.nn.Module:
    """Set up what trains: 'full' every weight, 'head-only' the classification head, 'lora' adapters (+ head).

    A model that already carries LoRA adapters (a peft model) is kept as it is for 'lora'.
    """
    check_method(method)
    if method == "full":
        return model.requires_grad_(True)
    if method == "head-only":
        return freeze_all_but_head(model)
    if hasattr(model, "peft_config"):
        return model
    return add_lora(model, rank=rank, alpha=alpha, target_modules=target_modules, train_head=train_head)


def fine_tune_classifier(
    train_data: Dataset,
    config: TrainConfig | None = None,
    *,
    method: str = "full",
    eval_data: Dataset | None = None,
    model: str | Path | torch.nn.Module | None = None,
    tokenizer=None,
    labels: Sequence[str] | None = None,
    max_length: int = 128,
    rank: int = 8,
    alpha: float | None = None,
    target_modules: Sequence[str] | None = None,
    train_head: bool = True,
    class_weights: torch.Tensor | None = None,
    metrics: bool = True,
    evaluate_fn: Callable[[torch.nn.Module], dict[str, float]] | None = None,
    resume: bool = False,
) -> FineTuned:
    """Fine-tune a sequence classifier on ``train_data`` with ``method`` and ``config``; returns a ``FineTuned``.

    Data: raw text/label datasets (tokenised here at ``max_length``) or tokenised ones (``input_ids``, ``labels``).
    ``model``: a hub id or folder (None: the bundled MiniLM), loaded after seeding with ``config.seed`` so the new
    head repeats; or a built ``nn.Module`` with its ``tokenizer``, used as it is (no seeding). ``labels`` default
    to the training set's ClassLabel names. With ``eval_data``, every evaluation records its loss and, when
    ``metrics``, accuracy and macro-F1 (``evaluate_fn`` replaces those). ``class_weights`` (one per label)
    weight the loss (``WeightedLossClassifier``). ``resume`` continues from ``config.checkpoint_dir``.
    """
    config = config or TrainConfig()
    check_method(method)
    names = list(labels) if labels is not None else _label_names(train_data)
    if isinstance(model, torch.nn.Module):
        if tokenizer is None:
            raise ValueError("A built model needs its tokenizer: pass tokenizer= with model=.")
        net = model
    else:
        if names is None:
            raise ValueError("The label names are unknown: pass labels=[...] (a tokenised dataset keeps only numbers).")
        seed_everything(config.seed)  # the new head (and LoRA) start alike in every run with this seed
        net, tokenizer = load_classifier(names, model=model)
    net = prepare_classifier(net, method, rank=rank, alpha=alpha, target_modules=target_modules, train_head=train_head)
    if class_weights is not None:
        net = WeightedLossClassifier(net, class_weights)
    train_tok = _tokenised(train_data, tokenizer, max_length)
    eval_tok = None if eval_data is None else _tokenised(eval_data, tokenizer, max_length)
    compute = logits_metrics if evaluate_fn is None and metrics and eval_tok is not None else None
    history = train(
        net,
        train_tok,
        config,
        eval_tok,
        tokenizer=tokenizer,
        evaluate_fn=evaluate_fn,
        compute_metrics=compute,
        resume=resume,
    )
    trainable, total = count_parameters(net)
    return FineTuned(net, tokenizer, history, trainable, total, train_tok, eval_tok, names, max_length)


def evaluate(run: FineTuned, dataset: Dataset, batch_size: int = 64) -> dict[str, float]:
    """Accuracy and macro-F1 of a fine-tuned classifier on a raw text/label (or tokenised) dataset."""
    tokenised = _tokenised(dataset, run.tokenizer, run.max_length or 128)
    return evaluate_classifier(run.model, tokenised, run.tokenizer, batch_size)


def _tokenised(dataset: Dataset, tokenizer, max_length: int) -> Dataset:
    if "input_ids" in dataset.column_names:
        return dataset
    missing = [c for c in ("text", "label") if c not in dataset.column_names]
    if missing:
        raise ValueError(
            f"The dataset has no {' or '.join(map(repr, missing))} column (columns: "
            f"{', '.join(dataset.column_names)}); load it with helpers.data.load_text_classification(...)."
        )
    return tokenize(dataset, tokenizer, max_length)


def _label_names(dataset: Dataset) -> list[str] | None:
    feature = dataset.features.get("label", dataset.features.get("labels"))
    return list(feature.names) if hasattr(feature, "names") else None
