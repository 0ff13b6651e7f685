"""Notebook 10's parity cells: one DPO step through TRL's DPOTrainer and through our code, and how far apart they are.

The same policy, the same pairs: TRL gets the reference as a second model, ours switches the LoRA adapters off.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from datasets import Dataset

from helpers import preference
from helpers.lessons.preference import dpo_dataset


def _gradients(model) -> dict[str, torch.Tensor]:
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return grads


def trl_dpo_step(policy, reference, tokenizer, pairs, beta: float, loss_type: str = "sigmoid") -> dict[str, Any]:
    """TRL's DPO loss and gradients on ``pairs`` (one batch): {'loss', 'grads', 'ids'} (ids: TRL's tokenisation)."""
    from trl import DPOConfig, DPOTrainer  # noqa: PLC0415  (imports in seconds; only here)

    rows = [
        {"prompt": p["prompt"], **{k: [{"role": "assistant", "content": p[k]}] for k in ("chosen", "rejected")}}
        for p in pairs
    ]
    with tempfile.TemporaryDirectory() as out, warnings.catch_warnings():
        # transformers 5.23 warns that TRL 1.16's config still sets `gradient_checkpointing` (renamed): not ours to fix
        warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*", category=FutureWarning)
        # DPOConfig defaults to bf16 (and lr 1e-6, unused here): on a CPU, bf16 off
        args = DPOConfig(out, beta=beta, loss_type=[loss_type], bf16=False, report_to="none")
        trainer = DPOTrainer(
            policy, ref_model=reference, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer
        )
        tokenised = [trainer.train_dataset[i] for i in range(len(rows))]
        policy.zero_grad(set_to_none=True)
        loss = trainer.compute_loss(trainer.model, trainer.data_collator(tokenised))
        loss.backward()
    ids = [{k: list(r[k]) for k in ("prompt_ids", "chosen_ids", "rejected_ids")} for r in tokenised]
    return {"loss": float(loss.detach()), "grads": _gradients(policy), "ids": ids}


def library_dpo_loss(policy, batch: dict[str, torch.Tensor], beta: float) -> torch.Tensor:
    """The DPO loss of a pair batch with ``helpers.preference`` (reference: the policy with its adapters off)."""
    return preference.dpo_loss(*preference.pair_logps(policy, batch), beta)[0]


def own_dpo_step(policy, tokenizer, pairs: Sequence[dict[str, Any]], beta: float, loss_fn=None) -> dict[str, Any]:
    """The same step with our code: ``loss_fn(policy, batch, beta)`` (default ``library_dpo_loss``)."""
    data = dpo_dataset(pairs, tokenizer)
    batch = preference.preference_collator(tokenizer.pad_token_id)(list(data))
    policy.zero_grad(set_to_none=True)
    loss = (loss_fn or library_dpo_loss)(policy, batch, beta)
    loss.backward()
    return {"loss": float(loss.detach()), "grads": _gradients(policy), "ids": list(data)}


def parity(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, float]:
    """How far apart two DPO steps are: loss difference, largest gradient difference and size, same tokens or not."""
    names = sorted(set(ours["grads"]) | set(theirs["grads"]))
    missing = [n for n in names if n not in ours["grads"] or n not in theirs["grads"]]
    if missing:
        raise ValueError(f"Gradients of different parameters: {missing[:3]} ...")
    diff = max(float((ours["grads"][n] - theirs["grads"][n]).abs().max()) for n in names)
    size = max(float(theirs["grads"][n].abs().max()) for n in names)
    return {
        "our_loss": ours["loss"],
        "trl_loss": theirs["loss"],
        "loss_diff": abs(ours["loss"] - theirs["loss"]),
        "max_grad_diff": diff,
        "max_grad": size,
        "parameters": len(names),
        "same_tokens": ours["ids"] == theirs["ids"],
    }
