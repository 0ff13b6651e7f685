"""Notebook 01: pre-trained vs randomly initialised classifiers, and what each run cost.

The same MiniLM architecture starts once from its pre-trained weights and once
from random weights; both get the same optimiser steps and batch size, so the
only difference is where the weights started. Every run is monitored, and every
reading of the sweep made, on a validation split carved from banking77's training
split; the test split is scored once, at the end (``from_scratch_scores.score_on_test``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from datasets import Dataset

from helpers import data, models
from helpers.classifier import FineTuned, evaluate, fine_tune_classifier
from helpers.runtime import Profile, seed_everything
from helpers.training import TrainConfig

# Published banking77 test accuracy (all 77 intents), for orientation on the plot.
ANCHORS = {
    "BERT-large, full data (Casanueva et al. 2020)": (None, 0.9366),
    "IntentBERT, 10 per intent": (10, 0.8394),
}


@dataclass(frozen=True)
class SweepSettings:
    """Knobs of the size sweep. Each start gets its own learning rate, chosen on validation from its grid at
    ``tune_size``: random weights need bigger updates than pre-trained ones, and a fair race tunes each runner."""

    sizes: tuple[int | None, ...]  # training examples per intent (None = all)
    min_steps: int  # every run takes at least this many optimiser steps
    lr_grid: dict[str, tuple[float, ...]]  # learning rates tried, by start ("pre-trained", "random init")
    tune_size: int  # the size (examples per intent) at which the learning rates are chosen
    curve_size: int | None  # the size whose learning curves are plotted
    val_per_class: int  # validation examples per intent, carved from banking77's training split
    evals: int  # validation passes per run (monitoring only: every run keeps its last weights)


def sweep_settings(p: Profile) -> SweepSettings:
    """The sweep for profile ``p`` (smoke: 2 sizes on 10 intents, 2 learning rates per start; full: 4 sizes on 77)."""
    return SweepSettings(
        sizes=p.pick(smoke=(5, 16), workshop=(5, 10, 30, 60), full=(5, 10, 30, None)),
        min_steps=p.pick(smoke=30, workshop=40, full=100),
        lr_grid={
            "pre-trained": p.pick(smoke=(1e-4, 3e-4), workshop=(5e-5, 1e-4, 3e-4), full=(3e-5, 1e-4, 3e-4)),
            "random init": p.pick(smoke=(5e-4, 1e-3), workshop=(3e-4, 1e-3, 3e-3), full=(3e-4, 1e-3, 3e-3)),
        },
        tune_size=5,
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


# Share of each run's steps spent warming the learning rate up, by start. Random weights get a longer warm-up, as
# training from scratch usually does: with the pre-trained start's 10%, random init's best rate at the smallest size
# sent larger runs to chance on validation (tests/test_from_scratch.py shows the schedule; 01 shows the runs).
WARMUP = {"pre-trained": 0.1, "random init": 0.3}


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
    The test split is refused here: it is scored once, at the end (``from_scratch_scores.score_on_test``).
    """
    data.refuse_test_split(validation)
    labels = train_set.features["label"].names
    seed_everything(seed)  # the seed draws the starting weights too: the new head, and every weight from random init
    model, tok = models.load_classifier(labels, pretrained=pretrained)
    start = "pre-trained" if pretrained else "random init"
    config = TrainConfig(
        learning_rate=learning_rate,
        warmup_ratio=WARMUP[start],
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
        "start": start,
        "head_only": head_only,
        "per_class": len(train_set) / len(labels),
        "n_train": len(train_set),
        "val_accuracy": scores["accuracy"],
        "val_macro_f1": scores["macro_f1"],
        "learning_rate": learning_rate,
        "warmup_ratio": config.warmup_ratio,
        "steps": history.steps,
        "examples_seen": history.examples_seen,
        "tokens_seen": round(history.examples_seen * mean_tokens),
        "seconds": history.train_seconds,
        "params_trained": run.trainable,
        "params_total": run.total,
        "losses": [r["loss"] for r in history.train],
        "val_losses": [[r["step"], r["eval_loss"]] for r in history.evals],
    }, run


STARTS = {"pre-trained": True, "random init": False}  # start name -> load the pre-trained weights?


@dataclass(frozen=True)
class Choice:
    """A start's learning rate, chosen on validation, with the grid run that won (reused by the sweep)."""

    learning_rate: float
    record: dict
    run: FineTuned


def choose_learning_rates(
    p: Profile, s: SweepSettings, train_pool: Dataset, validation: Dataset, seed: int = 0
) -> tuple[list[dict], dict[str, Choice]]:
    """Each start's grid of learning rates at ``s.tune_size``, same steps as the sweep; the best on validation wins.

    Returns (one record per start and learning rate, with ``chosen``; each start's winner).
    """
    train_set = per_class_slice(train_pool, s.tune_size)
    steps = budget_steps(len(train_set), p, s.min_steps)
    grid, chosen = [], {}
    for start, pretrained in STARTS.items():
        for lr in s.lr_grid[start]:
            print(f"{start}: learning rate {lr:g}, {s.tune_size} per intent, {steps} steps")
            record, run = train_classifier(train_set, validation, p, pretrained, lr, steps, seed=seed, evals=s.evals)
            record["size"] = s.tune_size
            grid.append(record)
            if start not in chosen or record["val_accuracy"] > chosen[start].record["val_accuracy"]:
                chosen[start] = Choice(lr, record, run)  # ties keep the first (smaller) rate
    for record in grid:
        record["chosen"] = record["learning_rate"] == chosen[record["start"]].learning_rate
    return grid, chosen


def grid_frame(grid: Sequence[dict]) -> pd.DataFrame:
    """The learning-rate grid as a table: validation accuracy and macro-F1 per start and rate, the winners marked."""
    return sweep_frame(grid)[["start", "learning_rate", "val_accuracy", "val_macro_f1", "steps", "chosen"]]


def run_sweep(
    p: Profile, s: SweepSettings, train_pool: Dataset, validation: Dataset, chosen: dict[str, Choice], seed: int = 0
) -> tuple[list[dict], dict[tuple[str, int | str], FineTuned]]:
    """Pre-trained and random-init runs at every size in ``s``, each at its ``chosen`` learning rate, same steps and
    batch for both, on validation (the grid's winning runs stand for ``s.tune_size``).

    Returns (one record per run, the trained runs by (start, size) for the final test score).
    """
    runs, trained = [], {}
    for size in s.sizes:
        train_set = per_class_slice(train_pool, size)
        steps = budget_steps(len(train_set), p, s.min_steps)
        for start, pretrained in STARTS.items():
            choice = chosen[start]
            if size == s.tune_size:
                record, run = dict(choice.record), choice.run
            else:
                print(f"{start}: {size or 'all'} per intent, {steps} steps, learning rate {choice.learning_rate:g}")
                record, run = train_classifier(
                    train_set, validation, p, pretrained, choice.learning_rate, steps, seed=seed, evals=s.evals
                )
            record.pop("chosen", None)
            record["size"] = size if size is not None else "all"
            runs.append(record)
            trained[start, record["size"]] = run
    return runs, trained


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
