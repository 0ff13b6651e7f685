"""One training loop for every notebook: full, head-only and LoRA fine-tuning alike.

Built on accelerate, so the same code runs on a CPU, one GPU, or several processes under ``accelerate launch`` /
``torchrun``. It trains whatever has ``requires_grad=True``: freezing decides what is learned, not the loop."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm
from transformers import DataCollatorWithPadding, get_linear_schedule_with_warmup

from helpers import checkpoint, precision
from helpers.checkpoint import STATE_FILE as STATE_FILE  # re-exported: callers find it here
from helpers.checkpoint import RunState
from helpers.checkpoint import ctrl_c_at_step_end as _ctrl_c_at_step_end  # tests replace it to press Ctrl-C
from helpers.data import eval_loader, refuse_test_split
from helpers.history import History


class TrainingDiverged(ValueError):
    """The training loss became NaN or infinite: training stopped at once, since nothing after it is usable."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped training at the end of optimiser step ``step`` (after saving a checkpoint if configured)."""

    def __init__(self, step: int, total_steps: int, saved: bool):
        super().__init__(f"Stopped at step {step} of {total_steps}" + (" (checkpoint saved)" if saved else ""))
        self.step, self.total_steps, self.saved = step, total_steps, saved


@dataclass
class TrainConfig:
    """How to train. Units are in the names: steps are optimiser steps, epochs are passes over the data."""

    learning_rate: float = 5e-5
    epochs: float = 3.0
    max_steps: int | None = None  # stop after this many optimiser steps (wins over epochs)
    batch_size: int = 32  # examples per micro-batch on each process
    grad_accum_steps: int = 1  # micro-batches per optimiser step
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1  # share of steps with a linearly rising learning rate
    max_grad_norm: float = 1.0
    eval_every_steps: int | None = None  # None: evaluate at the end of every epoch
    eval_at_start: bool = False  # also evaluate before the first step (step 0)
    early_stopping_patience: int | None = None  # evaluations without a new best eval loss before stopping
    restore_best: bool = True  # finish with the weights that had the lowest eval loss
    checkpoint_dir: str | None = None  # where to save a resumable checkpoint (None: no checkpoints)
    checkpoint_every_steps: int | None = None  # None: at every evaluation
    mixed_precision: str = "auto"  # "no", "bf16", "fp16", or "auto": bf16 where native and faster (precision.py)
    seed: int = 0
    progress: bool = True  # show a tqdm bar (main process only)
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes stored with the History

    def __post_init__(self) -> None:
        checks = {
            "learning_rate must be > 0": self.learning_rate > 0,
            "epochs must be > 0": self.epochs > 0,
            "batch_size must be >= 1": self.batch_size >= 1,
            "grad_accum_steps must be >= 1": self.grad_accum_steps >= 1,
            "max_steps must be >= 1 or None": self.max_steps is None or self.max_steps >= 1,
            "weight_decay must be >= 0": self.weight_decay >= 0,
            "warmup_ratio must be in [0, 1)": 0 <= self.warmup_ratio < 1,
            "eval_every_steps must be >= 1 or None": self.eval_every_steps is None or self.eval_every_steps >= 1,
            "mixed_precision must be no, bf16, fp16 or auto": self.mixed_precision in ("no", "bf16", "fp16", "auto"),
        }
        bad = [msg for msg, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"TrainConfig: {'; '.join(bad)}.")


def train(
    model: torch.nn.Module,
    train_dataset,
    config: TrainConfig,
    eval_dataset=None,
    *,
    tokenizer=None,
    collate_fn: Callable | None = None,
    evaluate_fn: Callable[[torch.nn.Module], dict[str, float]] | None = None,
    compute_metrics: Callable[[np.ndarray, np.ndarray], dict[str, float]] | None = None,
    resume: bool = False,
) -> History:
    """Train ``model`` in place on a tokenised dataset (rows carry ``labels``) and return its History.

    ``collate_fn`` pads a list of rows into a batch (default: dynamic padding with ``tokenizer``).
    ``compute_metrics(logits, labels)`` adds metrics such as accuracy from the eval-loss pass itself, as Trainer's
    does; ``evaluate_fn(model)`` adds metrics that need a pass of their own (generation, another dataset).
    ``resume=True`` continues from ``config.checkpoint_dir``.
    """
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("No parameter of the model requires grad: unfreeze something (or add LoRA) before training.")
    if len(train_dataset) == 0:
        raise ValueError("The training set is empty: give train() at least one example.")
    if collate_fn is None:
        if tokenizer is None:
            raise ValueError("Pass tokenizer= (for dynamic padding) or collate_fn= to train().")
        collate_fn = DataCollatorWithPadding(tokenizer)
    checkpoint.check_folder(config.checkpoint_dir)
    refuse_test_split(eval_dataset)
    sample = collate_fn([train_dataset[i] for i in range(min(config.batch_size, len(train_dataset)))])
    accelerator, chosen = precision.make_accelerator(config.mixed_precision, config.grad_accum_steps, model, sample)
    set_seed(config.seed)
    run = _start(model, train_dataset, eval_dataset, config, accelerator, collate_fn, evaluate_fn)
    run.history.precision, run.compute_metrics = {"mode": chosen.mode, "reason": chosen.reason}, compute_metrics
    try:
        if resume:
            checkpoint.load(run, config.checkpoint_dir)
        return _train_loop(run, config)
    finally:  # the model leaves as it came: accelerate's autocast wrapper comes off its forward (fp32 inference)
        accelerator.unwrap_model(run.model, keep_fp32_wrapper=False)


def _start(
    model, train_dataset, eval_dataset, config: TrainConfig, acc: Accelerator, collate_fn, evaluate_fn
) -> RunState:
    """A run at step 0: AdamW and a linear warmup-then-decay schedule, placed by accelerate with the model."""
    world = acc.num_processes
    micro_batches = math.ceil(len(train_dataset) / (config.batch_size * world))
    total_steps = config.max_steps or math.ceil(config.epochs * max(1, micro_batches // config.grad_accum_steps))
    # One fused kernel for every parameter (as Trainer's default): about 6x faster optimiser steps on a CPU.
    fused = acc.device.type in ("cpu", "cuda")
    optimizer = torch.optim.AdamW(_param_groups(model, config.weight_decay), lr=config.learning_rate, fused=fused)
    # accelerate steps a prepared scheduler once per process per optimiser step.
    warmup_steps = int(config.warmup_ratio * total_steps)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup_steps * world, total_steps * world)
    model, optimizer, scheduler = acc.prepare(model, optimizer, scheduler)
    evals = None if eval_dataset is None else acc.prepare(eval_loader(eval_dataset, config.batch_size, collate_fn))
    return RunState(
        acc=acc,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        train_dataset=train_dataset,
        collate_fn=collate_fn,
        eval_loader=evals,
        evaluate_fn=evaluate_fn,
        total_steps=total_steps,
        history=History(config=asdict(config), total_steps=total_steps),
        batch_size=config.batch_size,
        grad_accum_steps=config.grad_accum_steps,
    )


def _train_loop(r: RunState, cfg: TrainConfig) -> History:
    """The whole run, top to bottom: forward, backward, optimiser step, log, evaluate, checkpoint; again."""
    acc = r.acc
    start = time.perf_counter() - r.history.train_seconds  # a resumed run adds to the time it already took
    if _evaluate_now(r, cfg, "start"):
        r.evaluate(keep_best=cfg.restore_best)
    stop = r.step >= r.total_steps
    # The bar closes even when training stops with an error, so a message after it starts on a fresh line.
    show = cfg.progress and acc.is_main_process
    with (
        tqdm(total=r.total_steps, initial=r.step, desc="Training", unit="step", disable=not show) as bar,
        _ctrl_c_at_step_end(acc.num_processes == 1) as ctrl_c,
    ):
        batches = r.micro_batches(cfg.seed)  # from where the run stands, epoch after epoch; None ends an epoch
        running = torch.zeros((), device=acc.device)  # loss of the optimiser step under way
        while not stop:
            batch = next(batches)
            if batch is not None:
                try:
                    with acc.accumulate(r.model):  # the optimiser steps on every grad_accum-th micro-batch only
                        loss = r.model(**batch).loss
                        acc.backward(loss)
                        if acc.sync_gradients and cfg.max_grad_norm:
                            acc.clip_grad_norm_(r.model.parameters(), cfg.max_grad_norm)
                        r.optimizer.step()
                        r.scheduler.step()
                        r.optimizer.zero_grad()
                except torch.OutOfMemoryError:
                    loss = None  # handled outside the except block, so the failed step's tensors can be freed
                if loss is None:  # redo the unfinished optimiser step from its first example, in smaller pieces
                    r.halve_micro_batch()
                    batches, running = r.micro_batches(cfg.seed), running.zero_()
                    continue
                running += loss.detach() / r.grad_accum_steps
                r.batches_into_epoch += 1
                if not acc.sync_gradients:
                    continue
                r.step += 1
                step_loss = acc.reduce(running, "mean").item()  # .item() syncs with the device once per step
                if not math.isfinite(step_loss):
                    raise TrainingDiverged(
                        f"Training diverged at step {r.step}: the loss became {step_loss}, most likely because the "
                        f"learning rate ({cfg.learning_rate:g}) is too high; lower it about 10 times and train again."
                    )
                running.zero_()
                examples = len(batch["labels"]) * r.grad_accum_steps * acc.num_processes
                r.history.log_train(r.step, r.epoch, step_loss, r.scheduler.get_last_lr()[0], examples)
                bar.update(1), bar.set_postfix(loss=f"{step_loss:.3f}")
                _stop_if_asked(r, cfg, ctrl_c)
            if _evaluate_now(r, cfg, "step" if batch is not None else "epoch end"):
                record = r.evaluate(keep_best=cfg.restore_best)
                if record and "eval_loss" in record and r.history.train:
                    bar.set_postfix(loss=f"{r.history.train[-1]['loss']:.3f}", eval_loss=f"{record['eval_loss']:.3f}")
                checkpoint.save(r, cfg.checkpoint_dir)
                stop = cfg.early_stopping_patience is not None and r.bad_evals >= cfg.early_stopping_patience
                r.history.stopped_early |= stop
            elif batch is not None and cfg.checkpoint_every_steps and r.step % cfg.checkpoint_every_steps == 0:
                checkpoint.save(r, cfg.checkpoint_dir)
            stop = stop or r.step >= r.total_steps
    _stop_if_asked(r, cfg, ctrl_c)
    r.history.train_seconds = time.perf_counter() - start
    if cfg.restore_best and r.best_state is not None and r.history.best_step != r.step:
        acc.unwrap_model(r.model).load_state_dict(r.best_state, strict=False)
        r.history.restored_step = r.history.best_step
    return r.history


def _evaluate_now(r: RunState, cfg: TrainConfig, moment: str) -> bool:
    """Evaluate at this ``moment`` ("start", "step" end or "epoch end")? The one place that decides.

    At the start if eval_at_start; every eval_every_steps (None: at each epoch end); at the last step if there is
    anything to evaluate; never twice at one step. A scheduled point with nothing to evaluate still checkpoints.
    """
    if r.history.evals and r.history.evals[-1]["step"] == r.step:
        return False
    if moment == "start":
        return cfg.eval_at_start and r.step == 0
    if moment == "epoch end":
        return cfg.eval_every_steps is None
    every = bool(cfg.eval_every_steps) and r.step % cfg.eval_every_steps == 0
    return every or (r.step >= r.total_steps and r.can_evaluate)


def _stop_if_asked(r: RunState, cfg: TrainConfig, ctrl_c: dict[str, bool]) -> None:
    """After a Ctrl-C: checkpoint at this step boundary (a consistent state) and stop."""
    if ctrl_c["asked"]:
        checkpoint.save(r, cfg.checkpoint_dir)
        raise TrainingInterrupted(r.step, r.total_steps, saved=bool(cfg.checkpoint_dir))


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """AdamW's groups: biases and LayerNorm weights are not decayed (standard BERT/GPT practice)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
