"""helpers.chat: the one chat recipe (LoRA or full SFT, assistant-only loss, seeding) and replay mixing."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer

from helpers import chat, lm, models
from helpers.training import TrainConfig
from tests.tiny import tiny_causal_lm

QUICK = TrainConfig(learning_rate=1e-2, max_steps=2, batch_size=4, progress=False)
CHATS = [
    [{"role": "user", "content": f"Where is my card number {i}?"}, {"role": "assistant", "content": "On its way."}]
    for i in range(8)
]


@pytest.fixture(scope="module")
def tok():
    tokenizer = AutoTokenizer.from_pretrained(models._cached_smollm())
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    return tokenizer


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory, tok):
    """A saved tiny Llama with SmolLM2's tokenizer: what a hub id or folder loads."""
    folder = tmp_path_factory.mktemp("chat") / "model"
    tiny_causal_lm(len(tok)).save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder


def changed(model: torch.nn.Module, before: dict[str, torch.Tensor]) -> set[str]:
    """Names of ``model``'s parameters that moved away from ``before`` (peft names mapped to the base's)."""
    moved = set()
    for name, p in model.named_parameters():
        base = name.replace("base_model.model.", "").replace(".base_layer", "")
        if base in before and not torch.equal(p, before[base]) or "lora_B" in name and torch.count_nonzero(p):
            moved.add(name)
    return moved


def test_lora_trains_only_the_adapters(tok):
    model = tiny_causal_lm(len(tok))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    run = chat.fine_tune_chat(CHATS, QUICK, model=model, tokenizer=tok, max_length=96, rank=2)
    trainable = {n for n, p in run.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert run.trainable == sum(p.numel() for n, p in run.model.named_parameters() if n in trainable) < run.total
    moved = changed(run.model, before)
    assert moved and moved <= trainable and any("lora_B" in n for n in moved)
    # A peft model is trained as it is: its adapters, no second wrapping.
    again = chat.fine_tune_chat(CHATS, QUICK, model=run.model, tokenizer=tok, max_length=96)
    assert again.model is run.model


def test_full_trains_every_weight(tok):
    model = tiny_causal_lm(len(tok))
    model.model.embed_tokens.requires_grad_(False)  # frozen before: "full" trains it too
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    run = chat.fine_tune_chat(CHATS, QUICK, method="full", model=model, tokenizer=tok, max_length=96)
    assert run.model is model and run.trainable == run.total
    assert {"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", "lm_head.weight"} <= changed(
        model, before
    )


def test_loss_covers_the_replies_only_unless_asked(tok):
    run = chat.fine_tune_chat(CHATS[:4], QUICK, model=tiny_causal_lm(len(tok)), tokenizer=tok, max_length=96)
    example = run.train_data[0]
    learned = [t for t, label in zip(example["input_ids"], example["labels"]) if label != lm.IGNORE_INDEX]
    assert tok.decode(learned).startswith("On its way.") and len(learned) < len(example["input_ids"]) / 2
    every = chat.fine_tune_chat(
        CHATS[:4], QUICK, model=tiny_causal_lm(len(tok)), tokenizer=tok, max_length=96, assistant_only=False
    )
    assert every.train_data[0]["labels"] == every.train_data[0]["input_ids"]


def test_eval_data_and_tokenised_text(tok):
    texts = lm.text_examples(["my card has not arrived yet", "what is the exchange rate"] * 4, tok, max_length=16)
    run = chat.fine_tune_chat(
        texts, QUICK, eval_data=CHATS[:2], method="full", model=tiny_causal_lm(len(tok)), tokenizer=tok
    )
    assert run.train_data is texts  # a tokenised dataset is used as it is
    assert run.history.evals and "eval_loss" in run.history.evals[-1]
    with pytest.raises(ValueError, match="input_ids"):
        chat.fine_tune_chat(texts.remove_columns("input_ids"), QUICK, model=tiny_causal_lm(len(tok)), tokenizer=tok)


def test_loaded_models_are_seeded_built_ones_are_not(tiny_folder, tok):
    def lora_a(run):
        return next(p for n, p in run.model.named_parameters() if "lora_A" in n).detach().clone()

    starts = []
    for seed in (1, 2):
        torch.manual_seed(seed)  # whatever the RNG held, a model the recipe loads starts from config.seed
        starts.append(lora_a(chat.fine_tune_chat(CHATS, QUICK, model=tiny_folder, max_length=96, rank=2)))
    assert torch.equal(starts[0], starts[1])
    built = []
    for seed in (1, 2):
        model = tiny_causal_lm(len(tok))
        torch.manual_seed(seed)
        built.append(lora_a(chat.fine_tune_chat(CHATS, QUICK, model=model, tokenizer=tok, max_length=96, rank=2)))
    assert not torch.equal(built[0], built[1])


def test_mistakes_are_one_sentence(tok):
    with pytest.raises(ValueError, match=r"^method must be one of 'lora', 'full', not 'head-only'\.$"):
        chat.fine_tune_chat(CHATS, QUICK, method="head-only")
    with pytest.raises(ValueError, match="No conversations"):
        chat.fine_tune_chat([], QUICK, model=tiny_causal_lm(len(tok)), tokenizer=tok)
    with pytest.raises(ValueError, match="tokenizer="):
        chat.fine_tune_chat(CHATS, QUICK, model=tiny_causal_lm(len(tok)))


def test_mix_replay_hits_the_share_and_keeps_every_domain_example():
    domain = [[{"role": "user", "content": f"d{i}"}] for i in range(30)]
    replay = [[{"role": "user", "content": f"g{i}"}] for i in range(20)]
    mixed = chat.mix_replay(domain, replay, 0.25, seed=1)
    assert len(mixed) == 40 and sum(m in replay for m in mixed) == 10
    assert all(d in mixed for d in domain)
    assert chat.mix_replay(domain, replay, 0.25, seed=1) == mixed  # reproducible
    more = chat.mix_replay(domain, replay, 0.6)  # 45 general examples from a pool of 20: every one 2 or 3 times
    counts = [sum(m == g for m in more) for g in replay]
    assert len(more) == 75 and sum(counts) == 45 and set(counts) == {2, 3}
    with pytest.raises(ValueError, match="empty"):
        chat.mix_replay(domain, [], 0.25)
    with pytest.raises(ValueError, match="share"):
        chat.mix_replay(domain, replay, 1.0)
