"""Is the model's confidence worth trusting? Reliability bins, expected calibration error, and a
confidence threshold that sends uncertain queries to a human (the coverage/accuracy trade-off)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise probabilities from logits (N, C), divided by ``temperature`` first; numerically stable."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}.")
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)  # exp of large logits overflows; the shift cancels out
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def confidence_and_correct(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(top-class probability, whether the top class is the true label) for each row."""
    probs = np.asarray(probs)
    return probs.max(axis=1), probs.argmax(axis=1) == np.asarray(labels)


def _check(confidence: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    confidence, correct = np.asarray(confidence, dtype=float), np.asarray(correct, dtype=bool)
    if confidence.shape != correct.shape or confidence.ndim != 1 or len(confidence) == 0:
        raise ValueError(
            f"confidence and correct must be 1-D and the same non-zero length, "
            f"got shapes {confidence.shape} and {correct.shape}."
        )
    if confidence.min() < 0 or confidence.max() > 1:
        raise ValueError("confidence values must be probabilities in [0, 1]; pass softmax outputs, not logits.")
    return confidence, correct


def reliability_bins(confidence, correct, n_bins: int = 10) -> pd.DataFrame:
    """One row per equal-width confidence bin: bin edges, count, mean confidence and accuracy (NaN if empty)."""
    confidence, correct = _check(confidence, correct)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # Bin i holds (edge_i, edge_i+1]; a confidence of exactly 0 goes to the first bin.
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    rows = []
    for i in range(n_bins):
        mask = which == i
        n = int(mask.sum())
        rows.append(
            {
                "bin_low": edges[i],
                "bin_high": edges[i + 1],
                "count": n,
                "mean_confidence": float(confidence[mask].mean()) if n else np.nan,
                "accuracy": float(correct[mask].mean()) if n else np.nan,
            }
        )
    return pd.DataFrame(rows)


def expected_calibration_error(confidence, correct, n_bins: int = 10) -> float:
    """ECE: the count-weighted mean gap |accuracy - confidence| over reliability bins (0 = perfectly calibrated)."""
    bins = reliability_bins(confidence, correct, n_bins).dropna()
    weights = bins["count"] / bins["count"].sum()
    return float((weights * (bins["accuracy"] - bins["mean_confidence"]).abs()).sum())


def threshold_curve(confidence, correct, thresholds=None) -> pd.DataFrame:
    """Per threshold t: coverage (share answered, confidence >= t), accuracy on the answered, share escalated."""
    confidence, correct = _check(confidence, correct)
    thresholds = np.linspace(0.0, 1.0, 101) if thresholds is None else np.sort(np.asarray(thresholds, dtype=float))
    rows = []
    for t in thresholds:
        answered = confidence >= t
        n = int(answered.sum())
        rows.append(
            {
                "threshold": float(t),
                "coverage": n / len(confidence),
                "accuracy": float(correct[answered].mean()) if n else np.nan,
                "escalated": 1 - n / len(confidence),
            }
        )
    return pd.DataFrame(rows)


def coverage_is_monotone(curve: pd.DataFrame) -> bool:
    """True when coverage never rises as the threshold rises (a stricter bar answers fewer queries)."""
    ordered = curve.sort_values("threshold")
    return bool(np.all(np.diff(ordered["coverage"].to_numpy()) <= 1e-12))


def pick_threshold(curve: pd.DataFrame, target_accuracy: float) -> float:
    """The lowest threshold whose answered accuracy reaches ``target_accuracy`` (max coverage); else the highest."""
    ok = curve[(curve["accuracy"] >= target_accuracy) & (curve["coverage"] > 0)]
    return float(ok["threshold"].min()) if len(ok) else float(curve["threshold"].max())


def at_threshold(confidence, correct, threshold: float) -> dict[str, float]:
    """Coverage, accuracy on answered queries, and escalation rate at one threshold."""
    row = threshold_curve(confidence, correct, [threshold]).iloc[0]
    return {
        "threshold": threshold,
        "coverage": row["coverage"],
        "accuracy": row["accuracy"],
        "escalated": row["escalated"],
    }


def plot_reliability(bins: pd.DataFrame, ax=None, title: str = "Reliability diagram"):
    """Accuracy against mean confidence per bin, with the diagonal a calibrated model would follow."""
    ax = ax if ax is not None else plt.subplots(figsize=(5, 5))[1]
    full = bins.dropna()
    centers = (bins["bin_low"] + bins["bin_high"]) / 2
    ax.bar(
        centers,
        bins["accuracy"].fillna(0),
        width=bins["bin_high"] - bins["bin_low"],
        alpha=0.35,
        edgecolor="tab:blue",
        label="accuracy in bin",
    )
    ax.plot(full["mean_confidence"], full["accuracy"], "o-", color="tab:blue", label="model")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="confidence (top-class probability)", ylabel="accuracy", title=title)
    ax.legend(loc="upper left")
    return ax


def plot_threshold_curve(
    curve: pd.DataFrame,
    chosen: float | None = None,
    ax=None,
    title: str = "Answer or escalate: the coverage/accuracy trade-off",
):
    """Accuracy on answered queries against coverage, one point per threshold; ``chosen`` is marked."""
    ax = ax if ax is not None else plt.subplots(figsize=(6, 4))[1]
    valid = curve.dropna(subset=["accuracy"])
    ax.plot(valid["coverage"], valid["accuracy"], "-", color="tab:blue")
    if chosen is not None:
        row = valid.iloc[(valid["threshold"] - chosen).abs().argmin()]
        ax.plot(
            row["coverage"],
            row["accuracy"],
            "o",
            color="tab:red",
            markersize=9,
            label=f"threshold {chosen:.2f}: {row['coverage']:.0%} answered, {row['accuracy']:.0%} right",
        )
        ax.legend(loc="lower left")
    ax.set(xlabel="coverage (share answered automatically)", ylabel="accuracy on answered queries", title=title)
    return ax
