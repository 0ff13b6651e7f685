"""Notebook 07's scaffolding: the launch intents leave out the drift intents; the three splits never overlap."""

from __future__ import annotations

from helpers import runtime
from helpers.lessons import evaluation_and_shipping as lesson


def test_held_out_splits_are_disjoint_and_skip_drift_intents():
    P = runtime.profile("smoke")
    intents = lesson.launch_intents(P)
    assert not set(intents) & set(lesson.DRIFT_INTENTS)
    train, val, test = lesson.held_out_splits(P, intents)
    assert not set(train["text"]) & set(val["text"])
    assert len(set(train["label"])) == len(intents) == len(set(test["label"]))
    assert len(train) == P.train_per_class * len(intents)
    assert len(val) == max(4, P.train_per_class // 2) * len(intents)


def test_launch_intents_are_all_but_the_drift_intents():
    launched = lesson.launch_intents(runtime.profile("full"))  # every banking77 intent
    assert len(launched) == 77 - len(lesson.DRIFT_INTENTS) and not set(launched) & set(lesson.DRIFT_INTENTS)
