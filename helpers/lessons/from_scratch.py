"""Notebook 01: pre-trained vs randomly initialised classifiers, and what each run cost.

The same MiniLM architecture starts once from its pre-trained weights and once
from random weights; both get the same optimiser steps and batch size, so the
only difference is where the weights started. Every run is monitored, and every
reading of the sweep made, on a validation split carved from banking77's training
split; the test split is scored once, at the end (``score_on_test``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from datasets import Dataset

from helpers import data, intervals, models
from helpers.classifier import FineTuned, evaluate, fine_tune_classifier
from helpers.evaluation import predict_logits
from helpers.runtime import Profile
from helpers.training import TrainConfig

# Published banking77 test accuracy (all 77 intents), for orientation on the plot.
ANCHORS = {
    "BERT-large, full data (Casanueva et al. 2020)": (None, 0.9366),
    "IntentBERT, 10 per intent": (10, 0.8394),
}


@dataclass(frozen=True)
class SweepSettings:
    """Knobs of the size sweep. The random-init model gets its own (higher) learning rate:
    random weights need bigger updates, and a fair race tunes each runner."""

    sizes: tuple[int | None, ...]  # training examples per intent (None = all)
    min_steps: int  # every run takes at least this many optimiser steps
    lr_pretrained: float
    lr_random: float
    curve_size: int | None  # the size whose learning curves are plotted
    val_per_class: int  # validation examples per intent, carved from banking77's training split
    evals: int  # validation passes per run (monitoring only: every run keeps its last weights)


def sweep_settings(p: Profile) -> SweepSettings:
    """The sweep for profile ``p`` (smoke: 2 sizes on 10 intents; full: 4 sizes on 77)."""
    return SweepSettings(
        sizes=p.pick(smoke=(5, 16), workshop=(5, 10, 30, 60), full=(5, 10, 30, None)),
        min_steps=p.pick(smoke=30, workshop=40, full=100),
        lr_pretrained=1e-4,
        lr_random=5e-4,
        curve_size=5,
        val_per_class=p.pick(smoke=10, workshop=20, full=20),
        evals=p.pick(smoke=3, workshop=4, full=5),
    )


def train_validation(p: Profile, s: SweepSettings, seed: int = 0) -> tuple[Dataset, Dataset]:
    """(training pool, validation): banking77's training split for the profile's intents, stratified."""
    pool = data.load_banking77("train", intents=p.intents, seed=seed)
    n_val = s.val_per_class * len(pool.features["label"].names)
    return data.stratified_split(pool, test_size=n_val, seed=seed)


def per_class_slice(dataset: Dataset, per_class: int | None) -> Dataset:
    """The first ``per_class`` examples of each label (None: all of them)."""
    if per_class is None:
        return dataset
    seen: dict[int, int] = {}
    keep = []
    for i, label in enumerate(dataset["label"]):
        seen[label] = seen.get(label, 0) + 1
        if seen[label] <= per_class:
            keep.append(i)
    return dataset.select(keep)


def budget_steps(n_examples: int, p: Profile, min_steps: int) -> int:
    """Optimiser steps for a training set: ``p.epochs`` passes, but never fewer than ``min_steps``."""
    return max(min_steps, math.ceil(p.epochs * n_examples / p.batch_size))


def train_classifier(
    train_set: Dataset,
    validation: Dataset,
    p: Profile,
    pretrained: bool,
    learning_rate: float,
    steps: int,
    head_only: bool = False,
    seed: int = 0,
    progress: bool = True,
    evals: int = 3,
) -> tuple[dict, FineTuned]:
    """Train one MiniLM classifier, monitored on ``validation`` (``evals`` passes; the last weights are kept).

    Returns (a JSON-ready record: validation accuracy, losses, costs; the trained run, for the final test score).
    The test split is refused here: it is scored once, at the end (``score_on_test``).
    """
    data.refuse_test_split(validation)
    labels = train_set.features["label"].names
    model, tok = models.load_classifier(labels, pretrained=pretrained)
    config = TrainConfig(
        learning_rate=learning_rate,
        max_steps=steps,
        batch_size=p.batch_size,
        eval_every_steps=max(1, math.ceil(steps / evals)),
        restore_best=False,  # the same budget for every run: monitoring only, no early stopping
        seed=seed,
        progress=progress,
    )
    run = fine_tune_classifier(
        train_set,
        config,
        method="head-only" if head_only else "full",
        eval_data=validation,
        model=model,
        tokenizer=tok,
        max_length=p.max_length,
    )
    history = run.history
    last = history.evals[-1] if history.evals else {}
    scores = last if last.get("step") == history.steps and "accuracy" in last else evaluate(run, validation)
    mean_tokens = float(np.mean([len(ids) for ids in run.train_data["input_ids"]]))
    return {
        "start": "pre-trained" if pretrained else "random init",
        "head_only": head_only,
        "per_class": len(train_set) / len(labels),
        "n_train": len(train_set),
        "val_accuracy": scores["accuracy"],
        "val_macro_f1": scores["macro_f1"],
        "learning_rate": learning_rate,
        "steps": history.steps,
        "examples_seen": history.examples_seen,
        "tokens_seen": round(history.examples_seen * mean_tokens),
        "seconds": history.train_seconds,
        "params_trained": run.trainable,
        "params_total": run.total,
        "losses": [r["loss"] for r in history.train],
        "val_losses": [[r["step"], r["eval_loss"]] for r in history.evals],
    }, run


def run_sweep(
    p: Profile, s: SweepSettings, train_pool: Dataset, validation: Dataset, seed: int = 0
) -> tuple[list[dict], dict[tuple[str, int | str], FineTuned]]:
    """Pre-trained and random-init runs at every size in ``s``, same steps and batch for both, on validation.

    Returns (one record per run, the trained runs by (start, size) for the final test score).
    """
    runs, trained = [], {}
    for size in s.sizes:
        train_set = per_class_slice(train_pool, size)
        steps = budget_steps(len(train_set), p, s.min_steps)
        for pretrained, lr in ((True, s.lr_pretrained), (False, s.lr_random)):
            print(f"{'pre-trained' if pretrained else 'random init'}: {size or 'all'} per intent, {steps} steps")
            record, run = train_classifier(train_set, validation, p, pretrained, lr, steps, seed=seed, evals=s.evals)
            record["size"] = size if size is not None else "all"
            runs.append(record)
            trained[record["start"], record["size"]] = run
    return runs, trained


def score_on_test(trained: dict[tuple[str, int | str], FineTuned], test_set: Dataset) -> list[dict]:
    """The final score, once: each trained run's test accuracy with its 95% bootstrap interval, and per-example
    right/wrong (for paired differences)."""
    rows = []
    for (start, size), run in trained.items():
        logits, labels = predict_logits(
            run.model, data.tokenize(test_set, run.tokenizer, run.max_length), run.tokenizer
        )
        right = logits.argmax(-1) == labels
        interval = intervals.mean_interval(right.astype(float))
        rows.append(
            {
                "start": start,
                "size": size,
                "per_class": len(run.train_data) / len(run.labels),
                "test_accuracy": interval.estimate,
                "low": interval.low,
                "high": interval.high,
                "right": right.astype(int).tolist(),
            }
        )
    return rows


def final_gap(final: Sequence[dict], size) -> intervals.Interval:
    """Pre-trained minus random-init test accuracy at ``size``, with a paired bootstrap interval."""
    right = {r["start"]: r["right"] for r in final if r["size"] == size}
    if set(right) != {"pre-trained", "random init"}:
        raise ValueError(f"No pre-trained and random-init pair at size {size!r} in the final scores.")
    return intervals.paired_difference(right["pre-trained"], right["random init"])


def sweep_frame(runs: Sequence[dict]) -> pd.DataFrame:
    """One row per run, without the per-step losses."""
    return pd.DataFrame([{k: v for k, v in r.items() if k not in ("losses", "val_losses")} for r in runs])


def gap_at(runs: Sequence[dict], size) -> float:
    """Pre-trained minus random-init validation accuracy at ``size`` examples per intent."""
    acc = {r["start"]: r["val_accuracy"] for r in runs if r["size"] == size and not r["head_only"]}
    if set(acc) != {"pre-trained", "random init"}:
        raise ValueError(
            f"No pre-trained and random-init pair at size {size!r}; sizes run: "
            f"{sorted({str(r['size']) for r in runs})}."
        )
    return acc["pre-trained"] - acc["random init"]


def smallest_size_reaching(runs: Sequence[dict], start: str, target: float) -> float | None:
    """Fewest examples per intent at which ``start`` reached ``target`` validation accuracy, or None if never."""
    hits = [r["per_class"] for r in runs if r["start"] == start and not r["head_only"] and r["val_accuracy"] >= target]
    return min(hits) if hits else None
