"""Learning from preferences: pairs of replies (chosen, rejected) to the same prompt.

DPO (Rafailov et al. 2023) trains the policy itself: it raises the log-probability of the chosen completion and
lowers the rejected one's, each measured against a frozen reference model, with no reward model and no sampling.
With LoRA the reference is the same network with its adapters switched off (peft's ``disable_adapter``), so there is
no second copy in memory. A reward model (Bradley-Terry) learns a scalar score from the same pairs, with the same
pairwise loss shape: -log sigmoid(score of chosen - score of rejected).
Batches follow TRL's layout: the chosen sequences first, then the rejected ones, labels -100 outside the completion.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from helpers import models
from helpers.history import History
from helpers.lm import IGNORE_INDEX, token_logprobs
from helpers.training import TrainConfig, train

Messages = list[dict[str, str]]


def tokenize_pairs(prompts: Sequence[Messages], chosen: Sequence[str], rejected: Sequence[str], tokenizer) -> Dataset:
    """prompt_ids, chosen_ids, rejected_ids per pair via the chat template (completions end with their end tokens)."""
    if not (len(prompts) == len(chosen) == len(rejected)):
        raise ValueError(
            f"Pairs need one prompt, chosen and rejected each: {len(prompts)}, {len(chosen)}, {len(rejected)}."
        )
    rows = []
    for prompt, good, bad in zip(prompts, chosen, rejected):
        prompt_ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=False)
        row = {"prompt_ids": list(prompt_ids)}
        for key, reply in (("chosen_ids", good), ("rejected_ids", bad)):
            full = tokenizer.apply_chat_template(
                [*prompt, {"role": "assistant", "content": reply}], tokenize=True, return_dict=False
            )
            if full[: len(prompt_ids)] != prompt_ids:
                raise ValueError("The chat template renders the prompt differently with a reply; cannot split it.")
            row[key] = list(full[len(prompt_ids) :])
        rows.append(row)
    return Dataset.from_list(rows)


def preference_collator(pad_token_id: int):
    """Pads pairs into one batch: input_ids, attention_mask, labels (-100 outside the completion); chosen first."""

    def collate(examples: Sequence[dict]) -> dict[str, torch.Tensor]:
        seqs, labels = [], []
        for key in ("chosen_ids", "rejected_ids"):
            for ex in examples:
                seqs.append(ex["prompt_ids"] + ex[key])
                labels.append([IGNORE_INDEX] * len(ex["prompt_ids"]) + ex[key])
        width = max(map(len, seqs))
        pad = [width - len(s) for s in seqs]
        return {
            "input_ids": torch.tensor([s + [pad_token_id] * n for s, n in zip(seqs, pad)]),
            "attention_mask": torch.tensor([[1] * len(s) + [0] * n for s, n in zip(seqs, pad)]),
            "labels": torch.tensor([lab + [IGNORE_INDEX] * n for lab, n in zip(labels, pad)]),
        }

    return collate


def completion_logps(
    model, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """log p(completion | prompt) per sequence (B,): the sum over completion tokens only (labels != -100)."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits[:, :-1]  # (B, T-1, V)
    return token_logprobs(logits, labels[:, 1:]).sum(dim=-1)  # token t is predicted from the tokens before it


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean loss, chosen rewards, rejected rewards): -log sigmoid(beta * (chosen log-ratio - rejected log-ratio))."""
    chosen_rewards = beta * (policy_chosen - ref_chosen)  # implicit reward: how much more likely than the reference
    rejected_rewards = beta * (policy_rejected - ref_rejected)
    loss = -F.logsigmoid(chosen_rewards - rejected_rewards).mean()
    return loss, chosen_rewards.detach(), rejected_rewards.detach()


@dataclass
class DPOOutput:
    """What one DPO forward returns: the loss (for the training loop) and the pair statistics."""

    loss: torch.Tensor
    stats: dict[str, float] = field(default_factory=dict)


def pair_logps(policy, batch: dict[str, torch.Tensor], reference=None) -> tuple[torch.Tensor, ...]:
    """(policy chosen, policy rejected, reference chosen, reference rejected) completion log-probs of a pair batch.

    The reference is ``reference`` if given, else the policy with its LoRA adapters switched off (no second copy).
    """
    inputs = (batch["input_ids"], batch["attention_mask"], batch["labels"])
    policy_logps = completion_logps(policy, *inputs)
    with torch.no_grad(), contextlib.nullcontext() if reference is not None else policy.disable_adapter():
        ref_logps = completion_logps(reference if reference is not None else policy, *inputs)
    return (*policy_logps.chunk(2), *ref_logps.chunk(2))


class DPOObjective(torch.nn.Module):
    """Wraps a peft policy so ``train()`` can optimise the DPO loss; keeps per-forward statistics in ``records``."""

    def __init__(self, policy, beta: float = 0.1):
        super().__init__()
        if not hasattr(policy, "disable_adapter"):
            raise ValueError("DPO here needs a peft model: its adapters off give the reference. Add LoRA first.")
        self.policy, self.beta, self.records = policy, beta, []

    def forward(self, input_ids, attention_mask, labels) -> DPOOutput:
        """The DPO loss of a pair batch (chosen rows first, then rejected)."""
        batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
        pc, pr, rc, rr = pair_logps(self.policy, batch)
        loss, chosen_r, rejected_r = dpo_loss(pc, pr, rc, rr, self.beta)
        stats = pair_stats(pc.detach(), pr.detach(), chosen_r, rejected_r)
        if self.training:
            self.records.append(stats | {"loss": float(loss.detach())})
        return DPOOutput(loss, stats)


def pair_stats(pc, pr, chosen_rewards, rejected_rewards) -> dict[str, float]:
    """Mean chosen/rejected log-probs, rewards, margin and the share of pairs ranked right (reward accuracy)."""
    margin = chosen_rewards - rejected_rewards
    return {
        "chosen_logp": float(pc.mean()),
        "rejected_logp": float(pr.mean()),
        "chosen_reward": float(chosen_rewards.mean()),
        "rejected_reward": float(rejected_rewards.mean()),
        "margin": float(margin.mean()),
        "accuracy": float((margin > 0).float().mean()),
    }


def fine_tune_dpo(policy, pairs: Dataset, config: TrainConfig, tokenizer, beta: float = 0.1) -> tuple[History, list]:
    """Train a peft ``policy`` in place by DPO on tokenised ``pairs``; returns (History, per-step statistics)."""
    objective = DPOObjective(policy, beta)
    history = train(objective, pairs, config, collate_fn=preference_collator(tokenizer.pad_token_id))
    return history, objective.records[-history.steps :]  # a precision probe's forwards come first


@torch.no_grad()
def evaluate_pairs(policy, pairs: Dataset, tokenizer, beta: float = 0.1, batch_size: int = 8) -> dict[str, float]:
    """Pair statistics (``pair_stats``) of ``policy`` against its adapter-free reference over held-out pairs."""
    was_training, collate = policy.training, preference_collator(tokenizer.pad_token_id)
    policy.eval()
    parts = []
    for start in range(0, len(pairs), batch_size):
        batch = collate([pairs[i] for i in range(start, min(start + batch_size, len(pairs)))])
        parts.append(pair_logps(policy, {k: v.to(policy.device) for k, v in batch.items()}))
    policy.train(was_training)
    pc, pr, rc, rr = (torch.cat(x) for x in zip(*parts))
    return pair_stats(pc, pr, beta * (pc - rc), beta * (pr - rr))


# --- a reward model (Bradley-Terry) ----------------------------------------------------
def load_reward_model(model: str | Path | None = None, seed: int = 0):
    """(encoder with a one-number head, tokenizer); default MiniLM. The head starts random, so it is seeded."""
    torch.manual_seed(seed)
    path = str(model or models.minilm_dir())
    net = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, local_files_only=models._local_only())
    return net, AutoTokenizer.from_pretrained(path, local_files_only=models._local_only())


def reward_inputs(tokenizer, messages: Sequence[str], replies: Sequence[str], max_length: int = 128) -> dict:
    """(reply, message) as a text pair; the message is cut first, so a reply's ending is never truncated."""
    return tokenizer(list(replies), list(messages), truncation="only_second", max_length=max_length)


class BradleyTerry(torch.nn.Module):
    """Wraps a scalar-head encoder: loss = -log sigmoid(r(chosen) - r(rejected)); batches hold chosen rows first."""

    def __init__(self, scorer):
        super().__init__()
        self.scorer = scorer

    def forward(self, labels, **inputs) -> DPOOutput:
        """The Bradley-Terry loss of a pair batch (``labels`` only counts the rows for the loop's log)."""
        chosen, rejected = self.scorer(**inputs).logits.squeeze(-1).chunk(2)
        return DPOOutput(-F.logsigmoid(chosen - rejected).mean())


def _reward_collator(tokenizer, keys: Sequence[str]):
    def collate(rows):
        features = [{k: r[f"{side}_{k}"] for k in keys} for side in ("chosen", "rejected") for r in rows]
        return dict(tokenizer.pad(features, return_tensors="pt")) | {"labels": torch.zeros(len(features))}

    return collate


def train_reward_model(messages, chosen, rejected, config: TrainConfig, max_length: int = 128, seed: int = 0):
    """(reward model, tokenizer, History): an encoder + scalar head trained by ``train()`` with Bradley-Terry."""
    scorer, tok = load_reward_model(seed=seed)
    good, bad = (reward_inputs(tok, messages, replies, max_length) for replies in (chosen, rejected))
    data = Dataset.from_dict({f"chosen_{k}": v for k, v in good.items()} | {f"rejected_{k}": v for k, v in bad.items()})
    history = train(BradleyTerry(scorer), data, config, collate_fn=_reward_collator(tok, list(good.keys())))
    return scorer.eval(), tok, history


@torch.no_grad()
def reward_scores(scorer, tokenizer, messages: Sequence[str], replies: Sequence[str], batch_size: int = 32):
    """The reward model's score of each (message, reply), as a NumPy array."""
    out = []
    for s in range(0, len(replies), batch_size):
        enc = reward_inputs(tokenizer, messages[s : s + batch_size], replies[s : s + batch_size])
        out.append(scorer(**tokenizer.pad(enc, return_tensors="pt")).logits.squeeze(-1))
    return torch.cat(out).numpy() if out else np.zeros(0)
