"""banking77 test accuracy of the workbook's MiniLM fine-tune, beside the published references.

Runs the full-data fine-tune (all 77 intents, 10,003 examples) and the
10-examples-per-intent fine-tune, and writes bench/results/quality.json.
    python -m bench.quality [--epochs 5] [--shots-epochs 20]
"""

from __future__ import annotations

import argparse

from bench.common import save
from helpers import data, evaluation, models, runtime, training

REFERENCES = {
    "full": {"model": "BERT-large (fine-tuned), Casanueva et al. 2020", "params_m": 340, "accuracy": 0.9366},
    "10-shot": {"model": "IntentBERT (10 per intent)", "params_m": 110, "accuracy": 0.8394},
}


def run(per_class: int | None, epochs: float, lr: float, batch_size: int, max_length: int, seed: int) -> dict:
    """Fine-tune MiniLM on banking77 train (``per_class`` examples per intent, None = all); test on all of test."""
    runtime.seed_everything(seed)
    train = data.load_banking77("train", per_class=per_class, seed=seed)
    test = data.load_banking77("test")
    model, tok = models.load_classifier(train.features["label"].names)
    config = training.TrainConfig(learning_rate=lr, epochs=epochs, batch_size=batch_size, seed=seed,
                                  warmup_ratio=0.1, weight_decay=0.01)
    history = training.train(model, data.tokenize(train, tok, max_length), config, tokenizer=tok)
    metrics = evaluation.evaluate_classifier(model, data.tokenize(test, tok, max_length), tok)
    return {"per_class": per_class, "train_examples": len(train), "test_examples": len(test), "epochs": epochs,
            "learning_rate": lr, "batch_size": batch_size, "max_length": max_length, "steps": history.steps,
            "train_seconds": round(history.train_seconds, 1), **{k: round(v, 4) for k, v in metrics.items()}}


def main() -> None:
    """Run both fine-tunes and write bench/results/quality.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=float, default=5)
    parser.add_argument("--shots-epochs", type=float, default=20)
    parser.add_argument("--lr", type=float, default=1e-4)
    args = parser.parse_args()
    runtime.setup_notebook()
    results = {"model": "all-MiniLM-L6-v2 (22.7M params)", "references": REFERENCES}
    results["10-shot"] = run(10, args.shots_epochs, args.lr, 32, 64, seed=0)
    print(results["10-shot"], flush=True)
    results["full"] = run(None, args.epochs, args.lr, 32, 64, seed=0)
    print(results["full"], flush=True)
    save("quality", results)


if __name__ == "__main__":
    main()
