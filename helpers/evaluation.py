"""Predictions and metrics for classifiers: accuracy and macro-F1 through evaluate, confusion matrices."""

from __future__ import annotations

from functools import cache

import evaluate
import numpy as np
import torch
from sklearn.metrics import confusion_matrix as _sk_confusion
from transformers import DataCollatorWithPadding

from helpers.data import eval_loader
from helpers.paths import METRICS_DIR


@cache
def load_metric(name: str) -> evaluate.EvaluationModule:
    """An ``evaluate`` metric shipped in helpers/metrics (works offline): 'accuracy' or 'macro_f1'."""
    path = METRICS_DIR / name / f"{name}.py"
    if not path.exists():
        known = sorted(p.name for p in METRICS_DIR.iterdir() if (p / f"{p.name}.py").exists())
        raise ValueError(f"No metric {name!r} in helpers/metrics; available: {', '.join(known)}.")
    return evaluate.load(str(path))


@torch.no_grad()
def predict_logits(model, dataset, tokenizer, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(logits (N, C), labels (N,)) for a tokenised dataset, in dataset order."""
    device = next(model.parameters()).device
    loader = eval_loader(dataset, batch_size, DataCollatorWithPadding(tokenizer))
    was_training = model.training
    model.eval()
    logits, labels = [], []
    for batch in loader:
        labels.append(batch.pop("labels"))
        logits.append(model(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu())
    model.train(was_training)
    return torch.cat(logits).numpy(), torch.cat(labels).numpy()


def predict_labels(model, dataset, tokenizer, batch_size: int = 64) -> np.ndarray:
    """Predicted label ids (N,) for a tokenised dataset, in dataset order."""
    return predict_logits(model, dataset, tokenizer, batch_size)[0].argmax(-1)


def classification_metrics(predictions, references) -> dict[str, float]:
    """{'accuracy', 'macro_f1'} for integer predictions against references."""
    preds, refs = np.asarray(predictions).tolist(), np.asarray(references).tolist()
    out = load_metric("accuracy").compute(predictions=preds, references=refs)
    out.update(load_metric("macro_f1").compute(predictions=preds, references=refs))
    return out


def logits_metrics(logits: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 from a classifier's logits (N, C): a ``compute_metrics`` for train()."""
    return classification_metrics(np.asarray(logits).argmax(-1), labels)


def evaluate_classifier(model, dataset, tokenizer, batch_size: int = 64) -> dict[str, float]:
    """Accuracy and macro-F1 of ``model`` on a tokenised dataset."""
    logits, labels = predict_logits(model, dataset, tokenizer, batch_size)
    return classification_metrics(logits.argmax(-1), labels)


def metrics_fn(dataset, tokenizer, batch_size: int = 64):
    """An ``evaluate_fn`` for train(): accuracy and macro-F1 on ``dataset`` at every evaluation."""
    return lambda model: evaluate_classifier(model, dataset, tokenizer, batch_size)


def confusion_matrix(predictions, references, n_labels: int) -> np.ndarray:
    """Counts (n_labels, n_labels): row = true label, column = predicted label."""
    return _sk_confusion(references, predictions, labels=list(range(n_labels)))
