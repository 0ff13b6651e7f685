"""Is a result luck? Run the same experiment again with other seeds and look at the spread.

A bootstrap interval says how sure a score is given *this* trained model; a new seed (another initialisation and
batch order) gives another model. A main claim is checked on the mean over seeds, with the seed-to-seed spread
shown beside it. Notebooks take their seeds from the profile (``P.pick``): 3 in full, at least 2 in workshop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import pandas as pd


def over_seeds(seeds: Iterable[int], run: Callable[[int], dict | list[dict]]) -> pd.DataFrame:
    """Rows of ``run(seed)`` (one dict, or a list of dicts) for every seed, with a 'seed' column first."""
    rows = []
    for seed in seeds:
        result = run(seed)
        for row in [result] if isinstance(result, dict) else result:
            rows.append({"seed": seed, **row})
    if not rows:
        raise ValueError("No seeds to run: pass at least one seed.")
    return pd.DataFrame(rows)


def seed_summary(frame: pd.DataFrame, value: str, by: str | Sequence[str]) -> pd.DataFrame:
    """Per group of ``by``: the mean, min and max of ``value`` over the seeds in ``frame``, the spread (max - min)
    and the number of seeds."""
    if "seed" not in frame or value not in frame:
        raise ValueError(f"The frame needs a 'seed' column and a {value!r} column; it has {list(frame.columns)}.")
    grouped = frame.groupby(by, sort=False)[value]
    table = grouped.agg(["mean", "min", "max"])
    table["spread"] = table["max"] - table["min"]
    table["seeds"] = frame.groupby(by, sort=False)["seed"].nunique()
    return table


def mean_gap(frame: pd.DataFrame, value: str, by: str, a: str, b: str) -> tuple[float, float, float]:
    """(mean, min, max) over seeds of ``value`` for group ``a`` minus group ``b``, paired by seed."""
    wide = frame.pivot_table(index="seed", columns=by, values=value)
    missing = {a, b} - set(wide.columns)
    if missing:
        raise ValueError(f"No rows for {sorted(missing)} in column {by!r}; it has {list(wide.columns)}.")
    gaps = (wide[a] - wide[b]).dropna()
    return float(gaps.mean()), float(gaps.min()), float(gaps.max())
