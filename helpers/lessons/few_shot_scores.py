"""Notebook 09's final scoring: every finished predictor scores the test split once, after all training; test
accuracy with intervals, the learning curves, and the claim against prompting with paired intervals.

The choices stay with validation: "the right method" is the best on validation, and no prompt is picked on test,
each is faced (``versus_prompting``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd
from datasets import Dataset

from helpers.intervals import Interval, paired_difference, scored
from helpers.lessons.few_shot import Fitted, timed, whole_steps

# Published banking77 test accuracy on all 77 intents: (method, examples per intent, accuracy, source).
PUBLISHED = [
    ("USE+ConveRT (frozen encoders + MLP)", 10, 0.8519, "Casanueva et al. 2020, arXiv:2003.04807"),
    ("DNNC (NLI pair classifier)", 10, 0.8671, "Zhang et al. 2021, arXiv:2106.04564 (CPFT paper)"),
    ("CPFT (contrastive pre-training + fine-tuning)", 10, 0.8720, "Zhang et al. 2021, arXiv:2106.04564"),
    ("all-MiniLM-L6-v2 frozen + logistic regression", 8, 0.8004, "MTEB Banking77Classification leaderboard"),
]


def score_test(fitted: Sequence[Fitted], test: Dataset) -> list[dict]:
    """The one final scoring: each row gains milliseconds per query and its final score (``intervals.scored``:
    'accuracy' with its 95% bootstrap interval 'low' to 'high', 'right' 1/0 per test message), JSON-ready."""
    rows = []
    for f in fitted:
        preds, seconds = timed(f.predict, test)
        rows.append(f.row | {"ms_per_query": 1000 * seconds / len(test)} | scored(preds, test["label"]))
    return rows


def results_frame(rows: Sequence[Mapping]) -> pd.DataFrame:
    """One line per run: test accuracy with its 95% bootstrap interval, validation accuracy and costs."""
    return whole_steps(pd.DataFrame([{k: v for k, v in r.items() if k != "right"} for r in rows]))


def plot_curves(frame: pd.DataFrame, ax=None, title: str = "Test accuracy against examples per intent"):
    """Learning curves with 95% intervals as error bars; prompting as horizontal bands. Returns the axes."""
    ax = ax or plt.subplots(figsize=(8, 4.5))[1]
    trained = frame[~frame.method.str.startswith("prompt")]
    for method, part in trained.groupby("method", sort=False):
        part = part.sort_values("per_intent")
        err = [part.accuracy - part.low, part.high - part.accuracy]
        ax.errorbar(part.per_intent, part.accuracy, yerr=err, marker="o", capsize=4, label=method)
    for (_, r), style in zip(frame[frame.method.str.startswith("prompt")].iterrows(), ("--", ":")):
        line = ax.axhline(r.accuracy, ls=style, color="grey", label=f"SmolLM2 {r.method} (no training)")
        ax.axhspan(r.low, r.high, color=line.get_color(), alpha=0.1)
    ax.set(xlabel="labelled examples per intent", ylabel="test accuracy", title=title)
    ax.set_xticks(sorted(trained.per_intent.unique()))
    ax.yaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
    ax.legend(loc="lower right", fontsize=8)
    return ax


def right_method(rows: Sequence[Mapping], size: int) -> Mapping:
    """The trained method with the best *validation* accuracy at ``size`` per intent (test never decides)."""
    trained = [r for r in rows if r["per_intent"] == size and not r["method"].startswith("prompt")]
    if not trained:
        raise ValueError(
            f"No trained method at {size} per intent; sizes run: {sorted({r['per_intent'] for r in rows})}"
        )
    return max(trained, key=lambda r: r["val_accuracy"])


def versus_prompting(rows: Sequence[Mapping], size: int) -> tuple[Mapping, dict[str, Interval]]:
    """(right method, its paired test-accuracy difference against each prompt): every prompt is faced, none chosen."""
    chosen = right_method(rows, size)
    prompts = [r for r in rows if r["method"].startswith("prompt")]
    return chosen, {p["method"]: paired_difference(chosen["right"], p["right"]) for p in prompts}
