"""Shipping an intent classifier: save it with its label names into a new folder, reload it
(in this process or a fresh one), classify texts, and write a model card from measured numbers.

Run as ``python -m helpers.shipping FOLDER IN.json OUT.json`` to predict in a separate process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from helpers.paths import PACKAGE_PARENT

LABELS_FILE = "labels.json"
SETTINGS_FILE = "inference.json"
CARD_FILE = "MODEL_CARD.md"


@dataclass
class Prediction:
    """One classified text: the intent, its probability, and whether it clears the confidence threshold."""

    text: str
    intent: str
    confidence: float
    confident: bool


def fresh_output_dir(base: str | Path) -> Path:
    """A folder that is missing or empty: ``base`` itself if possible, else ``base-2``, ``base-3``, ..."""
    base = Path(base)
    candidate, n = base, 1
    while candidate.exists() and any(candidate.iterdir()):
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def save_classifier(
    model, tokenizer, labels: Sequence[str], folder: str | Path, max_length: int = 64, overwrite: bool = False
) -> Path:
    """Save weights (safetensors), tokenizer, label names and max_length into ``folder``; refuses a
    non-empty folder unless ``overwrite``."""
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"{folder} already holds files; save into a new folder "
                "(shipping.fresh_output_dir) or pass overwrite=True to replace it."
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    (folder / LABELS_FILE).write_text(json.dumps(list(labels), indent=1))
    (folder / SETTINGS_FILE).write_text(json.dumps({"max_length": max_length}))
    return folder


def load_saved_classifier(folder: str | Path, device: str | None = None):
    """(model, tokenizer, labels, max_length) from a folder written by ``save_classifier``."""
    folder = Path(folder)
    if not (folder / LABELS_FILE).exists():
        raise FileNotFoundError(f"{folder} has no {LABELS_FILE}; it was not saved with shipping.save_classifier.")
    model = AutoModelForSequenceClassification.from_pretrained(folder, local_files_only=True, use_safetensors=True)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    labels = json.loads((folder / LABELS_FILE).read_text())
    max_length = json.loads((folder / SETTINGS_FILE).read_text())["max_length"]
    return model.to(device or "cpu").eval(), tokenizer, labels, max_length


@torch.no_grad()
def predict_proba(model, tokenizer, texts: Sequence[str], max_length: int = 64, batch_size: int = 64) -> np.ndarray:
    """Class probabilities (N, C) for raw texts, in input order."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(
            list(texts[start : start + batch_size]),
            truncation=True,
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        ).to(device)
        out.append(torch.softmax(model(**enc).logits.float(), dim=-1).cpu())
    model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, model.config.num_labels), dtype=np.float32)


def classify(
    texts: Sequence[str], model, tokenizer, labels: Sequence[str], max_length: int = 64, threshold: float = 0.0
) -> list[Prediction]:
    """The inference function: each text's intent and confidence; below ``threshold`` it is marked for a human."""
    if isinstance(texts, str):
        texts = [texts]
    probs = predict_proba(model, tokenizer, texts, max_length)
    return [
        Prediction(t, labels[int(p.argmax())], float(p.max()), bool(p.max() >= threshold)) for t, p in zip(texts, probs)
    ]


def predict_in_fresh_process(
    folder: str | Path, texts: Sequence[str], python: str | Path | None = None, timeout_s: int = 300
) -> np.ndarray:
    """Probabilities from a brand-new Python process that only loads ``folder`` (proves the save is complete)."""
    venv_python = PACKAGE_PARENT / ".venv" / "bin" / "python"
    python = python or (venv_python if venv_python.exists() else sys.executable)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.json", Path(tmp) / "out.json"
        src.write_text(json.dumps(list(texts)))
        env = {**os.environ, "PYTHONPATH": str(PACKAGE_PARENT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        done = subprocess.run(
            [str(python), "-m", "helpers.shipping", str(Path(folder).resolve()), str(src), str(dst)],
            cwd=PACKAGE_PARENT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
        if done.returncode != 0:
            raise RuntimeError(f"The fresh process failed to load or predict:\n{done.stderr[-2000:]}")
        return np.asarray(json.loads(dst.read_text()), dtype=np.float32)


# What a reviewer asks of a card beyond the basics (Mitchell et al. 2019); ``review_gaps`` lists the missing ones.
REVIEW_FIELDS = {
    "intended_use": "intended use",
    "out_of_scope": "out-of-scope use",
    "lineage": "training data lineage (source, licence, sha256, redaction)",
    "slices": "evaluation per slice",
    "limits": "known limitations",
    "memorisation": "the memorisation check's result",
}
LINEAGE_KEYS = ("source", "licence", "sha256", "redaction")


def review_gaps(facts: dict[str, Any]) -> list[str]:
    """What a reviewer would find missing in ``facts`` (empty list: the card has everything asked for)."""
    gaps = [what for key, what in REVIEW_FIELDS.items() if not facts.get(key)]
    for item in facts.get("lineage") or []:
        gaps += [f"lineage of {item.get('source', '?')}: {k}" for k in LINEAGE_KEYS if not item.get(k)]
    return gaps


def review_sections(f: dict[str, Any]) -> str:
    """The reviewer's sections, for the facts that carry them (older facts without them render as before)."""
    parts = []
    if f.get("out_of_scope"):
        parts.append(f"## Out-of-scope use\n{f['out_of_scope']}\n")
    if f.get("lineage"):
        rows = "\n".join(
            f"| {d['source']} | {d['licence']} | `{d['sha256']}` | {d['redaction']} |" for d in f["lineage"]
        )
        parts.append(f"## Training data lineage\n| file | licence | sha256 | redaction |\n|---|---|---|---|\n{rows}\n")
    if f.get("slices"):
        rows = "\n".join(f"| {k} | {v} |" for k, v in f["slices"].items())
        parts.append(f"## Evaluation per slice (test set)\n| slice | accuracy |\n|---|---|\n{rows}\n")
    if f.get("memorisation"):
        parts.append(f"## Memorisation check\n{f['memorisation']}\n")
    return "\n".join(parts)


def model_card(facts: dict[str, Any]) -> str:
    """A model card in Markdown (intended use, data, metrics, limits, how to load) from measured ``facts``.

    Optional reviewer fields (``REVIEW_FIELDS``: out_of_scope, lineage, slices, memorisation) add their sections.
    """
    f = facts
    rows = "\n".join(f"| {k} | {v} |" for k, v in f["metrics"].items())
    limits = "\n".join(f"- {item}" for item in f["limits"])
    return f"""# Model card: {f["name"]}

## Intended use
{f["intended_use"]}

## Model
Fine-tuned from {f["base_model"]} ({f["parameters"]:,} parameters, {f["size_mib"]:.1f} MiB on disk).
Trained with the workbook profile `{f["profile"]}` in {f["train_seconds"]:.0f} s on {f["device"]}.

## Data
{f["data"]}

## Metrics (held-out test set, evaluated once)
| metric | value |
|---|---|
{rows}

{review_sections(f)}
## Limits
{limits}

## How to use
```python
from helpers import shipping
model, tokenizer, labels, max_length = shipping.load_saved_classifier("{f["folder"]}")
shipping.classify(["my card has not arrived"], model, tokenizer, labels, max_length, threshold={f["threshold"]:.2f})
```
"""


def write_model_card(folder: str | Path, facts: dict[str, Any]) -> Path:
    """Write ``model_card(facts)`` into ``folder`` as MODEL_CARD.md and return its path."""
    path = Path(folder) / CARD_FILE
    path.write_text(model_card(facts))
    return path


def _main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python -m helpers.shipping FOLDER IN.json OUT.json", file=sys.stderr)
        return 2
    model, tok, _, max_length = load_saved_classifier(argv[0])
    probs = predict_proba(model, tok, json.loads(Path(argv[1]).read_text()), max_length)
    Path(argv[2]).write_text(json.dumps(probs.tolist()))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
