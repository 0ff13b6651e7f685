"""Measuring parameter-efficient fine-tuning: head-only vs LoRA vs full, peak memory, adapters as files.

Notebook 04 uses these to run one comparison table (trainable share, validation accuracy, time, memory, size on
disk) and to save every finished model; ``peft_merge`` reloads, merges and scores them on the test split once.
"""

from __future__ import annotations

import importlib.util
import re
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from peft import prepare_model_for_kbit_training
from safetensors.torch import save_file
from transformers import (
    AutoModelForCausalLM,
    BitsAndBytesConfig,
    DataCollatorWithPadding,
)

from helpers import data, memory, models, paths
from helpers.chat import fine_tune_chat
from helpers.classifier import fine_tune_classifier, prepare_classifier
from helpers.evaluation import predict_logits
from helpers.runtime import Profile, seed_everything
from helpers.seeds import for_profile
from helpers.training import TrainConfig

# Each method's own learning rate, tuned on banking77 (few steps, small data): a fresh
# head and small LoRA matrices need large steps; full fine-tuning moves 22M pre-trained
# weights and is unstable above ~1e-4.
LEARNING_RATES = {"head-only": 3e-3, "lora": 2e-3, "full": 1e-4}


def sweep_ranks(p: Profile) -> list[int]:
    """The LoRA ranks notebook 04 compares in profile ``p`` (rank 8 is always among them: the checks use it)."""
    return p.pick(smoke=[1, 8], workshop=[1, 8, 64], full=[1, 4, 8, 16, 64])


def extra_seeds(p: Profile) -> list[int]:
    """Seeds beyond the sweep's 0 for LoRA r=8 and full fine-tuning: one more in smoke (against the usual none: its
    small runs leave room for one) and in workshop (each extra seed costs the workshop profile a good share of its
    ten minutes), two more in full (three in all)."""
    return for_profile(p, smoke=2)[1:]


def train_validation(p: Profile, seed: int = 0):
    """(training, validation) banking77 splits for profile ``p``; the validation split is a stratified fifth.

    With ``p.train_per_class`` examples per intent, the validation split is the next quarter as many again, drawn
    by the same seeded shuffle: the training split is exactly ``load_banking77(per_class=...)``, so adding
    validation leaves every training run as it was. With all the data, ``helpers.data.stratified_split``.
    """
    n = p.train_per_class
    if n is None:
        return data.stratified_split(data.load_banking77("train", intents=p.intents, seed=seed), 0.2, seed)
    pool = data.load_banking77("train", per_class=n + max(1, n // 4), intents=p.intents, seed=seed)
    labels = pd.Series(list(pool["label"]))
    rank = labels.groupby(labels).cumcount()  # position within its intent, as drawn
    return pool.select(np.flatnonzero(rank < n)), pool.select(np.flatnonzero(rank >= n))


def save_trained(model: torch.nn.Module, folder: str | Path) -> float:
    """Save what training changed (a peft adapter, or the trainable weights as safetensors); returns MiB on disk."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "peft_config"):
        model.save_pretrained(folder)
    else:
        state = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}
        save_file(state, str(folder / "trained.safetensors"))
    return paths.folder_size_mib(folder)


def variant_name(method: str, rank: int | None = None) -> str:
    """A short label for a table row: 'head-only', 'LoRA r=8', 'full'."""
    return f"LoRA r={rank}" if method == "lora" else method


def run_variant(
    method: str,
    train_ds,
    eval_ds,
    labels: list[str],
    config: TrainConfig,
    save_dir: str | Path,
    rank: int | None = None,
    learning_rates: dict[str, float] | None = None,
) -> dict:
    """Train one variant on ``train_ds``, monitored on ``eval_ds`` (validation), save it, measure it: a table row.

    The row (JSON-ready) holds trainable params and share, validation accuracy and predictions (to compare a
    reloaded adapter against), training seconds, the memory of one training step (counted by kind and measured,
    ``helpers.memory``), and the size and folder of what must be saved. No test split enters: the saved models
    are scored on it once, after all training (``peft_merge.score_saved``).
    """
    config = replace(config, learning_rate={**LEARNING_RATES, **(learning_rates or {})}[method])
    seed_everything(config.seed)  # every variant starts from the same random head
    model, tokenizer = models.load_classifier(labels)
    model = prepare_classifier(model, method, rank=rank or 8)
    first_batch = DataCollatorWithPadding(tokenizer)(
        [train_ds[i] for i in range(min(config.batch_size, len(train_ds)))]
    )
    step = memory.step_memory(model, first_batch)  # on a copy; the model and the RNG are untouched
    run = fine_tune_classifier(
        train_ds, config, method=method, eval_data=eval_ds, model=model, tokenizer=tokenizer, labels=labels
    )
    logits, refs = predict_logits(model, eval_ds, tokenizer)  # the finished weights on validation
    folder = Path(save_dir) / variant_name(method, rank).replace(" ", "_").replace("=", "")
    return {
        "variant": variant_name(method, rank),
        "method": method,
        "rank": rank,
        "seed": config.seed,
        "learning_rate": config.learning_rate,
        "trainable": run.trainable,
        "total": run.total,
        "trainable_pct": 100 * run.trainable / run.total,
        "val_accuracy": float((logits.argmax(-1) == refs).mean()),
        "train_seconds": run.history.train_seconds,
        "steps": run.history.steps,
        **step.to_dict(),
        "saved_mib": save_trained(model, folder),
        "folder": str(folder),
        "val_predictions": logits.argmax(-1).tolist(),
        "val_first_logits": logits[:16].tolist(),
    }


def compare_methods(
    ranks: list[int],
    train_ds,
    eval_ds,
    labels: list[str],
    config: TrainConfig,
    save_dir: str | Path,
    learning_rates: dict[str, float] | None = None,
) -> list[dict]:
    """Head-only, LoRA at each rank, then full fine-tuning: one ``run_variant`` row each (``eval_ds``: validation)."""
    plan = [("head-only", None)] + [("lora", r) for r in ranks] + [("full", None)]
    rows = []
    for method, rank in plan:
        print(f"-- {variant_name(method, rank)}")
        rows.append(run_variant(method, train_ds, eval_ds, labels, config, save_dir, rank, learning_rates))
    return rows


def seed_runs(
    seeds: list[int], train_ds, eval_ds, labels: list[str], config: TrainConfig, save_dir: str | Path
) -> list[dict]:
    """LoRA r=8 and full fine-tuning again with each of ``seeds`` (a new head, new LoRA matrices, another batch
    order; the same data): ``run_variant`` rows, saved under ``save_dir/seed<N>/``."""
    rows = []
    for seed in seeds:
        for method, rank in (("lora", 8), ("full", None)):
            print(f"-- {variant_name(method, rank)}, seed {seed}")
            folder = Path(save_dir) / f"seed{seed}"
            rows.append(run_variant(method, train_ds, eval_ds, labels, replace(config, seed=seed), folder, rank))
    return rows


# --- a generative task for SmolLM2: answer in a fixed format ----------------------
INTENT_SYSTEM = "You sort online-banking messages. Reply with one line: intent: <intent_name>."
INTENT_REPLY = re.compile(r"^intent: ([A-Za-z_]+)$")


def intent_conversations(dataset, with_reply: bool = True) -> list[list[dict[str, str]]]:
    """Chat conversations for a labelled banking77 Dataset: the message, then 'intent: <name>' as the reply."""
    names = dataset.features["label"].names
    chats = []
    for text, label in zip(dataset["text"], dataset["label"]):
        chat = [{"role": "system", "content": INTENT_SYSTEM}, {"role": "user", "content": text}]
        chats.append(chat + [{"role": "assistant", "content": f"intent: {names[label]}"}] if with_reply else chat)
    return chats


def score_intent_replies(replies: list[str], dataset) -> dict[str, float]:
    """Share of replies in the exact 'intent: <name>' format, and share naming the right intent."""
    names = dataset.features["label"].names
    matches = [INTENT_REPLY.match(r.strip()) for r in replies]
    right = [bool(m) and m.group(1) == names[y] for m, y in zip(matches, dataset["label"])]
    return {"format": float(np.mean([m is not None for m in matches])), "accuracy": float(np.mean(right))}


# --- QLoRA: only where a CUDA GPU and bitsandbytes exist ------------------------------
def qlora_status() -> tuple[bool, str]:
    """(can run, why): QLoRA needs a CUDA GPU and the bitsandbytes package."""
    if not torch.cuda.is_available():
        return False, "no CUDA GPU here: QLoRA's 4-bit kernels (bitsandbytes) run on NVIDIA GPUs."
    if importlib.util.find_spec("bitsandbytes") is None:
        return False, "bitsandbytes is not installed (pip install bitsandbytes) so 4-bit loading is unavailable."
    return True, "CUDA and bitsandbytes found."


def qlora_run(train_rows, tokenizer, config: TrainConfig, rank: int = 8) -> dict:
    """Load SmolLM2 in 4-bit NF4, add LoRA, train; returns trainable params, seconds and CUDA peak MiB."""
    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
    source = models.chat_cache_dir()  # built by load_chat_model() earlier in the notebook
    model = AutoModelForCausalLM.from_pretrained(source, quantization_config=quant, device_map={"": 0})
    model = prepare_model_for_kbit_training(model)
    start = time.perf_counter()
    torch.cuda.reset_peak_memory_stats()
    run = fine_tune_chat(train_rows, config, method="lora", model=model, tokenizer=tokenizer, rank=rank)
    return {
        "trainable": run.trainable,
        "final_loss": run.history.final_loss,
        "seconds": time.perf_counter() - start,
        "peak_mib": torch.cuda.max_memory_allocated() / paths.MIB,
        "weights_mib": run.model.get_memory_footprint() / paths.MIB,
    }
