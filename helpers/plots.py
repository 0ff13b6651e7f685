"""Seaborn plots the notebooks share. Each returns its matplotlib axes and writes no file."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns


def _axes(ax, figsize=(7, 4)):
    return ax if ax is not None else plt.subplots(figsize=figsize)[1]


def plot_history(history, ax=None, title: str | None = None, smooth: int = 5):
    """Training loss (rolling mean over ``smooth`` steps) and eval loss against optimiser steps."""
    ax = _axes(ax)
    train = history.train_frame()
    if not train.empty:
        ax.plot(train["step"], train["loss"], color="tab:blue", alpha=0.25, lw=1)
        ax.plot(
            train["step"], train["loss"].rolling(smooth, min_periods=1).mean(), color="tab:blue", label="training loss"
        )
    evals = history.eval_frame()
    if "eval_loss" in evals:
        ax.plot(evals["step"], evals["eval_loss"], "o-", color="tab:orange", label="validation loss")
    if history.best_step is not None and history.restored_step is not None:
        ax.axvline(history.best_step, color="grey", ls="--", lw=1, label=f"best (step {history.best_step})")
    ax.set(xlabel="optimiser step", ylabel="loss", title=title or "Learning curve")
    ax.legend()
    return ax


def plot_class_balance(dataset, ax=None, top: int | None = None, title: str = "Examples per intent"):
    """Bar chart of examples per label (most common first)."""
    names = dataset.features["label"].names
    counts = pd.Series([names[i] for i in dataset["label"]]).value_counts()
    counts = counts.head(top) if top else counts
    ax = _axes(ax, figsize=(7, max(3, 0.18 * len(counts))))
    sns.barplot(x=counts.values, y=counts.index, ax=ax, color="tab:blue")
    ax.set(xlabel="examples", ylabel="", title=title)
    ax.tick_params(axis="y", labelsize=7)
    return ax


def plot_lengths(
    lengths: Sequence[int], ax=None, unit: str = "tokens", cutoff: int | None = None, title: str | None = None
):
    """Histogram of text lengths, with an optional truncation cut-off line."""
    ax = _axes(ax)
    sns.histplot(np.asarray(lengths), bins=40, ax=ax)
    if cutoff:
        share = float(np.mean(np.asarray(lengths) > cutoff))
        ax.axvline(cutoff, color="tab:red", ls="--", label=f"max_length={cutoff} ({share:.1%} longer)")
        ax.legend()
    ax.set(xlabel=f"length ({unit})", ylabel="texts", title=title or f"Text length in {unit}")
    return ax


def plot_confusion(
    matrix: np.ndarray, labels: Sequence[str], ax=None, normalize: bool = True, title: str = "Confusion matrix"
):
    """Heatmap of a confusion matrix (rows: true label, columns: predicted)."""
    m = matrix.astype(float)
    if normalize:
        m = m / np.clip(m.sum(axis=1, keepdims=True), 1, None)
    ax = _axes(ax, figsize=(0.45 * len(labels) + 3, 0.45 * len(labels) + 2))
    sns.heatmap(
        m,
        xticklabels=labels,
        yticklabels=labels,
        cmap="Blues",
        ax=ax,
        vmin=0,
        annot=len(labels) <= 12,
        fmt=".2f" if normalize else ".0f",
        cbar=False,
    )
    ax.set(xlabel="predicted", ylabel="true", title=title)
    return ax


def _label_bars(ax, containers, percent: bool, **label_style) -> None:
    """Print each bar's value on it (as a percentage with ``percent``, which also formats the y axis)."""
    for container in containers:
        ax.bar_label(container, fmt="{:.0%}" if percent else "{:.3g}", fontsize=8, **label_style)
    if percent:
        ax.yaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))


def plot_bars(
    frame: pd.DataFrame, x: str, y: str, hue: str | None = None, ax=None, title: str = "", percent: bool = False
):
    """A labelled bar chart from a tidy table (values printed on the bars)."""
    ax = _axes(ax)
    sns.barplot(data=frame, x=x, y=y, hue=hue, ax=ax)
    _label_bars(ax, ax.containers, percent)
    ax.set(title=title)
    return ax


def plot_interval_bars(
    frame: pd.DataFrame,
    x: str,
    y: str,
    low: str,
    high: str,
    hue: str | None = None,
    ax=None,
    title: str = "",
    percent: bool = False,
):
    """Bars of ``y`` per ``x`` (and ``hue``) from a tidy table, each with the precomputed interval [``low``,
    ``high``] of its row as an asymmetric error bar (seaborn's own ``errorbar`` cannot draw a BCa bootstrap), values
    printed on the bars."""
    missing = [c for c in (x, y, low, high, hue) if c is not None and c not in frame.columns]
    if missing:
        raise ValueError(
            f"Column(s) {missing} not in the table; its columns are: {', '.join(map(str, frame.columns))}."
        )
    keys = [x] if hue is None else [x, hue]
    if frame.duplicated(keys).any():
        raise ValueError(f"One row per bar: some rows share the same {' and '.join(keys)}, so their intervals clash.")
    order = list(dict.fromkeys(frame[x]))  # categories in order of appearance, numbers too
    hue_order = None if hue is None else list(dict.fromkeys(frame[hue]))
    ax = _axes(ax)
    before = len(ax.containers)
    sns.barplot(data=frame, x=x, y=y, hue=hue, order=order, hue_order=hue_order, errorbar=None, ax=ax)
    rows = frame.set_index(keys)
    centres, values, lows, highs = [], [], [], []
    containers = ax.containers[before:]  # one per hue level, in hue_order
    for i, container in enumerate(containers):
        for bar in container:
            centre = bar.get_x() + bar.get_width() / 2
            key = order[round(centre)] if hue is None else (order[round(centre)], hue_order[i])
            centres.append(centre)
            values.append(bar.get_height())
            lows.append(rows.loc[key, low])
            highs.append(rows.loc[key, high])
    # centred, on white: readable where the error bar crosses it
    _label_bars(
        ax,
        containers,
        percent,
        label_type="center",
        bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none", "pad": 1},
    )
    values, lows, highs = np.asarray(values), np.asarray(lows, float), np.asarray(highs, float)
    # clipped at the bar: a bootstrap interval can (rarely) sit wholly on one side of its estimate
    err = [np.clip(values - lows, 0, None), np.clip(highs - values, 0, None)]
    ax.errorbar(centres, values, yerr=err, fmt="none", ecolor="black", capsize=3, lw=1)
    ax.set(title=title)
    return ax


def plot_step_memory(frame: pd.DataFrame, x: str = "variant", ax=None, title: str = "Memory of one training step"):
    """Stacked bars of a training step's memory account (``helpers.memory.StepMemory`` rows) and its measured peak."""
    ax = _axes(ax, figsize=(7, 4))
    larger = np.maximum(frame["activations_mib"], frame["gradients_mib"])
    parts = [
        ("weights", frame["weights_mib"], {}),
        ("AdamW state", frame["optimizer_mib"], {}),
        ("activations or gradients, the larger", larger, {}),
        ("working memory (at most)", frame["working_mib"], {"hatch": "//", "alpha": 0.35}),
    ]
    bottom = np.zeros(len(frame))
    for (label, values, style), color in zip(parts, sns.color_palette(n_colors=len(parts))):
        ax.bar(frame[x], values, bottom=bottom, label=label, color=color, **style)
        bottom = bottom + np.asarray(values)
    ax.scatter(frame[x], frame["measured_mib"], marker="D", color="black", zorder=5, label="measured peak")
    for xi, top, peak in zip(frame[x], bottom, frame["measured_mib"]):
        ax.annotate(
            f"{peak:.0f}", (xi, max(top, peak)), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8
        )
    ax.set(title=title, ylabel="MiB", xlabel="")
    ax.legend(fontsize=8, loc="upper left")
    return ax
