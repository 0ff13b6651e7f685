"""Forgetting helpers: probe data, answer matching, scoring and the comparison table (replay mixing: test_chat)."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from helpers import models
from helpers.intervals import in_words
from helpers.lessons import forgetting as F


def test_probe_files_are_well_formed_and_disjoint():
    probe, replay, text = F.load_probe(), F.load_replay(), F.load_general_text()
    assert len(probe) >= 16 and all(q["question"] and q["answers"] for q in probe)
    assert len(replay) >= 16 and len(text) >= 8
    assert not {q["question"] for q in probe} & {p["question"] for p in replay}  # replay never teaches the probe
    assert len(F.load_probe(5)) == 5


def test_matches_whole_words_case_insensitive():
    assert F.mentions_any("The capital of France is Paris.", ["paris"])
    assert F.mentions_any("It has 8 legs", ["eight", "8"])
    assert not F.mentions_any("Parisian food", ["Paris"])
    assert not F.mentions_any("card arrival", ["Paris"])


def test_intent_phrase_and_normalize():
    assert F.intent_phrase("Refund_not_showing_up") == "refund not showing up"
    assert F.words_only("  Card arrival. ") == F.words_only("card_arrival") == "card arrival"


def test_domain_conversations_end_with_the_intent():
    convs = F.domain_conversations([{"text": "Where is my card?", "intent": "card arrival"}])
    assert convs[0][-1] == {"role": "assistant", "content": "card arrival"}


def test_compare_computes_gain_and_loss():
    before = {"domain_accuracy": 0.0, "probe_accuracy": 1.0, "general_perplexity": 10.0}
    after = {"full": {"domain_accuracy": 0.6, "probe_accuracy": 0.5, "general_perplexity": 15.0}}
    row = F.compare(before, after).loc["full"]
    assert row["domain_gain"] == pytest.approx(0.6)
    assert row["probe_accuracy_lost"] == pytest.approx(0.5)
    assert row["perplexity_rise"] == pytest.approx(0.5)


@pytest.fixture(scope="module")
def tiny_lm():
    tok = AutoTokenizer.from_pretrained(models._cached_smollm())
    tok.pad_token = tok.pad_token or tok.eos_token
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
    )
    return LlamaForCausalLM(cfg), tok


def test_measure_scores_each_part_on_a_tiny_model(tiny_lm, monkeypatch):
    model, tok = tiny_lm
    probe = F.load_probe(2)
    # Scripted replies in place of the random model's: one right domain answer (up to case and punctuation),
    # one right probe answer and one wrong one. Perplexity comes from the real tiny model.
    replies = {
        "Where is my card?": "Card arrival.",
        probe[0]["question"]: f"The {probe[0]['answers'][0]}, of course.",
        probe[1]["question"]: "I could not say.",
    }
    monkeypatch.setattr(F.generation, "generate", lambda m, t, convs, **kw: [replies[c[-1]["content"]] for c in convs])
    suite = F.Suite([{"text": "Where is my card?", "intent": "card arrival"}], probe, F.load_general_text()[:2], 32)
    scores = F.measure(model, tok, suite)
    assert scores["domain_accuracy"] == 1.0 and scores["probe_accuracy"] == 0.5 and scores["probe_right"] == [1, 0]
    tuned = {"a": (model, tok)}
    final = F.final_scores(tuned, [{"text": "Where is my card?", "intent": "card arrival"}])
    assert final["a"].estimate == 1.0
    # An untrained model is close to uniform over the vocabulary: perplexity near its size (49k).
    assert scores["general_perplexity"] == pytest.approx(len(tok), rel=0.5)


def test_compare_ignores_per_question_lists():
    before = {"domain_accuracy": 0.0, "probe_accuracy": 1.0, "general_perplexity": 10.0, "probe_right": [1, 1]}
    after = {"lora": {"domain_accuracy": 0.2, "probe_accuracy": 0.5, "general_perplexity": 10.0, "probe_right": [1, 0]}}
    assert "probe_right" not in F.compare(before, after).columns


def test_forgetting_gap_names_a_winner_only_when_the_interval_allows():
    kept, lost = [1] * 20, [0] * 20
    assert in_words(
        F.forgetting_gap({"probe_right": lost}, {"probe_right": kept}), "full", "LoRA", "forgot more"
    ).startswith("full forgot more")
    assert (
        in_words(F.forgetting_gap({"probe_right": kept}, {"probe_right": lost}), "full", "LoRA", "forgot more")
        == "LoRA forgot more than full"
    )
    one_each = [1] * 10 + [0] * 10, [1] * 9 + [0] * 11  # one question apart out of 20: noise
    gap = F.forgetting_gap({"probe_right": one_each[1]}, {"probe_right": one_each[0]})
    assert (
        gap.estimate == pytest.approx(0.05)
        and in_words(gap, "full", "LoRA", "forgot more") == "no measurable difference at this size"
    )


def test_domain_splits_are_disjoint_and_come_from_training():
    intents = ["card_arrival", "pin_blocked"]
    train, val = F.domain_splits(6, 2, intents)
    assert len(train) == 12 and len(val) == 4
    assert not {e["text"] for e in train} & {e["text"] for e in val}
    train_texts = set(F.data.load_banking77("train", intents=intents)["text"])
    assert {e["text"] for e in train + val} <= train_texts
