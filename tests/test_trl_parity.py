"""helpers.lessons.trl_parity, SFT half: TRL's SFTTrainer (completion_only_loss) against our masked loss."""

from __future__ import annotations

import copy

import pytest

from helpers.lessons import instruction_tuning as voice
from helpers.lessons import trl_parity
from tests.tiny import tiny_lora_lm


@pytest.fixture(scope="module")
def conversations():
    return voice.build_conversations(voice.load_brand_voice("train")[:2])


def test_prompt_completion_rows_split_before_the_reply(conversations):
    rows = trl_parity.prompt_completion_rows(conversations)
    assert [m["role"] for m in rows[0]["prompt"]] == ["system", "user"]
    assert rows[0]["completion"] == [conversations[0][-1]]


def test_our_masked_loss_matches_sft_trainer(chat_tok, conversations):
    model = tiny_lora_lm(len(chat_tok)).eval()
    eos = copy.deepcopy(model.generation_config.eos_token_id)
    theirs = trl_parity.trl_sft_step(model, chat_tok, conversations, max_length=96)
    ours = trl_parity.own_sft_step(model, chat_tok, conversations, max_length=96)
    gap = trl_parity.sft_parity(ours, theirs)
    assert gap["same_tokens"] and gap["same_loss_mask"] and gap["parameters"] > 0 and gap["max_grad"] > 1e-4
    assert gap["loss_diff"] < 1e-5 and gap["max_grad_diff"] < 1e-5 * max(1.0, gap["max_grad"])
    assert model.generation_config.eos_token_id == eos  # SFTTrainer's edit is undone


def test_the_loss_on_every_token_is_caught(chat_tok, conversations):
    model = tiny_lora_lm(len(chat_tok)).eval()
    theirs = trl_parity.trl_sft_step(model, chat_tok, conversations, max_length=96)
    unmasked = trl_parity.own_sft_step(model, chat_tok, conversations, max_length=96, assistant_only=False)
    gap = trl_parity.sft_parity(unmasked, theirs)
    assert gap["same_tokens"] and not gap["same_loss_mask"] and gap["loss_diff"] > 1e-3


def test_side_by_side_training_gives_the_same_losses(chat_tok, conversations):
    model = tiny_lora_lm(len(chat_tok), scale=0.0).eval()  # fresh adapters
    curves = trl_parity.sft_side_by_side(model, chat_tok, conversations, 1e-2, steps=3, max_length=96)
    assert list(curves.columns) == ["our loop", "SFTTrainer", "gap"] and len(curves) == 3
    assert curves["gap"].max() < 1e-4
    assert curves["our loop"].iloc[-1] < curves["our loop"].iloc[0]  # it trained: the match is not trivial


def test_sft_config_turns_off_what_a_cpu_run_does_not_want(tmp_path):
    args = trl_parity.sft_config(str(tmp_path), max_length=64)
    assert args.completion_only_loss and not args.bf16 and not args.gradient_checkpointing
    assert args.save_strategy == "no" and args.report_to == [] and args.max_length == 64
