"""banking77 test accuracy of the workbook's MiniLM fine-tune, beside the published references.

Runs the full-data fine-tune (all 77 intents, 10,003 examples) and the
10-examples-per-intent fine-tune, and writes bench/results/quality.json.
    python -m bench.quality [--epochs 5] [--shots-epochs 20] [--lr 1e-4 | --select-lr 1e-4 2e-4] [--settings full]
With --select-lr the full-data learning rate is chosen on a stratified 10% of the training set held back from
training (the test set is never used to choose anything), then the final model trains on all of it; when the
choice is the learning rate of the full-data result already saved, that result is kept rather than re-trained.
--settings re-runs only the named settings and keeps the others' saved results.
"""

from __future__ import annotations

import argparse
import json

from datasets import Dataset

from bench.common import RESULTS, save
from helpers import data, runtime
from helpers.classifier import evaluate, fine_tune_classifier
from helpers.training import TrainConfig

REFERENCES = {
    "full": {"model": "BERT-large (fine-tuned), Casanueva et al. 2020", "params_m": 340, "accuracy": 0.9366},
    "10-shot": {"model": "IntentBERT (10 per intent)", "params_m": 110, "accuracy": 0.8394},
}
BATCH_SIZE, MAX_LENGTH, SEED = 32, 64, 0


def fine_tune_and_score(train: Dataset, test: Dataset, epochs: float, lr: float) -> dict:
    """Fine-tune MiniLM on ``train``, then its accuracy and macro-F1 on ``test``, with the run's settings and time."""
    config = TrainConfig(
        learning_rate=lr, epochs=epochs, batch_size=BATCH_SIZE, seed=SEED, warmup_ratio=0.1, weight_decay=0.01
    )
    run = fine_tune_classifier(train, config, max_length=MAX_LENGTH)  # seeds with SEED before drawing the head
    history, metrics = run.history, evaluate(run, test)
    return {
        "train_examples": len(train),
        "test_examples": len(test),
        "epochs": epochs,
        "params_m": round(run.total / 1e6, 1),
        "learning_rate": lr,
        "batch_size": BATCH_SIZE,
        "max_length": MAX_LENGTH,
        "steps": history.steps,
        "train_seconds": round(history.train_seconds, 1),
        **{k: round(v, 4) for k, v in metrics.items()},
    }


def select_learning_rate(train: Dataset, candidates: list[float], epochs: float) -> tuple[float, list[dict]]:
    """(best learning rate, one row per candidate): accuracy on a stratified 10% of ``train`` held back."""
    fit, validation = data.stratified_split(train, test_size=0.1, seed=SEED)
    rows = []
    for lr in candidates:
        rows.append(fine_tune_and_score(fit, validation, epochs, lr))
        print("validation:", rows[-1], flush=True)
    return max(rows, key=lambda r: r["accuracy"])["learning_rate"], rows


def main() -> None:
    """Run the fine-tunes asked for and write bench/results/quality.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=float, default=5)
    parser.add_argument("--shots-epochs", type=float, default=20)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--select-lr", type=float, nargs="+", help="full-data learning rates to choose from")
    parser.add_argument("--settings", nargs="+", default=["10-shot", "full"], choices=["10-shot", "full"])
    args = parser.parse_args()
    runtime.setup_notebook()
    path = RESULTS / "quality.json"
    saved = json.loads(path.read_text()) if path.exists() else {}
    results = {k: v for k, v in saved.items() if k in ("10-shot", "full", "selection")}
    results |= {"model": "all-MiniLM-L6-v2", "references": REFERENCES}
    test = data.load_banking77("test")
    if "10-shot" in args.settings:
        results["10-shot"] = {
            "per_class": 10,
            **fine_tune_and_score(
                data.load_banking77("train", per_class=10, seed=SEED), test, args.shots_epochs, args.lr
            ),
        }
        print(results["10-shot"], flush=True)
    if "full" in args.settings:
        train, lr = data.load_banking77("train"), args.lr
        results.pop("selection", None)  # a new full-data result; only a selection made now may stand beside it
        if args.select_lr:
            lr, rows = select_learning_rate(train, args.select_lr, args.epochs)
            results["selection"] = {"validation_share": 0.1, "rows": rows, "chosen_learning_rate": lr}
        old = results.get("full", {})
        if not (args.select_lr and old.get("learning_rate") == lr and old.get("epochs") == args.epochs):
            results["full"] = {"per_class": None, **fine_tune_and_score(train, test, args.epochs, lr)}
        print(results["full"], flush=True)
    save("quality", results)


if __name__ == "__main__":
    main()
