"""Notebook 07's story: the intents a bank's model ships with, honest splits for them, and the drift that follows.

Two intents arrive after the model ships (``DRIFT_INTENTS``): customers start asking about new products, and a
model that never saw them must get every such query wrong. Notebook 08 reuses the splits for its classifier.
"""

from __future__ import annotations

from collections.abc import Sequence

from datasets import Dataset

from helpers.data import banking77_intents, load_banking77, stratified_split
from helpers.runtime import Profile

DRIFT_INTENTS = ("apple_pay_or_google_pay", "get_disposable_virtual_card")


def launch_intents(p: Profile) -> list[str]:
    """The intents the shipped model knows: the profile's intents minus the ones that arrive with drift."""
    return [i for i in (p.intents or banking77_intents()) if i not in DRIFT_INTENTS]


def held_out_splits(p: Profile, intents: Sequence[str], seed: int = 0) -> tuple[Dataset, Dataset, Dataset]:
    """(train, validation, test) for ``intents`` at the profile's sizes; test comes from banking77's test split.

    Validation (for thresholds and early checks) is carved from the training split, so the
    test set is touched once, at the end.
    """
    if p.train_per_class is None:
        pool, val_share = load_banking77("train", intents=intents, seed=seed), 0.1
    else:
        val_per_class = max(4, p.train_per_class // 2)
        pool = load_banking77("train", per_class=p.train_per_class + val_per_class, intents=intents, seed=seed)
        val_share = val_per_class / (p.train_per_class + val_per_class)
    train, val = stratified_split(pool, test_size=val_share, seed=seed)
    test = load_banking77("test", per_class=p.test_per_class, intents=intents, seed=seed)
    return train, val, test
