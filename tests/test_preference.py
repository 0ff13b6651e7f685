"""Preference tuning: pairs, completion log-probs, the DPO loss (and its parity with TRL), the reward model's loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoTokenizer

from helpers import models, preference
from helpers.lessons import instruction_tuning as voice
from helpers.lessons import preference as lesson
from helpers.lessons import trl_parity, voice_edits
from helpers.lm import IGNORE_INDEX
from helpers.runtime import profile
from helpers.training import TrainConfig
from tests.tiny import tiny_causal_lm, tiny_classifier, tiny_lora_lm


@pytest.fixture(scope="module")
def pairs():
    return lesson.make_pairs(voice.load_brand_voice("train")[:6])


def _policy(tok, seed: int = 0, scale: float = 0.5):
    """(tiny LoRA policy whose adapters are not zero, a copy of its base as the reference)."""
    reference = tiny_causal_lm(len(tok), seed=seed, max_positions=256)  # the same base weights, drawn from seed
    return tiny_lora_lm(len(tok), seed=seed, scale=scale), reference


def test_every_rejection_breaks_a_voice_rule_and_every_chosen_follows_them():
    rows = voice.load_brand_voice("train")
    made = lesson.make_pairs(rows)
    assert {p["kind"] for p in made} == set(lesson.REJECTIONS)
    assert all(voice.follows_voice(p["chosen"]) and not voice.follows_voice(p["rejected"]) for p in made)
    assert made == lesson.make_pairs(rows)  # deterministic
    custom = lesson.make_pairs(rows[:2], reject=str.upper)
    assert [p["rejected"] for p in custom] == [r["reply"].upper() for r in rows[:2]]


def test_pairs_split_at_the_prompt_and_the_collator_masks_all_but_completions(chat_tok, pairs):
    data = lesson.dpo_dataset(pairs[:2], chat_tok)
    row = data[0]
    full = chat_tok.apply_chat_template(
        [*pairs[0]["prompt"], {"role": "assistant", "content": pairs[0]["chosen"]}], tokenize=True, return_dict=False
    )
    assert row["prompt_ids"] + row["chosen_ids"] == list(full)
    assert chat_tok.decode(row["chosen_ids"]).startswith(pairs[0]["chosen"])
    batch = preference.preference_collator(chat_tok.pad_token_id)([data[0], data[1]])
    assert batch["input_ids"].shape[0] == 4  # chosen, chosen, rejected, rejected
    assert batch["labels"][0].ne(IGNORE_INDEX).sum() == len(row["chosen_ids"])
    assert batch["labels"][2].ne(IGNORE_INDEX).sum() == len(row["rejected_ids"])
    assert torch.equal(batch["attention_mask"].sum(1)[:1], torch.tensor([len(row["prompt_ids"] + row["chosen_ids"])]))


def test_completion_logps_sums_only_completion_tokens(chat_tok, pairs):
    model = tiny_causal_lm(len(chat_tok), max_positions=256).eval()
    batch = preference.preference_collator(chat_tok.pad_token_id)(list(lesson.dpo_dataset(pairs[:1], chat_tok)))
    got = preference.completion_logps(model, batch["input_ids"], batch["attention_mask"], batch["labels"])
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"][:1]).logits[0]
    n = int(batch["attention_mask"][0].sum())
    start = int(batch["labels"][0].ne(IGNORE_INDEX).nonzero()[0])
    expected = sum(
        torch.log_softmax(logits[t - 1], -1)[batch["input_ids"][0, t]] for t in range(start, n)
    )  # token t is predicted at position t - 1
    assert got[0].item() == pytest.approx(float(expected), abs=1e-3)


def test_dpo_loss_is_log2_when_policy_equals_reference_and_falls_with_the_margin():
    a, b = torch.tensor([-10.0, -20.0]), torch.tensor([-12.0, -15.0])
    loss, chosen, rejected = preference.dpo_loss(a, b, a, b, beta=0.1)
    assert loss.item() == pytest.approx(math.log(2)) and chosen.abs().max() == 0 and rejected.abs().max() == 0
    better, *_ = preference.dpo_loss(a + 1, b - 1, a, b, beta=0.1)
    assert better.item() == pytest.approx(-F.logsigmoid(torch.tensor(0.2)).item())


def test_adapters_off_is_the_reference_and_dpo_needs_a_peft_model(chat_tok, pairs):
    policy, reference = _policy(chat_tok)
    batch = preference.preference_collator(chat_tok.pad_token_id)(list(lesson.dpo_dataset(pairs[:2], chat_tok)))
    off = preference.pair_logps(policy, batch)
    copy_ = preference.pair_logps(policy, batch, reference=reference)
    assert all(torch.allclose(x, y, atol=1e-4) for x, y in zip(off[2:], copy_[2:]))
    assert not torch.allclose(off[0], off[2])  # the adapters change the policy
    with pytest.raises(ValueError, match="peft"):
        preference.DPOObjective(reference)


def test_our_dpo_step_matches_trl(chat_tok, pairs):
    policy, reference = _policy(chat_tok)
    theirs = trl_parity.trl_dpo_step(policy, reference, chat_tok, pairs[:3], beta=0.1)
    ours = trl_parity.own_dpo_step(policy, chat_tok, pairs[:3], beta=0.1)
    gap = trl_parity.parity(ours, theirs)
    assert gap["same_tokens"] and gap["parameters"] > 0 and gap["max_grad"] > 1e-4
    assert gap["loss_diff"] < 1e-5 and gap["max_grad_diff"] < 1e-5 * max(1.0, gap["max_grad"])
    assert abs(gap["our_loss"] - math.log(2)) > 1e-3  # policy and reference differ: a real test, not log 2 twice


def test_dpo_training_widens_the_margin_and_trains_only_adapters(chat_tok, pairs):
    policy, _ = _policy(chat_tok, scale=0.0)  # fresh adapters: the policy starts as the reference
    data = lesson.dpo_dataset(pairs, chat_tok)
    frozen = {n: p.detach().clone() for n, p in policy.named_parameters() if not p.requires_grad}
    config = TrainConfig(learning_rate=1e-2, max_steps=8, batch_size=3, progress=False, mixed_precision="no")
    history, records = preference.fine_tune_dpo(policy, data, config, chat_tok, beta=0.5)
    assert len(records) == history.steps == 8 and records[0]["loss"] == pytest.approx(math.log(2), abs=1e-4)
    after = preference.evaluate_pairs(policy, data, chat_tok, beta=0.5)
    assert after["margin"] > 0.05 and after["accuracy"] > 0.5
    assert all(torch.equal(p, frozen[n]) for n, p in policy.named_parameters() if n in frozen)


def test_bradley_terry_loss_prefers_the_higher_scored_reply():
    scorer = tiny_classifier(n_labels=1).eval()
    tok = AutoTokenizer.from_pretrained(models.minilm_dir())
    enc = tok(["good reply", "good reply too", "bad", "bad too"], padding=True, return_tensors="pt")
    out = preference.BradleyTerry(scorer)(labels=torch.zeros(4), **enc)
    r = scorer(**enc).logits.squeeze(-1)
    assert out.loss.item() == pytest.approx(-F.logsigmoid(r[:2] - r[2:]).mean().item(), abs=1e-6)


def test_both_fall_passes_and_the_score_table():
    assert lesson.both_fall({"chosen_reward": -0.1, "rejected_reward": -2.0})
    assert not lesson.both_fall({"chosen_reward": 0.1, "rejected_reward": -2.0})
    rows = voice.load_brand_voice("heldout")[:2]
    good, bad = rows[0]["reply"], voice_edits.shouty(rows[1]["reply"])
    assert list(lesson.passes([good, bad])) == [1.0, 0.0]
    table = lesson.score_table({"a": [good, good], "b": [good, bad]}, rows)
    assert table.loc["a", "pass_rate"] == 1.0 and table.loc["b", "pass_rate"] == 0.5
    assert table.loc["b", "no_exclamation"] == 0.5 and table.loc["b", "low"] <= 0.5 <= table.loc["b", "high"]


def test_adapter_snapshot_round_trip(chat_tok):
    policy, _ = _policy(chat_tok)
    saved = lesson.adapter_snapshot(policy)
    before = {n: p.detach().clone() for n, p in policy.named_parameters() if "lora_" in n}
    for name, p in policy.named_parameters():
        if "lora_" in name:
            p.data.add_(1.0)
    lesson.restore_adapter(policy, saved)
    assert saved and before and all(torch.equal(p, before[n]) for n, p in policy.named_parameters() if n in before)


def test_settings_keep_validation_apart_from_training_and_test():
    s = lesson.settings(profile("smoke"))
    train, val, test = lesson.splits(s)
    assert len(val) == s.n_val and not {r["id"] for r in train} & {r["id"] for r in val}
    assert all(r["id"].startswith("test-") for r in test) and len(s.candidates) >= 1
    messages = [{r["message"].strip().lower() for r in rows} for rows in (train, val, test)]
    assert not (messages[0] & messages[1] or messages[0] & messages[2] or messages[1] & messages[2])
    val_prompts = {p["prompt"][-1]["content"] for p in lesson.make_pairs(val)}
    assert val_prompts == {r["message"] for r in val} and not val_prompts & {r["message"] for r in test}


def test_dpo_config_follows_the_profile():
    s = lesson.settings(profile("workshop"))
    config = lesson.dpo_config(s, 1e-3)
    assert (config.learning_rate, config.max_steps, config.batch_size) == (1e-3, s.dpo_steps, s.dpo_batch)
