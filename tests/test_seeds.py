"""seeds: one row per seed and result, a per-group summary with the spread, and a gap paired by seed."""

import pandas as pd
import pytest

from helpers import runtime, seeds


def _runs() -> pd.DataFrame:
    return seeds.over_seeds([0, 1, 2], lambda s: [{"method": "a", "acc": 0.8 + s / 10}, {"method": "b", "acc": 0.7}])


def test_over_seeds_keeps_every_row_with_its_seed():
    frame = _runs()
    assert list(frame.columns) == ["seed", "method", "acc"] and len(frame) == 6
    assert frame.loc[frame.method == "a", "seed"].tolist() == [0, 1, 2]
    assert seeds.over_seeds([3], lambda s: {"acc": s}).to_dict("records") == [{"seed": 3, "acc": 3}]
    with pytest.raises(ValueError, match="at least one seed"):
        seeds.over_seeds([], lambda s: {})


def test_seed_summary_gives_mean_spread_and_count():
    table = seeds.seed_summary(_runs(), "acc", "method")
    assert table.loc["a", "mean"] == pytest.approx(0.9) and table.loc["a", "spread"] == pytest.approx(0.2)
    assert table.loc["b", "spread"] == pytest.approx(0.0) and table.loc["a", "seeds"] == 3
    with pytest.raises(ValueError, match="'seed' column"):
        seeds.seed_summary(pd.DataFrame({"acc": [1]}), "acc", "method")


def test_mean_gap_pairs_by_seed():
    assert seeds.mean_gap(_runs(), "acc", "method", "a", "b") == pytest.approx((0.2, 0.1, 0.3))
    with pytest.raises(ValueError, match="No rows for"):
        seeds.mean_gap(_runs(), "acc", "method", "a", "c")


def test_by_seed_pairs_each_group_by_seed():
    wide = seeds.by_seed(_runs(), "acc", "method")
    assert list(wide.index) == [0, 1, 2] and list(wide.columns) == ["a", "b"]
    assert wide["a"].tolist() == pytest.approx([0.8, 0.9, 1.0]) and wide["b"].tolist() == pytest.approx([0.7] * 3)
    assert list(seeds.by_seed(_runs(), "acc", "method", ["b", "a"]).columns) == ["b", "a"]  # the order asked for
    with pytest.raises(ValueError, match=r"No rows for \['c'\] in column 'method'"):
        seeds.by_seed(_runs(), "acc", "method", ["a", "c"])


def test_for_profile_counts_seeds_per_profile():
    smoke, workshop, full = (runtime.profile(name) for name in ("smoke", "workshop", "full"))
    assert (seeds.for_profile(smoke), seeds.for_profile(workshop), seeds.for_profile(full)) == ([0], [0, 1], [0, 1, 2])
    assert seeds.for_profile(smoke, smoke=2) == [0, 1] and seeds.for_profile(workshop, workshop=1) == [0]
    assert seeds.for_profile(full, full=5) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match=r"at least one seed .*'smoke': 0"):
        seeds.for_profile(workshop, smoke=0)  # a bad count is refused whichever profile is active
