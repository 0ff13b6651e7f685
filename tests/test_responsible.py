"""helpers.lessons.responsible: deterministic slices, slice tables and gaps, augmentation, and the plots."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pandas as pd
import pytest

from helpers import runtime
from helpers.classifier import FineTuned
from helpers.lessons import responsible as R
from helpers.lessons import slice_transforms as S
from tests.tiny import tiny_classifier, tokenizer, two_class_dataset

matplotlib.use("Agg")
TEXT = "Why hasn't my replacement card arrived yet? I ordered it last week."


def test_settings_keep_smoke_small_and_give_every_method_the_same_steps():
    smoke, workshop = R.settings(runtime.profile("smoke")), R.settings(runtime.profile("workshop"))
    assert smoke.lm_methods == ("lora",) and "full" in workshop.lm_methods
    assert smoke.lm_steps <= workshop.lm_steps and smoke.n_candidates <= workshop.n_candidates
    assert set(workshop.lm_methods) <= set(R.LM_RATES)


def test_transforms_are_deterministic_and_change_what_they_say():
    for name, transform in R.TRANSFORMS.items():
        assert transform(TEXT) == transform(TEXT), name
    assert S.typos(TEXT) != TEXT and len(S.typos(TEXT).split()) == len(TEXT.split())
    assert S.plain_lower(TEXT) == "why hasn t my replacement card arrived yet i ordered it last week"
    assert S.non_native("Did I get the refund? I'm not sure.") == "I get refund? I am not sure."
    named = R.TRANSFORMS["name: Slavic"](TEXT)
    assert named.endswith(TEXT) and any(n in named for n in S.NAMES_BY_ORIGIN["Slavic"])


def test_augmented_adds_one_transformed_copy_per_name_and_refuses_unknown_names():
    train = two_class_dataset(repeat=1)
    bigger = R.augmented(train, ["typos", "lower case, no punctuation"])
    assert len(bigger) == 3 * len(train) and list(bigger["label"]) == list(train["label"]) * 3
    assert bigger["text"][len(train)] == S.typos(train["text"][0])
    with pytest.raises(ValueError, match="choose from"):
        R.augmented(train, ["emoji"])


def right_by_slice(original, **slices) -> dict[str, np.ndarray]:
    return {"original": np.asarray(original, float)} | {k: np.asarray(v, float) for k, v in slices.items()}


def test_slice_table_pairs_gaps_and_worst_slice_picks_the_largest_fixable_gap():
    right = right_by_slice([1, 1, 1, 1, 0, 1], typos=[0, 1, 0, 1, 0, 1], **{"non-native phrasing": [1, 1, 1, 1, 0, 0]})
    right["short (<= 6 words)"] = np.array([np.nan, np.nan, 0, 0, np.nan, np.nan])  # a subset: worst, not fixable
    table = R.slice_table(right)
    assert table.n["short (<= 6 words)"] == 2 and table.gap["short (<= 6 words)"] is None
    assert table.gap["typos"].estimate == pytest.approx(2 / 6) and table.accuracy["original"] == pytest.approx(5 / 6)
    assert R.worst_slice(table) == "typos"


def test_gap_change_is_positive_when_the_gap_narrows():
    before = right_by_slice([1] * 8, typos=[0, 0, 0, 0, 1, 1, 1, 1])
    after = right_by_slice([1] * 8, typos=[1, 1, 1, 0, 1, 1, 1, 1])
    assert R.gap_change(before, after, "typos").estimate == pytest.approx(3 / 8)
    assert R.gap_change(after, before, "typos").estimate == pytest.approx(-3 / 8)


def test_slice_right_scores_every_slice_on_the_same_messages():
    data = two_class_dataset(repeat=1)
    run = FineTuned(tiny_classifier(), tokenizer(), None, 0, 0, data, labels=["card", "fee"], max_length=32)
    right = R.slice_right(run, data)
    assert set(right) == {"original", *R.TRANSFORMS, *R.LENGTH_SLICES}
    assert all(len(v) == len(data) for v in right.values())
    assert np.isnan(right["long (>= 20 words)"]).all()  # no message that long: an empty subset


def test_chance_threshold_and_the_plots_return_axes():
    assert R.chance_threshold(1, 0.5) == 1 and R.chance_threshold(3) == pytest.approx(math.log2(60))
    frame = pd.DataFrame(
        dict(method="lora", data=["as collected"] * 2 + ["scrubbed"] * 2, repetitions=[1, 16, 1, 16])
        | dict(exposure=[1.0, 15.0, 0.5, 1.2], max_exposure=16.6)
    )
    assert R.plot_exposure(frame, 5.9).get_ylabel() == "exposure (bits)"
    table = R.slice_table(right_by_slice([1, 0, 1], typos=[0, 0, 1]))
    assert len(R.plot_slices(table, table).get_yticklabels()) == 2


def test_filler_chats_carry_the_short_system_prompt():
    chats = R.filler(3)
    assert len(chats) == 3 and all(
        c[0]["content"] == R.memorisation.SYSTEM and c[-1]["role"] == "assistant" for c in chats
    )
