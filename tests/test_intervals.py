"""intervals: bootstrap intervals agree with the textbook interval for a proportion and tell noise from a gap."""

import math

import numpy as np
import pandas as pd
import pytest

from helpers import intervals


def wilson(right: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval for a proportion, the textbook answer the bootstrap should agree with."""
    p = right / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@pytest.mark.parametrize("right, n", [(90, 100), (300, 400), (50, 100)])
def test_accuracy_interval_matches_the_wilson_interval(right, n):
    predictions = np.array([1] * right + [0] * (n - right))
    interval = intervals.accuracy_interval(predictions, np.ones(n))
    low, high = wilson(right, n)
    assert interval.estimate == pytest.approx(right / n)
    assert interval.low == pytest.approx(low, abs=0.015) and interval.high == pytest.approx(high, abs=0.015)
    assert interval.low < interval.estimate < interval.high


def test_a_wider_test_set_gives_a_narrower_interval():
    small = intervals.mean_interval([1] * 80 + [0] * 20)
    large = intervals.mean_interval([1] * 800 + [0] * 200)
    assert (large.high - large.low) < 0.5 * (small.high - small.low)


def test_paired_difference_tells_a_gap_from_noise():
    rng = np.random.default_rng(0)
    a = rng.random(300) < 0.9
    gap = intervals.paired_difference(a, a & (rng.random(300) < 0.8))  # b drops a fifth of a's right answers
    noise = intervals.paired_difference(a, np.roll(a, 1))  # same accuracy, other examples
    assert gap.excludes_zero and gap.low > 0
    assert not noise.excludes_zero


def test_constant_scores_and_mistakes():
    assert intervals.mean_interval([1, 1, 1]) == intervals.Interval(1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="empty"):
        intervals.mean_interval([])
    with pytest.raises(ValueError, match="same examples"):
        intervals.paired_difference([1, 0], [1])
    assert str(intervals.Interval(0.9, 0.85, 0.95)) == "90.0% (95% CI 85.0% to 95.0%)"


def test_in_words_names_a_winner_only_where_the_interval_excludes_zero():
    ahead = intervals.paired_difference([1] * 20, [0] * 20)
    assert intervals.in_words(ahead, "A", "B", "is right more often") == "A is right more often than B"
    behind = intervals.paired_difference([0] * 20, [1] * 20)
    assert intervals.in_words(behind, "A", "B", "is right more often") == "B is right more often than A"
    one_apart = intervals.paired_difference([1] * 10 + [0] * 10, [1] * 9 + [0] * 11)
    assert intervals.in_words(one_apart, "A", "B", "is right more often") == "no measurable difference at this size"


def test_scored_row_has_accuracy_interval_and_right():
    row = intervals.scored([1, 2, 3, 3], [1, 2, 0, 3])
    assert row["accuracy"] == 0.75 and row["right"] == [1, 1, 0, 1]
    assert row["low"] <= 0.75 <= row["high"] and row["low"] < row["high"]
    with pytest.raises(ValueError, match="score each example once"):
        intervals.scored([1, 2], [1, 2, 3])


def test_interval_of_a_scored_row_dict_or_series():
    row = intervals.scored([1, 2, 3, 3], [1, 2, 0, 3])
    assert intervals.Interval.of(row) == intervals.Interval(0.75, row["low"], row["high"])
    series = pd.DataFrame([row]).iloc[0]  # a row of a table of scores
    assert intervals.Interval.of(series) == intervals.Interval.of(row)
    assert str(intervals.Interval.of({"accuracy": 0.9, "low": 0.85, "high": 0.95})) == "90.0% (95% CI 85.0% to 95.0%)"
    with pytest.raises(ValueError, match=r"lacks \['low', 'high'\]"):
        intervals.Interval.of({"accuracy": 0.9})
