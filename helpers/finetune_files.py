"""The files of a command-line fine-tune: the user's train and test files read in, and the folder written out.

``helpers.finetune`` reads the data with ``load_train_test`` (a file's sha256 names its contents) and writes the
model, tokenizer, labels, metrics, History and a model card with ``write_outputs``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import transformers

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
    run: RunFolder, net, tokenizer, labels: list[str], metrics: dict[str, Any], facts: dict[str, Any], history
) -> None:
    """Write everything into the run's staging folder, then move it into the output folder (``run.finish``)."""
    tmp = run.staging()
    net.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    for name, value in (("labels.json", labels), ("metrics.json", metrics)):
        (tmp / name).write_text(json.dumps(json_safe(value), indent=1, allow_nan=False))
    history.save(tmp / "history.json")
    (tmp / "README.md").write_text(model_card(labels, metrics, facts))
    run.finish(tmp)


def model_card(labels: list[str], metrics: dict[str, Any], facts: dict[str, Any]) -> str:
    """A short model card in Markdown: what it is, the data, the result, how to load it, its limits.

    Optional ``facts`` (intended_use, out_of_scope, lineage, slices, memorisation) add a reviewer's sections.
    """
    method = "full fine-tune" if facts["lora_rank"] is None else f"LoRA rank {facts['lora_rank']} (merged)"
    shown = ", ".join(labels[:20]) + (f", ... ({len(labels)} in all)" if len(labels) > 20 else "")
    skipped = f"\n- Rows labelled {facts['skip_labels']} were left out." if facts["skip_labels"] else ""
    intended = f"\n## Intended use\n{facts['intended_use']}\n" if facts.get("intended_use") else ""
    return f"""# Text classifier fine-tuned from {facts["model"]}

**Task**: classify a text into one of {len(labels)} labels: {shown}.
**Method**: {method}, {metrics["steps"]} optimiser steps, learning rate {facts["lr"]}, batch {facts["batch_size"]},
seed {facts["seed"]}; torch {torch.__version__}, transformers {transformers.__version__}.
{intended}
## Data
- Train: `{facts["train"]}` ({metrics["n_train"]} examples, sha256 `{facts["train_sha256"]}`), text column
  `{facts["text_column"]}`, label column `{facts["label_column"]}`.
- Test: `{facts["test"]}` ({metrics["n_test"]} examples, sha256 `{facts["test_sha256"]}`), never seen in \
training.{skipped}
- Texts longer than {metrics["max_length"]} tokens were truncated: {metrics["truncated_train"]} in train,
  {metrics["truncated_test"]} in test.

## Results on the test file
| accuracy | macro-F1 |
|---|---|
| {metrics["accuracy"]:.4f} | {metrics["macro_f1"]:.4f} |

## Use
```python
from transformers import AutoModelForSequenceClassification, AutoTokenizer
model = AutoModelForSequenceClassification.from_pretrained("<this folder>", use_safetensors=True)
tokenizer = AutoTokenizer.from_pretrained("<this folder>")
```
`labels.json` lists the labels in output order; `metrics.json` and `history.json` hold the numbers above.

## Limits
It knows only these labels and the kind of text in the training file: a text about anything else still gets
one of them. Check accuracy on fresh data before relying on it, and retrain when the topics change.
""" + review_sections(facts)


def model_name(model: str | Path | None) -> str:
    """The model as the card names it: a local folder by its name only (no paths of this machine), a hub id as is."""
    if model is None:
        return "bundled all-MiniLM-L6-v2"
    return f"local folder {Path(model).name}" if Path(model).expanduser().exists() else str(model)
