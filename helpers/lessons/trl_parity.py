"""Parity cells with TRL: one step through TRL's trainer and through our code, and how far apart they are.

Notebook 10, DPO: the same policy, the same pairs; TRL gets the reference as a second model, ours switches the
LoRA adapters off. Notebook 06, SFT: the same model, the same conversations; TRL gets prompt-completion rows with
``completion_only_loss=True``, ours masks the prompt in ``helpers.lm.chat_examples``. A few full-batch training
steps with each repeat the comparison over training (the same examples every step, so data order cannot differ).
"""

from __future__ import annotations

import copy
import tempfile
import warnings
from collections.abc import Sequence
from typing import Any

import pandas as pd
import torch
from datasets import Dataset
from transformers import PrinterCallback

from helpers import lm, preference
from helpers.chat import fine_tune_chat
from helpers.lessons.preference import dpo_dataset
from helpers.lessons.trainer_parity import trainer_kwargs
from helpers.runtime import Profile
from helpers.training import TrainConfig


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
    """How far apart two steps (DPO or SFT) are: loss difference, largest gradient difference and size, same tokens."""
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


# --- SFT (notebook 06): TRL's SFTTrainer on prompt-completion rows against our masked loss ----------------------
def prompt_completion_rows(conversations: Sequence[list[dict[str, str]]]) -> list[dict[str, Any]]:
    """TRL's conversational prompt-completion rows: every turn before the reply, then the reply (role assistant)."""
    return [{"prompt": list(c[:-1]), "completion": [c[-1]]} for c in conversations]


def sft_config(output_dir: str, max_length: int, config: TrainConfig | None = None, steps: int = 1):
    """An ``SFTConfig`` with the loss on the completion only and ``config``'s knobs (bf16 off on a CPU, no saving)."""
    from trl import SFTConfig  # noqa: PLC0415  (imports in seconds; only here)

    knobs = trainer_kwargs(config or TrainConfig(), steps)
    with warnings.catch_warnings():  # transformers 5.23 renamed `gradient_checkpointing`; TRL 1.16 still sets it
        warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*", category=FutureWarning)
        # SFTConfig's own defaults differ from Trainer's: bf16 and gradient checkpointing on; both off here
        return SFTConfig(
            output_dir,
            **knobs,
            completion_only_loss=True,
            max_length=max_length,
            gradient_checkpointing=False,
            save_strategy="no",
        )


def _sft_trainer(model, tokenizer, conversations, args):
    from trl import SFTTrainer  # noqa: PLC0415

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*", category=FutureWarning)
        rows = Dataset.from_list(prompt_completion_rows(conversations))
        generation = getattr(model, "generation_config", None)
        eos = copy.deepcopy(getattr(generation, "eos_token_id", None))
        trainer = SFTTrainer(model, args=args, train_dataset=rows, processing_class=tokenizer)
        if generation is not None:  # SFTTrainer adds the tokenizer's EOS to it: the model generates as before
            generation.eos_token_id = eos
    trainer.remove_callback(PrinterCallback)  # with tqdm off it prints every log line
    return trainer


def trl_sft_step(model, tokenizer, conversations, max_length: int) -> dict[str, Any]:
    """SFTTrainer's loss and gradients on ``conversations`` as one batch: {'loss', 'grads', 'ids', 'labels'}."""
    with tempfile.TemporaryDirectory() as out:
        trainer = _sft_trainer(model, tokenizer, conversations, sft_config(out, max_length))
        rows = [trainer.train_dataset[i] for i in range(len(conversations))]
        batch = trainer.data_collator(rows)
        model.zero_grad(set_to_none=True)
        loss = trainer.compute_loss(trainer.model, batch)
        loss.backward()
    ids = [list(r["input_ids"]) for r in rows]
    labels = [row[: len(i)].tolist() for row, i in zip(batch["labels"], ids)]
    return {"loss": float(loss.detach()), "grads": _gradients(model), "ids": ids, "labels": labels}


def own_sft_step(model, tokenizer, conversations, max_length: int, assistant_only: bool = True) -> dict[str, Any]:
    """The same batch through our code: ``helpers.lm.chat_examples`` (masked labels), our collator, the model's loss."""
    data = lm.chat_examples(conversations, tokenizer, max_length, assistant_only=assistant_only)
    batch = lm.lm_collator(tokenizer)(list(data))
    model.zero_grad(set_to_none=True)
    loss = model(**batch).loss
    loss.backward()
    ids = [list(r["input_ids"]) for r in data]
    return {"loss": float(loss.detach()), "grads": _gradients(model), "ids": ids, "labels": list(data["labels"])}


def sft_parity(ours: dict[str, Any], theirs: dict[str, Any]) -> dict[str, float]:
    """``parity`` of two SFT steps, plus whether the same tokens are in the loss."""
    return {**parity(ours, theirs), "same_loss_mask": ours["labels"] == theirs["labels"]}


def trl_sft_train(model, tokenizer, conversations, config: TrainConfig, max_length: int) -> list[tuple[int, float]]:
    """Train ``model`` in place with SFTTrainer for ``config.max_steps`` steps; the training loss per step."""
    with tempfile.TemporaryDirectory() as out:
        trainer = _sft_trainer(model, tokenizer, conversations, sft_config(out, max_length, config, config.max_steps))
        trainer.train()
    return [(r["step"], r["loss"]) for r in trainer.state.log_history if "loss" in r]


def sft_parity_steps(p: Profile) -> int:
    """Full-batch training steps of notebook 06's SFTTrainer-vs-ours run in profile ``p``."""
    return p.pick(smoke=2, workshop=3, full=5)


def sft_side_by_side(
    model, tokenizer, conversations, learning_rate: float, steps: int, max_length: int, seed: int = 0
) -> pd.DataFrame:
    """Train ``model`` with our loop and a copy with SFTTrainer, ``steps`` full-batch steps each; losses per step.

    Every step sees all of ``conversations`` in one batch, so the order the two samplers draw cannot differ.
    """
    twin = copy.deepcopy(model)
    config = TrainConfig(
        learning_rate=learning_rate,
        max_steps=steps,
        batch_size=len(conversations),
        seed=seed,
        restore_best=False,
        progress=False,
    )
    ours = fine_tune_chat(conversations, config, model=model, tokenizer=tokenizer, max_length=max_length).history
    theirs = trl_sft_train(twin, tokenizer, conversations, config, max_length)
    frame = pd.concat(
        [ours.train_frame().set_index("step")["loss"].rename("our loop"), pd.Series(dict(theirs), name="SFTTrainer")],
        axis=1,
    )
    frame.index.name = "step"
    return frame.assign(gap=(frame["our loop"] - frame["SFTTrainer"]).abs())
