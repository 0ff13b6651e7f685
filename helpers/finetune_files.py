"""The files of a command-line fine-tune: the user's train and test files read in, and the folder written out.

``helpers.finetune`` reads the data with ``load_train_test`` (a file's sha256 names its contents) and writes the
model, tokenizer, labels, metrics, History and a model card with ``write_outputs``.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from datasets import Dataset

from helpers import few_shot
from helpers.data import load_text_classification
from helpers.history import json_safe
from helpers.run_folder import RunFolder
from helpers.shipping import review_sections


def load_train_test(
    train_path: str | Path, test_path: str | Path, text_column: str, label_column: str, skip_labels: Sequence[str] = ()
):
    """(train, test, label names): the test file is read with the training labels; needs 2+ classes."""
    train_ds = load_text_classification(train_path, text_column, label_column, skip_labels=skip_labels)
    labels = train_ds.features["label"].names
    if len(labels) < 2:
        raise ValueError(
            f"{Path(train_path).name} has a single label ({labels[0]!r}); a classifier needs "
            "examples of at least two classes."
        )
    test_ds = load_text_classification(
        test_path, text_column, label_column, label_names=labels, skip_labels=skip_labels
    )
    return train_ds, test_ds, labels


def per_label(train: Dataset) -> float:
    """The median number of examples per label."""
    return float(np.median(list(Counter(train["label"]).values())))


def split_validation(train: Dataset, seed: int = 0) -> tuple[Dataset, Dataset]:
    """(train, validation): a fifth of each label held out (at least 1; none of a label with a single example)."""
    rng, keep, held = np.random.default_rng(seed), [], []
    labels = np.asarray(train["label"])
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        n = 0 if len(rows) < 2 else max(1, len(rows) // 5)
        held += rows[:n].tolist()
        keep += rows[n:].tolist()
    if not held:
        raise ValueError("Every label has a single training example; add a second example of some labels.")
    return train.select(sorted(keep)), train.select(sorted(held))


def sha256_file(path: str | Path) -> str:
    """The file's sha256 (hex): names its exact contents in the model card and for a resume."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def truncation_report(truncated: dict[str, int], total: int, max_length: int) -> str:
    """One line saying how many texts were cut to ``max_length`` tokens."""
    n = sum(truncated.values())
    if n == 0:
        return f"All {total} texts fit in {max_length} tokens."
    return (
        f"{n} of {total} texts are longer than {max_length} tokens and were truncated "
        f"(train {truncated['train']}, test {truncated['test']}); raise max_length to keep more of them."
    )


def write_outputs(
    run: RunFolder, net, tokenizer, labels: list[str], metrics: dict[str, Any], facts: dict[str, Any], history=None
) -> None:
    """Write everything into the run's staging folder, then move it into the output folder (``run.finish``).

    ``net`` is a transformers classifier (saved with ``tokenizer``) or a ``few_shot.EncoderHead``."""
    tmp = run.staging()
    if isinstance(net, few_shot.EncoderHead):
        net.save(tmp)
    else:
        net.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    for name, value in (("labels.json", labels), ("metrics.json", metrics)):
        (tmp / name).write_text(json.dumps(json_safe(value), indent=1, allow_nan=False))
    if history is not None:
        history.save(tmp / "history.json")
    (tmp / "README.md").write_text(model_card(labels, metrics, facts))
    run.finish(tmp)


def model_card(labels: list[str], metrics: dict[str, Any], facts: dict[str, Any]) -> str:
    """A short model card in Markdown: what it is, the data, the result, how to load it, its limits.

    Optional ``facts`` (intended_use, out_of_scope, lineage, slices, memorisation) add a reviewer's sections.
    """
    method = describe_method(metrics, facts)
    shown = ", ".join(labels[:20]) + (f", ... ({len(labels)} in all)" if len(labels) > 20 else "")
    skipped = f"\n- Rows labelled {facts['skip_labels']} were left out." if facts["skip_labels"] else ""
    intended = f"\n## Intended use\n{facts['intended_use']}\n" if facts.get("intended_use") else ""
    return f"""# Text classifier fine-tuned from {facts["model"]}

**Task**: classify a text into one of {len(labels)} labels: {shown}.
**Method**: {method}; seed {facts["seed"]}; torch {torch.__version__}, transformers {transformers.__version__}.
{intended}
## Data
- Train: `{facts["train"]}` (sha256 `{facts["train_sha256"]}`): {metrics["n_train"]} examples trained on\
{_held_out(metrics)}; text column `{facts["text_column"]}`, label column `{facts["label_column"]}`.
- Test: `{facts["test"]}` ({metrics["n_test"]} examples, sha256 `{facts["test_sha256"]}`), never seen in \
training.{skipped}
- Texts longer than {metrics["max_length"]} tokens were truncated: {metrics["truncated_train"]} in train,
  {metrics["truncated_test"]} in test.

## Results on the test file
| accuracy | macro-F1 |
|---|---|
| {metrics["accuracy"]:.4f} | {metrics["macro_f1"]:.4f} |
{_baseline_line(metrics)}
## Use
`python -m helpers predict --model <this folder> --text "..."`, or in Python:
```python
{_use(metrics)}
```
`labels.json` lists the labels in output order; `metrics.json` holds the numbers above.

## Limits
It knows only these labels and the kind of text in the training file: a text about anything else still gets
one of them. Check accuracy on fresh data before relying on it, and retrain when the topics change.
""" + review_sections(facts)


def model_name(model: str | Path | None) -> str:
    """The model as the card names it: a local folder by its name only (no paths of this machine), a hub id as is."""
    if model is None:
        return "bundled all-MiniLM-L6-v2"
    return f"local folder {Path(model).name}" if Path(model).expanduser().exists() else str(model)


def describe_method(metrics: dict[str, Any], facts: dict[str, Any]) -> str:
    """The shipped method in words, with its budget."""
    method = metrics.get("method", "full" if facts["lora_rank"] is None else "lora")
    if method == few_shot.FROZEN:
        return "frozen sentence embedding + logistic-regression head"
    if method == few_shot.SETFIT:
        return (
            f"SetFit: contrastive training of the encoder ({metrics['steps']} pair steps, learning rate "
            f"{facts['lr']}, batch {facts['batch_size']}) + logistic-regression head"
        )
    name = "full fine-tune" if method == "full" else f"LoRA rank {facts['lora_rank']} (merged)"
    return f"{name}, {metrics['steps']} optimiser steps, learning rate {facts['lr']}, batch {facts['batch_size']}"


def _held_out(metrics: dict[str, Any]) -> str:
    n = metrics.get("n_validation")
    return f" and {n} held out for validation" if n else ""


def _baseline_line(metrics: dict[str, Any]) -> str:
    if "baseline" not in metrics:
        return ""
    b = metrics["baseline"]
    return (
        f"\nChosen method: {metrics['chosen_method']}; shipped: {metrics['method']} (validation accuracy "
        f"{metrics['validation_accuracy']:.4f}). The frozen-embedding baseline scored {b['validation_accuracy']:.4f} "
        f"on validation and {b['accuracy']:.4f} on test.\n"
    )


def _use(metrics: dict[str, Any]) -> str:
    if metrics.get("method") in (few_shot.FROZEN, few_shot.SETFIT):
        return (
            'from helpers.few_shot import EncoderHead\nprobs = EncoderHead.load("<this folder>").predict_proba(texts)'
        )
    return (
        "from transformers import AutoModelForSequenceClassification, AutoTokenizer\n"
        'model = AutoModelForSequenceClassification.from_pretrained("<this folder>", use_safetensors=True)\n'
        'tokenizer = AutoTokenizer.from_pretrained("<this folder>")'
    )


def load_predictor(folder: str | Path) -> tuple[list[str], Callable[[Sequence[str]], np.ndarray]]:
    """(labels, texts -> probabilities (N, C)) for a folder written by ``finetune-classifier``, either kind."""
    folder = Path(folder)
    if not (folder / "labels.json").exists():
        raise FileNotFoundError(f"{folder} has no labels.json; pass a folder written by finetune-classifier.")
    if few_shot.is_encoder_head(folder):
        model = few_shot.EncoderHead.load(folder)
        return model.labels, model.predict_proba
    from helpers import shipping  # noqa: PLC0415

    net = transformers.AutoModelForSequenceClassification.from_pretrained(folder, use_safetensors=True).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    max_length = json.loads((folder / "metrics.json").read_text()).get("max_length", 128)
    labels = json.loads((folder / "labels.json").read_text())
    return labels, lambda texts: shipping.predict_proba(net, tokenizer, list(texts), max_length)
