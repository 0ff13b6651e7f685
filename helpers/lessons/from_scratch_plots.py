"""Notebook 01's charts: the size sweep, the learning curves at one size, and the final test scores with intervals."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from helpers.lessons.from_scratch import ANCHORS, sweep_frame


def plot_test(final: Sequence[dict], ax=None):
    """Test accuracy per size with 95% bootstrap intervals as error bars, one line per starting point."""
    ax = ax if ax is not None else plt.subplots(figsize=(7, 4))[1]
    frame = pd.DataFrame(final)
    for start, part in frame.groupby("start", sort=False):
        part = part.sort_values("per_class")
        err = [part["test_accuracy"] - part["low"], part["high"] - part["test_accuracy"]]
        ax.errorbar(part["per_class"], part["test_accuracy"], yerr=err, marker="o", capsize=4, label=start)
    ax.set(
        xscale="log",
        xlabel="training examples per intent (log scale)",
        ylabel="test accuracy (95% interval)",
        ylim=(0, 1),
        title="The final score: test set, scored once",
    )
    ax.legend(fontsize=8, loc="lower right")
    return ax


def plot_sweep(runs: Sequence[dict], ax=None, anchors: dict | None = None):
    """Validation accuracy vs examples per intent, one line per starting point, published anchors marked."""
    ax = ax if ax is not None else plt.subplots(figsize=(7, 4))[1]
    frame = sweep_frame(runs)
    sns.lineplot(data=frame[~frame["head_only"]], x="per_class", y="val_accuracy", hue="start", marker="o", ax=ax)
    for (label, (x, y)), color in zip((anchors or ANCHORS).items(), ("tab:green", "tab:purple")):
        if x is None:
            ax.axhline(y, ls="--", color=color, lw=1, label=f"{label}: {y:.1%}")
        else:
            ax.plot([x], [y], marker="*", ms=14, color=color, ls="none", label=f"{label}: {y:.1%}")
    ax.set(
        xscale="log",
        xlabel="training examples per intent (log scale)",
        ylabel="validation accuracy",
        ylim=(0, 1),
        title="Pre-trained vs random init, same architecture and budget",
    )
    ax.legend(fontsize=8, loc="lower right")
    return ax


def plot_curves(runs: Sequence[dict], size, ax=None, smooth: int = 5):
    """Training loss per step (solid) and validation loss (dashed, dots) at ``size`` examples per intent."""
    ax = ax if ax is not None else plt.subplots(figsize=(7, 4))[1]
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
