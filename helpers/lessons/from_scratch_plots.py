"""Notebook 01's charts: the size sweep, the learning curves at one size, the final test scores with intervals, and
the language models' perplexity."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from helpers.lessons.from_scratch import ANCHORS, sweep_frame
from helpers.plots import plot_interval_bars


def _axes(ax, figsize: tuple[float, float] = (7, 4)):
    """``ax``, or a new figure's axes."""
    return ax if ax is not None else plt.subplots(figsize=figsize)[1]


def _per_intent_axes(ax, ylabel: str, title: str, legend_at: str = "lower right"):
    """The accuracy-vs-data set-up of the size sweep: log-scale examples per intent, accuracy 0 to 1."""
    ax.set(xscale="log", xlabel="training examples per intent (log scale)", ylabel=ylabel, ylim=(0, 1), title=title)
    ax.legend(fontsize=8, loc=legend_at)
    return ax


def plot_test(final: Sequence[dict], ax=None, seed_scores: pd.DataFrame | None = None):
    """Test accuracy per size and starting point as bars with their 95% bootstrap intervals; with ``seed_scores``
    (``from_scratch_scores.score_seeds``) of two or more seeds, each start's mean over the seeds as one more group,
    its error bar spanning the lowest to the highest seed."""
    frame = pd.DataFrame(final).sort_values("per_class", kind="stable")
    frame = frame.assign(examples=[f"{n:g}" for n in frame["per_class"]])
    if seed_scores is not None and seed_scores["seed"].nunique() > 1:
        spread = seed_scores.groupby("start", sort=False).agg(
            per_class=("per_class", "first"),
            test_accuracy=("test_accuracy", "mean"),
            low=("test_accuracy", "min"),
            high=("test_accuracy", "max"),
            seeds=("seed", "nunique"),
        )
        spread["examples"] = [f"{n:g}\nmean of {k} seeds" for n, k in zip(spread["per_class"], spread["seeds"])]
        frame = pd.concat([frame, spread.reset_index()], ignore_index=True)
    ax = plot_interval_bars(
        frame,
        "examples",
        "test_accuracy",
        "low",
        "high",
        hue="start",
        ax=_axes(ax),
        title="The final score: test set, scored once",
    )
    ax.set(xlabel="training examples per intent", ylabel="test accuracy (95% interval)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, loc="best")
    return ax


def plot_sweep(runs: Sequence[dict], ax=None, anchors: dict | None = None):
    """Validation accuracy vs examples per intent, one line per starting point, published anchors marked."""
    ax = _axes(ax)
    frame = sweep_frame(runs)
    sns.lineplot(data=frame[~frame["head_only"]], x="per_class", y="val_accuracy", hue="start", marker="o", ax=ax)
    for (label, (x, y)), color in zip((anchors or ANCHORS).items(), ("tab:green", "tab:purple")):
        if x is None:
            ax.axhline(y, ls="--", color=color, lw=1, label=f"{label}: {y:.1%}")
        else:
            ax.plot([x], [y], marker="*", ms=14, color=color, ls="none", label=f"{label}: {y:.1%}")
    return _per_intent_axes(ax, "validation accuracy", "Pre-trained vs random init, same architecture and budget")


def plot_curves(runs: Sequence[dict], size, ax=None, smooth: int = 5):
    """Training loss per step (solid) and validation loss (dashed, dots) at ``size`` examples per intent."""
    ax = _axes(ax)
    for r in runs:
        if r["size"] == size and not r["head_only"]:
            loss = pd.Series(r["losses"]).rolling(smooth, min_periods=1).mean()
            line = ax.plot(np.arange(1, len(loss) + 1), loss, label=f"{r['start']} (lr {r['learning_rate']:g})")[0]
            if r.get("val_losses"):
                steps, val = zip(*r["val_losses"])
                ax.plot(steps, val, ls="--", marker="o", color=line.get_color(), label=f"{r['start']}, validation")
    ax.set(
        xlabel="optimiser step",
        ylabel=f"loss (training: rolling mean of {smooth})",
        title=f"Learning curves at {size} examples per intent",
    )
    ax.legend()
    return ax


def plot_perplexity(scores: Mapping[str, dict], xlabel: str, title: str, ax=None):
    """One point per model (log scale, lower is better) with its value written above it; horizontal error bars
    where a score has ``low`` and ``high`` (its interval)."""
    ax = _axes(ax, (7, 3))
    colors = ["grey", "tab:orange", "tab:blue", "tab:green"]
    for i, r in enumerate(scores.values()):
        v = r["perplexity"]
        err = [[v - r["low"]], [r["high"] - v]] if "low" in r else None
        ax.errorbar([v], [i], xerr=err, fmt="o", ms=8, capsize=5, color=colors[i % len(colors)])
        interval = f" ({r['low']:,.1f} to {r['high']:,.1f})" if err else ""
        ax.annotate(f"{v:,.1f}{interval}", (v, i), xytext=(0, 7), textcoords="offset points", ha="center", fontsize=8)
    ax.set(xscale="log", xlabel=xlabel, title=title, yticks=range(len(scores)), yticklabels=list(scores))
    ax.set_ylim(-0.5, len(scores) - 0.3)
    ax.margins(x=0.15)
    return ax
