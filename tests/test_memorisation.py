"""helpers.memorisation: canaries, cached scoring equals a plain forward, and the exposure estimators."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from transformers import AutoTokenizer

from helpers import memorisation as M
from helpers import models
from tests.tiny import tiny_causal_lm


@pytest.fixture(scope="module")
def tok():
    tokenizer = AutoTokenizer.from_pretrained(models._cached_smollm())
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    return tokenizer


def test_canaries_are_seeded_distinct_and_planted_as_often_as_asked():
    canaries = M.make_canaries((1, 3), ("Ann Lee", "Bo Chan"), digits=4, seed=1)
    assert canaries == M.make_canaries((1, 3), ("Ann Lee", "Bo Chan"), digits=4, seed=1)
    assert [len(c.secret) for c in canaries] == [4, 4] and canaries[0].holder != canaries[1].holder
    assert canaries[0].number().replace(" ", "") == M.PREFIX_DIGITS + canaries[0].secret
    planted = M.plant([[{"role": "user", "content": "hi"}]], canaries)
    assert len(planted) == 5 and sum(c == canaries[1].conversation() for c in planted) == 3
    with pytest.raises(ValueError, match="holder names"):
        M.make_canaries((1, 2, 3), ("one",))


def test_candidates_are_distinct_and_never_the_canary():
    canary = M.Canary("Ann Lee", "042", 1)
    cands = M.candidates(canary, 998)
    assert len(set(cands)) == 998 and "042" not in cands and all(len(c) == 3 for c in cands)
    with pytest.raises(ValueError, match="other than the canary"):
        M.candidates(canary, 1000)


def test_cached_log_perplexities_equal_a_plain_forward(tok):
    model = tiny_causal_lm(len(tok)).eval()
    canary = M.Canary("Ann Lee", "1234", 1)
    chats = [canary.conversation(s) for s in ("1234", "9876", "0000")]
    fast = M.log_perplexities(model, tok, chats, batch_size=2)
    for chat, value in zip(chats, fast):
        ex = M.chat_example(chat, tok, max_length=10**6)
        with torch.no_grad():
            logits = model(torch.tensor([ex["input_ids"]])).logits
        slow = M._bits(logits[:, :-1], torch.tensor([ex["labels"][1:]]))
        assert value == pytest.approx(float(slow), rel=1e-5)


def test_exposure_from_rank_bounds():
    assert M.exposure_from_rank(1, 1024) == 10 and M.exposure_from_rank(1024, 1024) == 0
    assert M.exposure_exact(5.0, [6.0, 7.0, 8.0], 4) == 2  # best of four: log2 4 - log2 1
    assert M.exposure_exact(9.0, [6.0, 7.0, 8.0], 4) == 0


def test_extrapolated_exposure_matches_exact_ranks_on_a_small_space():
    rng = np.random.default_rng(0)
    space = stats.skewnorm.rvs(-2.0, loc=60, scale=8, size=10_000, random_state=rng)  # every secret's log-perplexity
    ordered = np.sort(space)
    sample = rng.choice(space, size=300, replace=False)
    for rank in (1, 5, 50, 500, 5000):
        canary = ordered[rank - 1] - 1e-9
        exact = M.exposure_exact(canary, np.delete(ordered, rank - 1), space.size)
        assert exact == pytest.approx(math.log2(space.size / rank), abs=1e-6)
        assert M.exposure_extrapolated(canary, sample, space.size) == pytest.approx(exact, abs=1.0), rank


def test_estimators_agree_on_a_tiny_model_scoring_a_whole_space(tok):
    model = tiny_causal_lm(len(tok), seed=3).eval()
    canary = M.Canary("Ann Lee", "07", 1)
    secrets = [f"{x:02d}" for x in range(100)]
    scores = M.log_perplexities(model, tok, [canary.conversation(s) for s in secrets])
    own, others = scores[7], np.delete(scores, 7)
    exact = M.exposure_exact(own, others, 100)
    assert exact == pytest.approx(math.log2(100) - math.log2(1 + np.sum(others < own)))
    assert M.exposure_extrapolated(own, others, 100) == pytest.approx(exact, abs=1.0)


def test_measure_reports_every_canary(tok):
    model = tiny_causal_lm(len(tok)).eval()
    canary = M.Canary("Ann Lee", "12", 2)
    (row,) = M.measure(model, tok, [canary], n_candidates=20)
    assert row["repetitions"] == 2 and 0 <= row["exposure"] <= row["max_exposure"] == pytest.approx(math.log2(100))
    assert isinstance(row["extracted"], bool)
