"""Forgetting helpers: probe data, answer matching, scoring and the comparison table (replay mixing: test_chat)."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

from helpers import models, runtime
from helpers.intervals import in_words
from helpers.lessons import forgetting as F
from helpers.lessons import forgetting_seeds as S


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


def test_changes_computes_gain_and_loss():
    before = {"domain_accuracy": 0.0, "probe_accuracy": 1.0, "general_perplexity": 10.0}
    runs = pd.DataFrame(
        [{"seed": 0, "method": "full", "domain_accuracy": 0.6, "probe_accuracy": 0.5, "general_perplexity": 15.0}]
    )
    row = S.changes(runs, before).iloc[0]
    assert row["domain_gain"] == pytest.approx(0.6)
    assert row["probe_accuracy_lost"] == pytest.approx(0.5)
    assert row["perplexity_rise"] == pytest.approx(0.5)


def _runs(rows):
    return pd.DataFrame(
        [
            {"seed": s, "method": m, "domain_accuracy": d, "probe_accuracy": sum(r) / len(r), "probe_right": r}
            for s, m, d, r in rows
        ]
    )


def test_mean_over_seeds_averages_each_method_and_drops_per_question_lists():
    runs = _runs(
        [(0, "LoRA", 0.2, [1, 0]), (0, "full", 0.6, [0, 0]), (1, "LoRA", 0.4, [1, 1]), (1, "full", 0.8, [1, 0])]
    )
    table = S.mean_over_seeds(runs)
    assert list(table.index) == ["LoRA", "full"] and "probe_right" not in table and "seed" not in table
    assert table.loc["LoRA", "domain_accuracy"] == pytest.approx(0.3)
    assert table.loc["full", "probe_accuracy"] == pytest.approx(0.25)


def test_probe_replies_lines_up_each_method_with_the_question():
    suite = F.Suite([], [{"question": "Q1?"}, {"question": "Q2?"}], [])
    runs = pd.DataFrame(
        [
            {"seed": 3, "method": "LoRA", "probe_replies": ["a1", "a2"]},
            {"seed": 3, "method": "full", "probe_replies": ["f1", "f2"]},
            {"seed": 4, "method": "LoRA", "probe_replies": ["x", "y"]},
        ]
    )
    table = F.probe_replies(suite, {"probe_replies": ["b1", "b2"]}, runs, n=1)
    assert table.to_dict("index") == {"Q1?": {"before tuning": "b1", "LoRA": "a1", "full": "f1"}}


def test_forgetting_gap_averages_over_seeds_paired_by_question():
    # Seed 0: LoRA keeps every question, full none; seed 1: both keep all. Mean gap 0.5 on every question.
    runs = _runs([(0, "LoRA", 0, [1] * 4), (0, "full", 0, [0] * 4), (1, "LoRA", 0, [1] * 4), (1, "full", 0, [1] * 4)])
    gap = S.forgetting_gap(runs, "LoRA", "full")
    assert (gap.estimate, gap.low, gap.high) == (0.5, 0.5, 0.5)
    assert S.forgetting_gap(runs, "full", "LoRA").estimate == -0.5
    with pytest.raises(ValueError, match="replay"):
        S.forgetting_gap(runs, "replay", "full")


def test_forgetting_gap_names_a_winner_only_when_the_interval_allows():
    kept, lost = [1] * 20, [0] * 20
    one_each = [1] * 10 + [0] * 10, [1] * 9 + [0] * 11  # one question apart out of 20: noise
    words = lambda lora, full: in_words(  # noqa: E731
        S.forgetting_gap(_runs([(0, "LoRA", 0, lora), (0, "full", 0, full)]), "LoRA", "full"),
        "full",
        "LoRA",
        "forgot more",
    )
    assert words(kept, lost) == "full forgot more than LoRA"
    assert words(lost, kept) == "LoRA forgot more than full"
    assert words(*one_each) == "no measurable difference at this size"


def test_recipes_share_the_budget_and_mix_replay_into_one():
    plan = {"lr_full": 2e-4, "lr_lora": 3e-3, "replay_share": 0.25}
    train = [{"text": f"query {i}", "intent": "card arrival"} for i in range(30)]
    pairs = [{"question": f"general {i}?", "answer": "yes"} for i in range(5)]
    r = S.recipes(train, pairs, plan)
    assert list(r) == ["full fine-tuning", "LoRA", "full + replay"]
    assert r["LoRA"][:2] == ("lora", 3e-3) and r["full fine-tuning"][:2] == ("full", 2e-4)
    assert r["full fine-tuning"][2] == r["LoRA"][2] == F.domain_conversations(train)
    general = [c for c in r["full + replay"][2] if c[0]["content"].startswith("general")]
    assert len(general) == 10 and len(r["full + replay"][2]) == 40  # 10 of 40 is 25%


def test_tune_and_measure_trains_each_recipe_with_the_seed(monkeypatch):
    calls = []

    def fake_tune(conversations, config, method, max_length, rank):
        calls.append((method, config.learning_rate, config.seed, config.max_steps, max_length, rank))
        history = SimpleNamespace(train_seconds=1.0, final_loss=0.5)
        return SimpleNamespace(model=f"{method} model", tokenizer="tok", trainable=7, history=history)

    monkeypatch.setattr(S, "fine_tune_chat", fake_tune)
    monkeypatch.setattr(S, "measure", lambda m, t, suite: {"probe_accuracy": 1.0, "model": m})
    plan = {"steps": 3, "batch_size": 2, "max_length": 32, "lora_rank": 4}
    recipes = {"full fine-tuning": ("full", 2e-4, []), "LoRA": ("lora", 3e-3, [])}
    keep = {}
    rows = S.tune_and_measure(5, recipes, None, plan, keep=keep)
    assert calls == [("full", 2e-4, 5, 3, 32, 4), ("lora", 3e-3, 5, 3, 32, 4)]
    assert [r["method"] for r in rows] == ["full fine-tuning", "LoRA"] and rows[1]["model"] == "lora model"
    assert keep["LoRA"] == ("lora model", "tok") and rows[0]["trainable_params"] == 7


def test_seeds_for_runs_three_in_full_and_at_least_one_elsewhere():
    assert S.seeds_for(runtime.profile("full")) == [0, 1, 2]
    assert len(S.seeds_for(runtime.profile("smoke"))) >= 1
    assert S.seeds_for(runtime.profile("workshop")) == [0]  # three SmolLM2 copies per seed: one fits the workshop


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
    scores = S.measure(model, tok, suite)
    assert scores["domain_accuracy"] == 1.0 and scores["probe_accuracy"] == 0.5 and scores["probe_right"] == [1, 0]
    assert scores["probe_replies"] == [replies[probe[0]["question"]], "I could not say."]
    tuned = {"a": (model, tok)}
    final = F.final_scores(tuned, [{"text": "Where is my card?", "intent": "card arrival"}])
    assert final["a"]["accuracy"] == 1.0 and final["a"]["right"] == [1]
    # An untrained model is close to uniform over the vocabulary: perplexity near its size (49k).
    assert scores["general_perplexity"] == pytest.approx(len(tok), rel=0.5)


def test_domain_splits_are_disjoint_and_come_from_training():
    intents = ["card_arrival", "pin_blocked"]
    train, val = F.domain_splits(6, 2, intents)
    assert len(train) == 12 and len(val) == 4
    assert not {e["text"] for e in train} & {e["text"] for e in val}
    train_texts = set(F.data.load_banking77("train", intents=intents)["text"])
    assert {e["text"] for e in train + val} <= train_texts
