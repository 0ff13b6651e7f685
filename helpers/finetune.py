"""Fine-tune a text classifier on a user's own CSV/JSONL files, end to end, into a new folder.

The engine behind ``python -m helpers finetune-classifier``: load and check the
data, load the model (bundled MiniLM by default), add LoRA, train with the one
loop, evaluate on the test file, and write model, tokenizer, labels, metrics and
a model card. It works unchanged under ``accelerate launch`` (only the main
process writes files). Nothing the user owns is overwritten.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from helpers.adapters import add_lora, count_parameters
from helpers.data import count_truncated, load_text_classification, tokenize
from helpers.evaluation import evaluate_classifier
from helpers.models import load_classifier
from helpers.training import TrainConfig, train

DEFAULT_LR = {"lora": 5e-4, "full": 5e-5}  # LoRA trains few weights from zero, so it takes a larger step


def finetune_classifier(train_path: str | Path, test_path: str | Path, text_column: str = "text",
                        label_column: str = "label", output_dir: str | Path = "finetuned-classifier",
                        epochs: float = 3.0, lr: float | None = None, lora_rank: int | None = 8,
                        max_steps: int | None = None, model: str | Path | None = None, *,
                        batch_size: int = 16, max_length: int = 128, seed: int = 0,
                        progress: bool = True) -> dict[str, Any]:
    """Train on ``train_path``, score on ``test_path``, write everything into the new ``output_dir``;
    returns the metrics. ``lora_rank=None`` fine-tunes every weight; ``model`` is a hub id or folder."""
    start = time.perf_counter()
    if lora_rank is not None and lora_rank < 1:
        raise ValueError(f"LoRA rank must be a positive integer (or None for a full fine-tune), got {lora_rank}.")
    if max_length < 2:
        raise ValueError(f"max_length must be at least 2 tokens, got {max_length}.")
    lr = lr if lr is not None else DEFAULT_LR["full" if lora_rank is None else "lora"]
    config = TrainConfig(learning_rate=lr, epochs=epochs, max_steps=max_steps, batch_size=batch_size,
                         seed=seed, progress=progress, eval_every_steps=None, restore_best=False)
    out = check_new_output_dir(output_dir)
    train_ds, test_ds, labels = load_train_test(train_path, test_path, text_column, label_column)
    net, tokenizer = load_classifier(labels, model=model)
    if lora_rank is not None:
        net = add_lora(net, rank=lora_rank)
    max_length = min(max_length, tokenizer.model_max_length)
    truncated = {name: count_truncated(ds["text"], tokenizer, max_length)
                 for name, ds in (("train", train_ds), ("test", test_ds))}
    _say(truncation_report(truncated, len(train_ds) + len(test_ds), max_length))
    train_tok, test_tok = tokenize(train_ds, tokenizer, max_length), tokenize(test_ds, tokenizer, max_length)
    history = train(net, train_tok, config, tokenizer=tokenizer)
    metrics = evaluate_classifier(net, test_tok, tokenizer)
    trainable, total = count_parameters(net)
    metrics.update(n_train=len(train_ds), n_test=len(test_ds), n_labels=len(labels), steps=history.steps,
                   truncated_train=truncated["train"], truncated_test=truncated["test"], max_length=max_length,
                   trainable_parameters=trainable, total_parameters=total,
                   train_seconds=round(history.train_seconds, 2), seconds=round(time.perf_counter() - start, 2))
    facts = dict(model=str(model or "bundled all-MiniLM-L6-v2"), train=str(train_path), test=str(test_path),
                 text_column=text_column, label_column=label_column, epochs=epochs, lr=lr, lora_rank=lora_rank,
                 max_steps=max_steps, batch_size=batch_size, seed=seed)
    if _is_main_process():
        net = net.merge_and_unload() if lora_rank is not None else net  # a plain model: loads without peft
        write_outputs(out, net, tokenizer, labels, metrics, facts, history)
        _say(f"Accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f} on {len(test_ds)} test "
             f"examples; model, metrics.json and README.md are in {out}/")
    _wait_for_everyone()
    return metrics


def check_new_output_dir(output_dir: str | Path) -> Path:
    """The output folder, if it is new or empty; otherwise a clear error (nothing is overwritten)."""
    out = Path(output_dir).expanduser()
    if out.is_file():
        raise FileExistsError(f"Output {out} is an existing file; pass a new folder name.")
    if out.is_dir() and any(out.iterdir()):
        raise FileExistsError(f"Output folder {out} already has files; pass a new folder so nothing is overwritten.")
    return out


def load_train_test(train_path: str | Path, test_path: str | Path, text_column: str, label_column: str):
    """(train, test, label names): the test file is read with the training labels; needs 2+ classes."""
    train_ds = load_text_classification(train_path, text_column, label_column)
    labels = train_ds.features["label"].names
    if len(labels) < 2:
        raise ValueError(f"{Path(train_path).name} has a single label ({labels[0]!r}); a classifier needs "
                         "examples of at least two classes.")
    test_ds = load_text_classification(test_path, text_column, label_column, label_names=labels)
    return train_ds, test_ds, labels


def truncation_report(truncated: dict[str, int], total: int, max_length: int) -> str:
    """One line saying how many texts were cut to ``max_length`` tokens."""
    n = sum(truncated.values())
    if n == 0:
        return f"All {total} texts fit in {max_length} tokens."
    return (f"{n} of {total} texts are longer than {max_length} tokens and were truncated "
            f"(train {truncated['train']}, test {truncated['test']}); raise max_length to keep more of them.")


def write_outputs(out: Path, net, tokenizer, labels: list[str], metrics: dict[str, Any], facts: dict[str, Any],
                  history) -> None:
    """Write everything into a temporary sibling folder, then rename it to ``out`` (no half-written output)."""
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    net.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / "labels.json").write_text(json.dumps(labels, indent=1))
    (tmp / "metrics.json").write_text(json.dumps(metrics, indent=1))
    history.save(tmp / "history.json")
    (tmp / "README.md").write_text(model_card(labels, metrics, facts))
    if out.is_dir():
        out.rmdir()  # checked empty before training; rmdir refuses if anything appeared since
    os.replace(tmp, out)


def model_card(labels: list[str], metrics: dict[str, Any], facts: dict[str, Any]) -> str:
    """A short model card in Markdown: what it is, the data, the result, how to load it, its limits."""
    import torch
    import transformers

    method = "full fine-tune" if facts["lora_rank"] is None else f"LoRA rank {facts['lora_rank']} (merged)"
    shown = ", ".join(labels[:20]) + (f", ... ({len(labels)} in all)" if len(labels) > 20 else "")
    return f"""# Text classifier fine-tuned from {facts['model']}

**Task**: classify a text into one of {len(labels)} labels: {shown}.
**Method**: {method}, {metrics['steps']} optimiser steps, learning rate {facts['lr']}, batch {facts['batch_size']},
seed {facts['seed']}; torch {torch.__version__}, transformers {transformers.__version__}.

## Data
- Train: `{facts['train']}` ({metrics['n_train']} examples), text column `{facts['text_column']}`,
  label column `{facts['label_column']}`.
- Test: `{facts['test']}` ({metrics['n_test']} examples), never seen in training.
- Texts longer than {metrics['max_length']} tokens were truncated: {metrics['truncated_train']} in train,
  {metrics['truncated_test']} in test.

## Results on the test file
| accuracy | macro-F1 |
|---|---|
| {metrics['accuracy']:.4f} | {metrics['macro_f1']:.4f} |

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
"""


def _is_main_process() -> bool:
    # From the launcher's environment, not PartialState(): creating that before train() would fix the
    # accelerate state too early (train() picks the CPU backend for multi-process runs without a GPU).
    return int(os.environ.get("RANK", "0")) == 0


def _wait_for_everyone() -> None:
    from accelerate import PartialState
    PartialState().wait_for_everyone()


def _say(message: str) -> None:
    if _is_main_process():
        print(message, flush=True)
