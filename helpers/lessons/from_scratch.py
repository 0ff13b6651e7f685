"""Notebook 01: pre-trained vs randomly initialised classifiers, and what each run cost.

The same MiniLM architecture starts once from its pre-trained weights and once
from random weights; both get the same optimiser steps and batch size, so the
only difference is where the weights started.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from datasets import Dataset

from helpers import data, models
from helpers.classifier import evaluate, fine_tune_classifier
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


def sweep_settings(p: Profile) -> SweepSettings:
    """The sweep for profile ``p`` (smoke: 2 sizes on 10 intents; full: 4 sizes on 77)."""
    return SweepSettings(
        sizes=p.pick(smoke=(5, 16), workshop=(5, 10, 30, 60), full=(5, 10, 30, None)),
        min_steps=p.pick(smoke=30, workshop=40, full=100),
        lr_pretrained=1e-4,
        lr_random=5e-4,
        curve_size=5,
    )


def budget_steps(n_examples: int, p: Profile, min_steps: int) -> int:
    """Optimiser steps for a training set: ``p.epochs`` passes, but never fewer than ``min_steps``."""
    return max(min_steps, math.ceil(p.epochs * n_examples / p.batch_size))


def train_classifier(
    train_set: Dataset,
    test_set: Dataset,
    p: Profile,
    pretrained: bool,
    learning_rate: float,
    steps: int,
    head_only: bool = False,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Train one MiniLM classifier and return its test accuracy, per-step losses and costs (JSON-ready)."""
    labels = train_set.features["label"].names
    model, tok = models.load_classifier(labels, pretrained=pretrained)
    config = TrainConfig(
        learning_rate=learning_rate, max_steps=steps, batch_size=p.batch_size, seed=seed, progress=progress
    )
    run = fine_tune_classifier(
        train_set,
        config,
        method="head-only" if head_only else "full",
        model=model,
        tokenizer=tok,
        max_length=p.max_length,
    )
    scores = evaluate(run, test_set)
    history = run.history
    mean_tokens = float(np.mean([len(ids) for ids in run.train_data["input_ids"]]))
    return {
        "start": "pre-trained" if pretrained else "random init",
        "head_only": head_only,
        "per_class": len(train_set) / len(labels),
        "n_train": len(train_set),
        "accuracy": scores["accuracy"],
        "macro_f1": scores["macro_f1"],
        "learning_rate": learning_rate,
        "steps": history.steps,
        "examples_seen": history.examples_seen,
        "tokens_seen": round(history.examples_seen * mean_tokens),
        "seconds": history.train_seconds,
        "params_trained": run.trainable,
        "params_total": run.total,
        "losses": [r["loss"] for r in history.train],
    }


def run_sweep(p: Profile, s: SweepSettings, seed: int = 0) -> list[dict]:
    """Pre-trained and random-init runs at every size in ``s``, same steps and batch for both."""
    test_set = data.load_banking77("test", per_class=p.test_per_class, intents=p.intents, seed=seed)
    runs = []
    for size in s.sizes:
        train_set = data.load_banking77("train", per_class=size, intents=p.intents, seed=seed)
        steps = budget_steps(len(train_set), p, s.min_steps)
        for pretrained, lr in ((True, s.lr_pretrained), (False, s.lr_random)):
            print(f"{'pre-trained' if pretrained else 'random init'}: {size or 'all'} per intent, {steps} steps")
            run = train_classifier(train_set, test_set, p, pretrained, lr, steps, seed=seed)
            runs.append({**run, "size": size if size is not None else "all"})
    return runs


def sweep_frame(runs: Sequence[dict]) -> pd.DataFrame:
    """One row per run, without the per-step losses."""
    return pd.DataFrame([{k: v for k, v in r.items() if k != "losses"} for r in runs])


def gap_at(runs: Sequence[dict], size) -> float:
    """Pre-trained minus random-init test accuracy at ``size`` examples per intent."""
    acc = {r["start"]: r["accuracy"] for r in runs if r["size"] == size and not r["head_only"]}
    if set(acc) != {"pre-trained", "random init"}:
        raise ValueError(
            f"No pre-trained and random-init pair at size {size!r}; sizes run: "
            f"{sorted({str(r['size']) for r in runs})}."
        )
    return acc["pre-trained"] - acc["random init"]


def smallest_size_reaching(runs: Sequence[dict], start: str, target: float) -> float | None:
    """Fewest examples per intent at which ``start`` reached ``target`` accuracy, or None if it never did."""
    hits = [r["per_class"] for r in runs if r["start"] == start and not r["head_only"] and r["accuracy"] >= target]
    return min(hits) if hits else None


def plot_sweep(runs: Sequence[dict], ax=None, anchors: dict | None = None):
    """Test accuracy vs examples per intent, one line per starting point, published anchors marked."""
    ax = ax if ax is not None else plt.subplots(figsize=(7, 4))[1]
    frame = sweep_frame(runs)
    sns.lineplot(data=frame[~frame["head_only"]], x="per_class", y="accuracy", hue="start", marker="o", ax=ax)
    for (label, (x, y)), color in zip((anchors or ANCHORS).items(), ("tab:green", "tab:purple")):
        if x is None:
            ax.axhline(y, ls="--", color=color, lw=1, label=f"{label}: {y:.1%}")
        else:
            ax.plot([x], [y], marker="*", ms=14, color=color, ls="none", label=f"{label}: {y:.1%}")
    ax.set(
        xscale="log",
        xlabel="training examples per intent (log scale)",
        ylabel="test accuracy",
        ylim=(0, 1),
        title="Pre-trained vs random init, same architecture and budget",
    )
    ax.legend(fontsize=8, loc="lower right")
    return ax


def plot_curves(runs: Sequence[dict], size, ax=None, smooth: int = 5):
    """Training loss per step at ``size`` examples per intent, one line per starting point."""
    ax = ax if ax is not None else plt.subplots(figsize=(7, 4))[1]
    for r in runs:
        if r["size"] == size and not r["head_only"]:
            loss = pd.Series(r["losses"]).rolling(smooth, min_periods=1).mean()
            ax.plot(np.arange(1, len(loss) + 1), loss, label=f"{r['start']} (lr {r['learning_rate']:g})")
    ax.set(
        xlabel="optimiser step",
        ylabel=f"training loss (rolling mean of {smooth})",
        title=f"Learning curves at {size} examples per intent",
    )
    ax.legend()
    return ax
