"""Notebook 01's seed study: both starts trained again at the largest size with other seeds, reusing the learning
rates chosen on validation for seed 0."""

from __future__ import annotations

from collections.abc import Sequence

from datasets import Dataset

from helpers.classifier import FineTuned
from helpers.lessons.from_scratch import STARTS, Choice, SweepSettings, budget_steps, per_class_slice, train_classifier
from helpers.runtime import Profile
from helpers.seeds import for_profile


def extra_seeds(p: Profile) -> list[int]:
    """Seeds beyond the sweep's 0 for the main claim at the largest size, by the usual policy (``for_profile``): none
    in smoke (each seed trains both starts again, and CI's budget has no room for that), one in workshop (a second
    pair of runs fits its ten minutes), two in full (three in all)."""
    return for_profile(p)[1:]


def rerun_seeds(
    p: Profile,
    s: SweepSettings,
    train_pool: Dataset,
    validation: Dataset,
    chosen: dict[str, Choice],
    seeds: Sequence[int],
    size: int | str,
) -> tuple[list[dict], dict[int, dict[tuple[str, int | str], FineTuned]]]:
    """Both starts again at ``size`` (examples per intent, or "all") with each of ``seeds``: other starting weights
    and batch order; the same data, steps and learning rates (``chosen`` on validation for seed 0, reused).

    Returns (one validation record per seed and start, with 'seed'; the trained runs by seed, then (start, size),
    for the final test score).
    """
    train_set = per_class_slice(train_pool, None if size == "all" else size)
    steps = budget_steps(len(train_set), p, s.min_steps)
    records, trained = [], {}
    for seed in seeds:
        trained[seed] = {}
        for start, pretrained in STARTS.items():
            lr = chosen[start].learning_rate
            print(f"{start}, seed {seed}: {size} per intent, {steps} steps, learning rate {lr:g}")
            record, run = train_classifier(train_set, validation, p, pretrained, lr, steps, seed=seed, evals=s.evals)
            records.append({"seed": seed, **record, "size": size})
            trained[seed][start, size] = run
    return records, trained
