"""A training run's state, and checkpoints of it: a run stopped by Ctrl-C, killed, or out of memory goes on.

``RunState`` is what the loop works on: the model, optimiser and schedule as accelerate prepared them, and
where the run stands (step, place in the data, micro-batch size, best eval so far). A checkpoint is one folder:
accelerate's state (weights, optimiser, scheduler, random generators), the rest as strict JSON in
``STATE_FILE`` and the best weights in ``best.safetensors``. It is written to a temporary folder and renamed
into place, so a kill at any moment leaves a whole checkpoint.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader

from helpers.history import History, json_safe

STATE_FILE = "trainer_state.json"
BEST_FILE = "best.safetensors"


@dataclass(kw_only=True)
class RunState:
    """One training run: what it trains with and where it stands. ``save`` writes it, ``load`` restores it."""

    acc: Accelerator
    model: torch.nn.Module  # the model, optimiser and scheduler as accelerate prepared them
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    train_dataset: Any
    collate_fn: Callable
    eval_loader: DataLoader | None
    evaluate_fn: Callable[[torch.nn.Module], dict[str, float]] | None
    compute_metrics: Callable[[np.ndarray, np.ndarray], dict[str, float]] | None = None  # (logits, labels) -> metrics
    total_steps: int
    history: History
    batch_size: int  # examples per micro-batch: halved after an out-of-memory error
    grad_accum_steps: int  # micro-batches per optimiser step: doubled after an out-of-memory error
    step: int = 0  # optimiser steps taken
    epoch: int = 0
    batches_into_epoch: int = 0  # micro-batches of this epoch already trained on
    best_loss: float = math.inf
    bad_evals: int = 0  # evaluations since the last new best eval loss
    best_state: dict[str, torch.Tensor] | None = None  # the trainable weights at the best eval loss

    @property
    def can_evaluate(self) -> bool:
        """Whether there is anything to evaluate: an eval set, an ``evaluate_fn``, or both."""
        return self.eval_loader is not None or self.evaluate_fn is not None

    def micro_batches(self, seed: int) -> Iterator[dict | None]:
        """The training micro-batches from where the run stands, epoch after epoch; None marks each epoch's end."""
        while True:
            generator = torch.Generator().manual_seed(seed + self.epoch)  # the same order on resume
            loader = self.acc.prepare(
                DataLoader(
                    self.train_dataset,
                    batch_size=self.batch_size,
                    shuffle=True,
                    generator=generator,
                    collate_fn=self.collate_fn,
                )
            )
            if self.batches_into_epoch:
                loader = self.acc.skip_first_batches(loader, self.batches_into_epoch)
            self.model.train()
            yield from loader
            yield None
            self.epoch, self.batches_into_epoch = self.epoch + 1, 0

    def halve_micro_batch(self) -> None:
        """After an out-of-memory error: halve the micro-batch, double accumulation, go back to the step's start."""
        if self.batch_size == 1:
            raise torch.OutOfMemoryError(
                "Out of memory with a micro-batch of 1: use a shorter max_length, LoRA, "
                "mixed precision or a smaller model."
            )
        # Drop the gradients of the half-accumulated step (it is redone). Not through accelerate's wrapper: that
        # zeroes only on the last micro-batch of a step, and the error may come earlier.
        self.optimizer.optimizer.zero_grad()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        old = (self.batch_size, self.grad_accum_steps)
        done = (self.batches_into_epoch - self.batches_into_epoch % self.grad_accum_steps) * self.batch_size
        self.batch_size, self.grad_accum_steps = self.batch_size // 2, self.grad_accum_steps * 2
        self.batches_into_epoch = done // self.batch_size  # done: the examples of the steps already taken
        self.acc.gradient_accumulation_steps, self.acc.step = self.grad_accum_steps, 0
        self.history.config.setdefault("extra", {})["oom_micro_batch"] = self.batch_size
        self.acc.print(
            f"Out of memory at step {self.step + 1}: micro-batch {old[0]} -> {self.batch_size}, "
            f"gradient accumulation {old[1]} -> {self.grad_accum_steps}; training continues.",
            flush=True,
        )

    @torch.no_grad()
    def evaluate(self, keep_best: bool) -> dict[str, float] | None:
        """Eval-set mean loss plus ``evaluate_fn``'s metrics, logged; counts towards early stopping and the best."""
        if not self.can_evaluate:
            return None
        self.model.eval()
        record: dict[str, float] = {}
        if self.eval_loader is not None:
            total, count = torch.zeros((), device=self.acc.device), torch.zeros((), device=self.acc.device)
            seen: list[tuple[torch.Tensor, torch.Tensor]] = []  # (logits, labels) when metrics want them
            for batch in self.eval_loader:
                n = len(batch["labels"])
                out = self.model(**batch)
                total += out.loss.float() * n
                count += n
                if self.compute_metrics is not None:  # the same pass gives the metrics: no second run over the data
                    seen.append(self.acc.gather_for_metrics((out.logits.float(), batch["labels"])))
            record["eval_loss"] = (self.acc.reduce(total, "sum") / self.acc.reduce(count, "sum")).item()
            if seen:
                logits, labels = (torch.cat(parts).cpu().numpy() for parts in zip(*seen, strict=True))
                record.update(self.compute_metrics(logits, labels))
        if self.evaluate_fn is not None:
            record.update(self.evaluate_fn(self.acc.unwrap_model(self.model)))
        self.model.train()
        self.history.log_eval(self.step, record)
        loss = record.get("eval_loss")
        if loss is not None and loss < self.best_loss:
            self.best_loss, self.bad_evals, self.history.best_step = loss, 0, self.step
            if keep_best:  # only what training changes: a LoRA run keeps a few MB, not the whole model
                named = self.acc.unwrap_model(self.model).named_parameters()
                self.best_state = {n: p.detach().to("cpu", copy=True) for n, p in named if p.requires_grad}
        elif loss is not None:
            self.bad_evals += 1
        return record


@contextmanager
def ctrl_c_at_step_end(enabled: bool) -> Iterator[dict[str, bool]]:
    """While open, a first Ctrl-C only sets ``["asked"]``, for the loop to stop (and checkpoint) at a step end."""
    # So a checkpoint never holds half a step; a second Ctrl-C stops at once. Several processes would not see
    # the flag at the same step: not there.
    flag = {"asked": False}
    if not (
        enabled
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    ):
        yield flag
        return

    def ask(signum, frame) -> None:
        flag["asked"] = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGINT, ask)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def check_folder(folder: str | Path | None) -> None:
    """Refuse a checkpoint folder that holds files other than a checkpoint: saving replaces the whole folder."""
    path = Path(folder) if folder else None
    if path is not None and (
        path.is_file() or path.is_dir() and any(path.iterdir()) and not (path / STATE_FILE).exists()
    ):
        raise ValueError(
            f"checkpoint_dir {path} holds files that are not a training checkpoint; pass a new "
            "folder (saving a checkpoint replaces the whole folder)."
        )


def save(run: RunState, folder: str | Path | None) -> None:
    """Write ``run`` to ``folder`` atomically (a temporary folder, then renames); no folder: nothing is written."""
    if not folder:
        return
    acc, final = run.acc, Path(folder)
    tmp = final.with_name(final.name + ".tmp")
    if acc.is_main_process and tmp.exists():
        shutil.rmtree(tmp)  # left half-written by a killed run
    acc.wait_for_everyone()
    acc.save_state(str(tmp))
    if acc.is_main_process:
        state = {
            "step": run.step,
            "epoch": run.epoch,
            "batches_into_epoch": run.batches_into_epoch,
            "best_loss": run.best_loss,
            "bad_evals": run.bad_evals,
            "history": run.history.to_dict(),
            "batch_size": run.batch_size,
            "grad_accum_steps": run.grad_accum_steps,
        }
        (tmp / STATE_FILE).write_text(json.dumps(json_safe(state), allow_nan=False))  # best_loss inf: null
        if run.best_state is not None:
            save_file({k: v.contiguous() for k, v in run.best_state.items()}, str(tmp / BEST_FILE))
        old = final.with_name(final.name + ".old")
        shutil.rmtree(old, ignore_errors=True)  # left by a run killed after its last rename
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    acc.wait_for_everyone()


def load(run: RunState, folder: str | Path | None) -> None:
    """Restore ``run`` from the checkpoint in ``folder``; if there is none, change nothing."""
    if not folder:
        return
    path = Path(folder)
    old = path.with_name(path.name + ".old")
    if not (path / STATE_FILE).exists() and (old / STATE_FILE).exists():
        path = old  # killed between the two renames of save(): the previous checkpoint is whole
    if not (path / STATE_FILE).exists():
        return
    try:
        run.acc.load_state(str(path))
        state = json.loads((path / STATE_FILE).read_text())
        run.history = History.from_dict(state["history"])
    except Exception as err:  # a truncated safetensors file, a half-written state, a missing optimiser file
        raise ValueError(
            f"The checkpoint in {path} is damaged or incomplete ({type(err).__name__}); delete "
            "that folder to train from the start."
        ) from err
    run.step, run.epoch, run.batches_into_epoch = state["step"], state["epoch"], state["batches_into_epoch"]
    run.best_loss = math.inf if state["best_loss"] is None else state["best_loss"]  # JSON has no inf
    run.bad_evals = state["bad_evals"]
    run.batch_size = state.get("batch_size", run.batch_size)  # checkpoints from before the back-off lack these
    run.grad_accum_steps = state.get("grad_accum_steps", run.grad_accum_steps)
    run.acc.gradient_accumulation_steps = run.grad_accum_steps
    if (path / BEST_FILE).exists():
        run.best_state = load_file(str(path / BEST_FILE))
