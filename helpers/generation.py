"""Talking to the chat model: chat-template prompts and batched generation."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

Messages = list[dict[str, str]]


def user_message(text: str, system: str | None = None) -> Messages:
    """A one-turn conversation: optional system instructions, then the user's text."""
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": text}]


@torch.no_grad()
def generate(
    model,
    tokenizer,
    conversations: Sequence[Messages],
    max_new_tokens: int = 48,
    batch_size: int = 8,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int = 0,
    progress: bool = False,
) -> list[str]:
    """The model's reply to each conversation (greedy by default), in input order."""
    device = next(model.parameters()).device
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"  # a decoder continues from the last token, so pad on the left
    was_training = model.training
    model.eval()
    torch.manual_seed(seed)
    prompts = [tokenizer.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in conversations]
    ids = tokenizer(prompts, add_special_tokens=False)["input_ids"] if prompts else []  # once; padded per batch
    # Prompts of similar length share a batch, so little of each batch is padding; replies return in input order.
    order = sorted(range(len(prompts)), key=lambda i: len(ids[i]))
    sampling = (
        dict(do_sample=True, temperature=temperature, top_p=top_p)
        if do_sample
        else dict(do_sample=False, temperature=None, top_p=None, top_k=None)
    )
    replies: list[str] = [""] * len(prompts)
    try:
        starts = range(0, len(prompts), batch_size)
        for start in tqdm(starts, desc="Generating", disable=not progress):
            chunk = order[start : start + batch_size]
            enc = tokenizer.pad({"input_ids": [ids[i] for i in chunk]}, return_tensors="pt")
            out = model.generate(
                **enc.to(device), max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id, **sampling
            )
            texts = tokenizer.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
            for i, text in zip(chunk, texts, strict=True):
                replies[i] = text.strip()
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return replies
