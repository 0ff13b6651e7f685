"""How sure a measured score is: bootstrap confidence intervals (scipy) for accuracy and other per-example means.

A test set of a few hundred examples measures accuracy to a few points either way, so "A beats B" needs the
interval of the difference, on the same examples, to exclude zero: ``paired_difference``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.stats import bootstrap

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Interval:
    """A point estimate with its ``level`` confidence interval [low, high]."""

    estimate: float
    low: float
    high: float
    level: float = 0.95

    @classmethod
    def of(cls, row: Mapping[str, Any] | pd.Series, level: float = 0.95) -> Interval:
        """The interval of a ``scored`` row (a dict or pandas Series with 'accuracy', 'low' and 'high')."""
        missing = [k for k in ("accuracy", "low", "high") if k not in row]
        if missing:
            raise ValueError(f"A scored row needs 'accuracy', 'low' and 'high'; this one lacks {missing}.")
        return cls(float(row["accuracy"]), float(row["low"]), float(row["high"]), level)

    def __str__(self) -> str:
        return f"{self.estimate:.1%} ({self.level:.0%} CI {self.low:.1%} to {self.high:.1%})"

    @property
    def excludes_zero(self) -> bool:
        """Whether the whole interval lies on one side of zero (for a difference: a real gap, not noise)."""
        return self.low > 0 or self.high < 0


def mean_interval(values: Sequence[float], level: float = 0.95, resamples: int = 2000, seed: int = 0) -> Interval:
    """The mean of per-example ``values`` (1/0 for right/wrong gives accuracy) with a BCa bootstrap interval."""
    data = np.asarray(values, dtype=float)
    if data.size == 0:
        raise ValueError("No values to put an interval on: the evaluation set is empty.")
    if data.min() == data.max():  # every resample is the same: the interval is the point
        return Interval(float(data[0]), float(data[0]), float(data[0]), level)
    result = bootstrap(
        (data,), np.mean, confidence_level=level, n_resamples=resamples, method="BCa", rng=seed
    ).confidence_interval
    return Interval(float(data.mean()), float(result.low), float(result.high), level)


def accuracy_interval(predictions: Sequence, references: Sequence, level: float = 0.95, seed: int = 0) -> Interval:
    """Accuracy of ``predictions`` against ``references`` with its bootstrap interval."""
    right = np.asarray(predictions) == np.asarray(references)
    return mean_interval(right.astype(float), level=level, seed=seed)


def scored(predictions: Sequence, references: Sequence, level: float = 0.95) -> dict:
    """A final score as a JSON-ready row: 'accuracy' with its bootstrap interval ('low', 'high') and 'right' (1/0
    per example, in order, for ``paired_difference`` between two systems scored on the same examples)."""
    predictions, references = np.asarray(predictions), np.asarray(references)
    if predictions.shape != references.shape:
        raise ValueError(
            f"{predictions.shape[0]} predictions for {references.shape[0]} references: score each example once."
        )
    right = (predictions == references).astype(int)
    interval = mean_interval(right, level=level)
    return {"accuracy": interval.estimate, "low": interval.low, "high": interval.high, "right": right.tolist()}


def in_words(gap: Interval, a: str, b: str, more: str) -> str:
    """A difference ``a`` minus ``b`` in words ("{a} {more} than {b}"), naming a winner only where its interval
    excludes zero; otherwise "no measurable difference at this size"."""
    if gap.low > 0:
        return f"{a} {more} than {b}"
    if gap.high < 0:
        return f"{b} {more} than {a}"
    return "no measurable difference at this size"


def paired_difference(a_right: Sequence, b_right: Sequence, level: float = 0.95, seed: int = 0) -> Interval:
    """Mean of a minus b over the same examples (e.g. right/wrong per test message), resampled in pairs."""
    a, b = np.asarray(a_right, dtype=float), np.asarray(b_right, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"Paired scores need the same examples: {a.shape[0]} against {b.shape[0]}.")
    return mean_interval(a - b, level=level, seed=seed)
