"""Is a result luck? Run the same experiment again with other seeds and look at the spread.

A bootstrap interval says how sure a score is given *this* trained model; a new seed (another initialisation and
batch order) gives another model. A main claim is checked on the mean over seeds, with the seed-to-seed spread
shown beside it. Notebooks take their seeds from the profile (``for_profile``): 3 in full, 2 in workshop, 1 in
smoke, unless a notebook's budget says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:  # only for the annotation: importing runtime would import torch
    from helpers.runtime import Profile


def for_profile(p: Profile, smoke: int = 1, workshop: int = 2, full: int = 3) -> list[int]:
    """Seeds 0..n-1, with n the count given for ``p``'s profile (smoke, workshop or full)."""
    counts = {"smoke": smoke, "workshop": workshop, "full": full}
    short = {name: n for name, n in counts.items() if n < 1}
    if short:
        raise ValueError(f"Every profile needs at least one seed (seed 0 is the main run); got {short}.")
    return list(range(p.pick(**counts)))


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


def by_seed(frame: pd.DataFrame, value: str, by: str, groups: Sequence[str] | None = None) -> pd.DataFrame:
    """``value`` paired by seed: one row per seed, one column per group of ``by`` (only ``groups``, in that order,
    when given)."""
    wide = frame.pivot_table(index="seed", columns=by, values=value)
    missing = set(groups or ()) - set(wide.columns)
    if missing:
        raise ValueError(f"No rows for {sorted(missing)} in column {by!r}; it has {list(wide.columns)}.")
    return wide[list(groups)] if groups is not None else wide


def mean_gap(frame: pd.DataFrame, value: str, by: str, a: str, b: str) -> tuple[float, float, float]:
    """(mean, min, max) over seeds of ``value`` for group ``a`` minus group ``b``, paired by seed."""
    wide = by_seed(frame, value, by, [a, b])
    gaps = (wide[a] - wide[b]).dropna()
    return float(gaps.mean()), float(gaps.min()), float(gaps.max())
