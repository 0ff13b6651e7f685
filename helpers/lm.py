"""Causal language-model data: plain text and chat examples, loss masking, what truncation cuts, perplexity and
its bootstrap interval."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from datasets import Dataset
from transformers import DataCollatorForSeq2Seq

from helpers import intervals
from helpers.data import eval_loader

IGNORE_INDEX = -100  # label value the loss skips (PyTorch's cross-entropy default)


def text_examples(texts: Sequence[str], tokenizer, max_length: int) -> Dataset:
    """Plain-text LM examples: every token is predicted (labels = input_ids)."""

    def encode(batch):
        enc = tokenizer(batch["text"], truncation=True, max_length=max_length)
        enc["labels"] = [list(ids) for ids in enc["input_ids"]]
        return enc

    return Dataset.from_dict({"text": list(texts)}).map(encode, batched=True, remove_columns=["text"])


def chat_example(
    messages: list[dict[str, str]], tokenizer, max_length: int, assistant_only: bool = True
) -> dict[str, list[int]]:
    """One chat conversation as input_ids/attention_mask/labels via the chat template.

    With ``assistant_only`` the prompt's tokens get label -100, so the loss
    teaches the model to write replies, not to predict the customer's words.
    The last message must be the assistant's.
    """
    if messages[-1]["role"] != "assistant":
        raise ValueError("The last message of a training conversation must have role 'assistant'.")
    prompt_ids = tokenizer.apply_chat_template(
        messages[:-1], add_generation_prompt=True, tokenize=True, return_dict=False
    )
    full_ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False)
    if full_ids[: len(prompt_ids)] != prompt_ids:
        raise ValueError(
            "The chat template renders the prompt differently with and without the reply; "
            "cannot mask the prompt for this tokenizer."
        )
    full_ids = full_ids[:max_length]
    labels = list(full_ids)
    if assistant_only:
        n_prompt = min(len(prompt_ids), len(full_ids))
        labels[:n_prompt] = [IGNORE_INDEX] * n_prompt
    return {"input_ids": full_ids, "attention_mask": [1] * len(full_ids), "labels": labels}


def chat_examples(
    conversations: Sequence[list[dict[str, str]]], tokenizer, max_length: int, assistant_only: bool = True
) -> Dataset:
    """A Dataset of chat training examples (see ``chat_example``)."""
    rows = [chat_example(m, tokenizer, max_length, assistant_only) for m in conversations]
    return Dataset.from_list(rows)


def learned_tokens(example: dict[str, list[int]], tokenizer) -> pd.DataFrame:
    """One row per token of a chat example: the token's text and whether the loss learns it (label != -100)."""
    return pd.DataFrame(
        {
            "token": tokenizer.convert_ids_to_tokens(example["input_ids"]),
            "learned": [label != IGNORE_INDEX for label in example["labels"]],
        }
    )


def truncation_stats(conversations: Sequence[list[dict[str, str]]], tokenizer, max_length: int) -> pd.DataFrame:
    """Per conversation: full token length, tokens kept, reply tokens learned before and after truncation."""
    rows = []
    for messages in conversations:
        full = chat_example(messages, tokenizer, max_length=10**6)
        n_reply = sum(label != IGNORE_INDEX for label in full["labels"])
        kept = full["labels"][:max_length]
        rows.append(
            {
                "tokens": len(full["input_ids"]),
                "kept": len(kept),
                "reply_tokens": n_reply,
                "reply_tokens_kept": sum(label != IGNORE_INDEX for label in kept),
            }
        )
    frame = pd.DataFrame(rows)
    frame["truncated"] = frame["tokens"] > max_length
    frame["nothing_learned"] = frame["reply_tokens_kept"] == 0
    return frame


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target token) per position (B, T) from aligned ``logits`` (B, T, V); 0 where the target is ignored."""
    picked = torch.log_softmax(logits.float(), dim=-1).gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return picked * (targets != IGNORE_INDEX)


def lm_collator(tokenizer):
    """Pads input_ids with the pad token and labels with -100 (ignored by the loss)."""
    return DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE_INDEX)


@torch.no_grad()
def query_losses(model, dataset, tokenizer, batch_size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Per sequence, in order: summed negative log-likelihood of its predicted tokens, and how many it predicts.

    exp(nll.sum() / tokens.sum()) is ``perplexity`` on the same data.
    """
    device, was_training = next(model.parameters()).device, model.training
    model.eval()
    nll, tokens = [], []
    for batch in eval_loader(dataset, batch_size, lm_collator(tokenizer)):
        batch = {k: v.to(device) for k, v in batch.items()}
        targets = batch["labels"][:, 1:]  # (B, T-1): position t predicts token t+1
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
        nll.append(-token_logprobs(logits, targets).sum(-1).double().cpu())
        tokens.append((targets != IGNORE_INDEX).sum(-1).cpu())
    model.train(was_training)
    return torch.cat(nll).numpy(), torch.cat(tokens).numpy()


def _loss_shares(nll: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """Per-query values whose mean is the loss per token (total nll / total tokens) and whose bootstrap means
    move as that ratio does (to first order: each query's loss less its tokens at the mean rate, per mean query)."""
    rate = nll.sum() / tokens.sum()
    return rate + (nll - rate * tokens) / tokens.mean()


def _exp(interval: intervals.Interval) -> intervals.Interval:
    """An interval on a loss per token, as perplexity (its str() reads percentages: format the fields yourself)."""
    return intervals.Interval(*(float(np.exp(v)) for v in (interval.estimate, interval.low, interval.high)))


def perplexity_interval(nll: np.ndarray, tokens: np.ndarray, seed: int = 0) -> intervals.Interval:
    """Perplexity exp(total nll / total tokens) with a 95% bootstrap interval over the queries (resampled whole)."""
    return _exp(intervals.mean_interval(_loss_shares(np.asarray(nll), np.asarray(tokens)), seed=seed))


def perplexity_ratio(scores: dict[str, dict], worse: str, better: str, seed: int = 0) -> intervals.Interval:
    """``worse``'s perplexity over ``better``'s on the same queries, with a paired 95% bootstrap interval
    (above 1 across the interval: ``better`` is measurably lower)."""
    a, b = scores[worse], scores[better]
    if not np.array_equal(a["tokens"], b["tokens"]):
        raise ValueError(f"{worse!r} and {better!r} were not scored on the same tokens: no paired comparison.")
    shares = [_loss_shares(np.asarray(r["nll"]), np.asarray(r["tokens"])) for r in (a, b)]
    return _exp(intervals.paired_difference(*shares, seed=seed))


def perplexity(model, dataset: Dataset, tokenizer, batch_size: int = 8) -> float:
    """exp(mean loss per predicted token) over a tokenised LM dataset; lower is better."""
    nll, tokens = query_losses(model, dataset, tokenizer, batch_size)
    return math.exp(nll.sum() / max(1, tokens.sum()))
