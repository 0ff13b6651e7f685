"""Notebook 00's parity cell: the same MiniLM fine-tune through our loop and through ``transformers.Trainer``.

Trainer gets every knob of our ``TrainConfig``: seed, steps, batch size, learning rate, linear warmup then decay,
AdamW's weight decay (not on biases and LayerNorm weights, in both), gradient clipping, precision. Both start from
the same weights (the head drawn after seeding with ``config.seed``) and are scored by the same function.
``bench/loop_vs_trainer.py`` times the two with these arguments.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any

import numpy as np
import pandas as pd
from transformers import DataCollatorWithPadding, PrinterCallback, Trainer, TrainingArguments

from helpers import intervals, models, precision, runtime
from helpers.classifier import FineTuned
from helpers.evaluation import predict_logits
from helpers.history import History
from helpers.runtime import Profile
from helpers.training import TrainConfig


def trainer_kwargs(config: TrainConfig, total_steps: int) -> dict[str, Any]:
    """The ``TrainingArguments`` fields that repeat ``config`` for ``total_steps`` steps (also for TRL's configs)."""
    return dict(
        max_steps=total_steps,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum_steps,
        learning_rate=config.learning_rate,
        warmup_steps=int(config.warmup_ratio * total_steps),  # our rounding: int(ratio x steps)
        lr_scheduler_type="linear",
        weight_decay=config.weight_decay,  # Trainer's default is 0
        max_grad_norm=config.max_grad_norm,
        seed=config.seed,
        logging_strategy="steps",
        logging_steps=1,  # every step's loss, to draw its curve beside ours
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        dataloader_pin_memory=False,  # as our loop: nothing to pin on a CPU
        bf16=precision.resolve(config.mixed_precision, runtime.pick_device().type).mode == "bf16",  # as our "auto"
    )


def trainer_arguments(
    config: TrainConfig, total_steps: int, output_dir: str, keep_best: bool = False
) -> TrainingArguments:
    """``TrainingArguments`` that repeat ``config`` for ``total_steps`` optimiser steps (no reporting).

    ``keep_best``: evaluate on our schedule and end with the weights of the lowest eval loss, as our
    ``restore_best`` does (Trainer needs to save a checkpoint per evaluation for that; otherwise nothing is saved).
    """
    schedule = "no" if not keep_best else ("epoch" if config.eval_every_steps is None else "steps")
    return TrainingArguments(
        output_dir=output_dir,
        **trainer_kwargs(config, total_steps),
        eval_strategy=schedule,
        save_strategy=schedule,
        eval_steps=config.eval_every_steps,
        save_steps=config.eval_every_steps,
        load_best_model_at_end=keep_best,
        metric_for_best_model="eval_loss",
        save_only_model=True,  # weights only: no optimiser state on disk
        save_total_limit=1 if keep_best else None,
    )


def trainer_fine_tune(
    train_tok, labels: list[str], config: TrainConfig, total_steps: int, eval_tok=None
) -> dict[str, Any]:
    """Fine-tune a fresh MiniLM (seeded as ``fine_tune_classifier`` seeds it) with Trainer.

    Returns the model, its tokenizer, the training loss per step, the eval losses and the training seconds. With
    ``eval_tok`` and ``config.restore_best`` it evaluates on our schedule and keeps the best weights, as ours does.
    """
    runtime.seed_everything(config.seed)  # the same new head as our recipe draws
    model, tokenizer = models.load_classifier(labels)
    keep_best = eval_tok is not None and config.restore_best
    with tempfile.TemporaryDirectory() as out:
        args = trainer_arguments(config, total_steps, out, keep_best=keep_best)
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=train_tok,
            eval_dataset=eval_tok if keep_best else None,
            data_collator=DataCollatorWithPadding(tokenizer),
        )
        trainer.remove_callback(PrinterCallback)  # with tqdm off it prints every log line
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    log = trainer.state.log_history
    losses = [(r["step"], r["loss"]) for r in log if "loss" in r]
    eval_losses = [(r["step"], r["eval_loss"]) for r in log if "eval_loss" in r]
    model = trainer.model.eval()  # the best weights when keep_best (loaded in place)
    return {"model": model, "tokenizer": tokenizer, "losses": losses, "eval_losses": eval_losses, "seconds": seconds}


def loss_curves(history: History, trainer_losses: list[tuple[int, float]]) -> pd.DataFrame:
    """Training loss per step of both runs, one column each (steps as the index)."""
    ours = history.train_frame().set_index("step")["loss"].rename("our loop")
    theirs = pd.Series(dict(trainer_losses), name="Trainer", dtype=float)
    return pd.concat([ours, theirs], axis=1)


def compare(our_model, their_model, tokenizer, datasets: dict[str, Any]) -> pd.DataFrame:
    """Accuracy (with a bootstrap interval) of both models on each tokenised dataset, and predictions that differ."""
    rows = []
    for split, tokenised in datasets.items():
        ours, refs = predict_logits(our_model, tokenised, tokenizer)
        theirs, _ = predict_logits(their_model, tokenised, tokenizer)
        a, b = ours.argmax(-1), theirs.argmax(-1)
        rows.append(
            {
                "split": split,
                "examples": len(refs),
                "our loop": intervals.accuracy_interval(a, refs),
                "Trainer": intervals.accuracy_interval(b, refs),
                "different predictions": int((a != b).sum()),
                "accuracy gap (messages)": int(abs((a == refs).sum() - (b == refs).sum())),
                "max logit gap": float(np.abs(ours - theirs).max()),
            }
        )
    return pd.DataFrame(rows).set_index("split")


def parity_steps(p: Profile) -> int | None:
    """Steps of notebook 00's parity runs: a short pair in smoke (seconds), None elsewhere (Trainer repeats the run)."""
    return p.pick(smoke=12, workshop=None, full=None)


def side_by_side(ours: FineTuned, labels: list[str], config: TrainConfig, test_tok) -> dict[str, Any]:
    """Trainer repeating the run ``ours`` (same data, config, steps): loss curves, eval losses, accuracy table."""
    theirs = trainer_fine_tune(ours.train_data, labels, config, ours.history.total_steps, ours.eval_data)
    splits = {"validation": ours.eval_data, "test": test_tok}
    our_evals = [(e["step"], e["eval_loss"]) for e in ours.history.evals if e["step"] > 0]
    return {
        "curves": loss_curves(ours.history, theirs["losses"]),
        "eval_losses": pd.DataFrame({"our loop": dict(our_evals), "Trainer": dict(theirs["eval_losses"])}),
        "table": compare(ours.model, theirs["model"], ours.tokenizer, splits),
        "seconds": {"our loop": ours.history.train_seconds, "Trainer": theirs["seconds"]},
    }
