"""helpers.lessons.instruction_tuning: the brand-voice data, voice and JSON checks, similarity, SFT masking,
and the voice adapter's settings with the chat recipe."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from transformers import AutoTokenizer, LlamaForCausalLM

from helpers.chat import fine_tune_chat
from helpers.lessons import instruction_tuning as I
from helpers.lessons import sft_data
from helpers.lm import IGNORE_INDEX
from helpers.models import _cached_smollm
from helpers.runtime import CORE_INTENTS, profile
from tests.tiny import tiny_causal_lm

GOOD = "\n".join(
    [I.GREETING, "I'm sorry your card is late.", "Next step: open Cards > Track delivery in the app.", I.SIGN_OFF]
)


@pytest.fixture(scope="module")
def tokenizer():
    tok = AutoTokenizer.from_pretrained(_cached_smollm())
    tok.pad_token = tok.pad_token or tok.eos_token
    return tok


def tiny_lm(vocab_size: int) -> LlamaForCausalLM:
    return tiny_causal_lm(vocab_size, hidden=16, layers=1, max_positions=256)


def test_data_splits_are_disjoint_and_follow_their_own_rules():
    train, held = I.load_brand_voice("train"), I.load_brand_voice("heldout")
    assert len(train) == 140 and len(held) == 60
    assert not {r["message"] for r in train} & {r["message"] for r in held}
    assert {r["intent"] for r in train} == set(CORE_INTENTS)
    for row in train + held:
        assert I.follows_voice(row["reply"]), row["reply"]
        assert all(I.check_json(json.dumps(row["summary"]), row["intent"]).values())


def test_load_brand_voice_filters_intents_and_rejects_bad_split():
    rows = I.load_brand_voice("heldout", intents=["pin_blocked"])
    assert rows and {r["intent"] for r in rows} == {"pin_blocked"}
    with pytest.raises(ValueError, match="heldout"):
        I.load_brand_voice("test")


def test_check_voice_flags_each_broken_rule():
    assert I.follows_voice(GOOD)
    assert not I.check_voice("Hello! " + GOOD)["greeting"]
    assert not I.check_voice(GOOD.replace("I'm sorry", "Sadly"))["empathy"]
    assert not I.check_voice(GOOD.replace("Next step:", "Then"))["next_step"]
    assert not I.check_voice(GOOD.replace(I.SIGN_OFF, "Bye"))["sign_off"]
    assert not I.check_voice(GOOD + " word" * 60)["short"]
    assert not I.check_voice(GOOD.replace("late.", "late!"))["no_exclamation"]
    empty = I.check_voice("")
    assert not any(empty[k] for k in ("greeting", "empathy", "next_step", "sign_off"))


def test_check_json_accepts_fences_and_requires_keys():
    good = '{"intent": "pin_blocked", "urgency": "high", "product": "card", "amount": null}'
    assert all(I.check_json(f"```json\n{good}\n```", "pin_blocked").values())
    assert I.check_json(good, "change_pin") == {
        "valid_json": True,
        "required_keys": True,
        "valid_urgency": True,
        "intent_correct": False,
    }
    assert I.check_json('{"intent": "x"}')["required_keys"] is False
    assert I.check_json('{"intent": "x",')["valid_json"] is False
    assert I.check_json("[1, 2]")["valid_json"] is False  # JSON, but not an object


def test_conversations_and_masking(tokenizer):
    row = I.load_brand_voice("train")[0]
    convs = I.build_conversations([row], with_answer=True)
    assert [c[0]["content"] for c in convs] == [I.VOICE_SYSTEM, I.JSON_SYSTEM]
    assert I.build_conversations([row], ["json"], with_answer=False)[0][-1]["role"] == "user"
    masked = sft_data.sft_dataset([row], tokenizer, ["voice"], max_length=256)[0]
    full = sft_data.sft_dataset([row], tokenizer, ["voice"], max_length=256, assistant_only=False)[0]
    assert full["labels"] == full["input_ids"]
    in_loss = [t for t, lab in zip(masked["input_ids"], masked["labels"]) if lab != IGNORE_INDEX]
    assert tokenizer.decode(in_loss).startswith(row["reply"])  # exactly the reply (plus end-of-turn) is learned
    table = sft_data.masked_labels(masked, tokenizer)
    assert table["in_loss"].sum() == len(in_loss)


def test_score_answers_and_side_by_side():
    rows = I.load_brand_voice("heldout")[:2]
    answers = [rows[0]["reply"], "Sure! Happy to help."]

    class FakeEmbedder:  # the real MiniLM is exercised by the notebook; here only the arithmetic
        def encode(self, texts, **_):
            return torch.nn.functional.normalize(torch.tensor([[len(t), 1.0] for t in texts]), dim=1).numpy()

    frame = I.score_answers(rows, "voice", answers, embedder=FakeEmbedder())
    assert frame["format_ok"].tolist() == [True, False]
    assert frame.loc[0, "token_f1"] == pytest.approx(1.0) and frame.loc[0, "cosine"] == pytest.approx(1.0)
    assert I.summarize_scores(frame)["format_ok"] == 0.5
    assert list(I.side_by_side(rows, "voice", answers, answers).columns) == [
        "message",
        "before tuning",
        "after tuning",
        "reference",
    ]


def test_voice_settings_train_an_adapter_that_lowers_the_loss(tokenizer):
    settings = I.VoiceSettings(rank=4, steps=6, learning_rate=1e-2, max_length=64, batch_size=4)
    config = settings.train_config()
    assert (config.max_steps, config.learning_rate, config.batch_size) == (6, 1e-2, 4) and not config.restore_best
    rows = I.load_brand_voice("train")[:4]  # one batch: every step sees the same examples, so losses compare
    run = fine_tune_chat(
        I.build_conversations(rows, ["voice"]),
        config,
        model=tiny_lm(len(tokenizer)),
        tokenizer=tokenizer,
        max_length=settings.max_length,
        rank=settings.rank,
    )
    trainable = [n for n, p in run.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    losses = [r["loss"] for r in run.history.train]
    # Measured: 10.800 -> 10.768 in 6 steps, falling at every step; with a learning rate near 0 it stays at 10.800.
    assert run.history.steps == 6 and all(b < a for a, b in zip(losses, losses[1:])) and losses[0] - losses[-1] > 0.01


def test_adherence_rates_and_seeds_per_profile():
    voice = pd.DataFrame(
        {"format_ok": [True, False], "greeting": [True, True], "next_step": [1, 0], "sign_off": [0, 0]}
    )
    json_frame = pd.DataFrame({"valid_json": [True, True], "required_keys": [True, False], "intent_correct": [0, 0]})
    rates = {r["metric"]: r["rate"] for r in I.adherence({"voice": voice, "json": json_frame})}
    assert list(rates) == list(I.ADHERENCE)
    assert rates["voice: all rules"] == 0.5 and rates["valid JSON"] == 1.0 and rates["JSON keys"] == 0.5
    assert rates["voice: sign-off"] == 0.0 and rates["voice: greeting"] == 1.0
    assert I.voice_seeds(profile("smoke")) == [0]
    assert len(I.voice_seeds(profile("workshop"))) >= 2 and len(I.voice_seeds(profile("full"))) == 3
    assert len(set(I.voice_seeds(profile("full")))) == 3
