"""plots: bars with precomputed intervals end their error bars at the given low and high, with and without hue."""

import matplotlib.pyplot as plt
import pandas as pd
import pytest
from matplotlib.container import ErrorbarContainer

from helpers import plots


def error_bars(ax) -> dict[tuple[float, float], tuple[float, float]]:
    """(bar centre, bar height) -> (lower end, upper end) of every error bar segment drawn on ``ax``."""
    ends = {}
    heights = {
        round(b.get_x() + b.get_width() / 2, 6): b.get_height()
        for c in ax.containers
        if not isinstance(c, ErrorbarContainer)
        for b in c
    }
    for container in ax.containers:
        if isinstance(container, ErrorbarContainer):
            for segment in container.lines[2][0].get_segments():
                (x, y0), (_, y1) = segment
                ends[round(x, 6), heights[round(x, 6)]] = (y0, y1)
    return ends


def test_error_bars_end_at_the_given_interval_without_hue():
    frame = pd.DataFrame(
        {"method": ["a", "b", "c"], "acc": [0.5, 0.8, 0.6], "lo": [0.4, 0.7, 0.3], "hi": [0.7, 0.85, 0.65]}
    )
    ax = plots.plot_interval_bars(frame, "method", "acc", "lo", "hi")
    assert error_bars(ax) == {
        (0.0, 0.5): pytest.approx((0.4, 0.7)),
        (1.0, 0.8): pytest.approx((0.7, 0.85)),
        (2.0, 0.6): pytest.approx((0.3, 0.65)),
    }
    assert [t.get_text() for t in ax.texts] == ["0.5", "0.8", "0.6"]  # the values, printed on the bars
    plt.close("all")


def test_error_bars_follow_their_rows_with_hue_and_a_missing_bar():
    frame = pd.DataFrame(
        {
            "size": [5, 5, 50, 50, 500],  # numbers as categories, in order of appearance
            "start": ["pre-trained", "random", "pre-trained", "random", "pre-trained"],  # no random bar at 500
            "acc": [0.6, 0.2, 0.9, 0.5, 0.95],
            "low": [0.5, 0.1, 0.85, 0.4, 0.9],
            "high": [0.7, 0.3, 0.95, 0.55, 0.99],
        }
    )
    ax = plots.plot_interval_bars(frame, "size", "acc", "low", "high", hue="start", percent=True)
    ends = error_bars(ax)
    assert sorted(ends.values()) == sorted(zip(frame["low"], frame["high"]))
    by_height = {height: end for (_, height), end in ends.items()}  # each bar carries its own row's interval
    assert all(by_height[a] == pytest.approx((lo, hi)) for a, lo, hi in zip(frame["acc"], frame["low"], frame["high"]))
    assert "95%" in [t.get_text() for t in ax.texts]
    plt.close("all")


def test_a_missing_column_or_a_duplicate_bar_is_named():
    frame = pd.DataFrame({"method": ["a", "a"], "acc": [0.5, 0.6], "low": [0.4, 0.5], "high": [0.6, 0.7]})
    with pytest.raises(ValueError, match=r"\['lo'\] not in the table; its columns are: method, acc, low, high"):
        plots.plot_interval_bars(frame, "method", "acc", "lo", "high")
    with pytest.raises(ValueError, match="One row per bar"):
        plots.plot_interval_bars(frame, "method", "acc", "low", "high")
    plt.close("all")
