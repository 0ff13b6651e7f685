"""Overfitting on a tiny slice: one run per setting, the remedies table, and the explorer's grid of runs."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import pandas as pd
from datasets import Dataset
from tqdm.auto import tqdm

from helpers import data, evaluation, models
from helpers.adapters import set_dropout
from helpers.classifier import fine_tune_classifier
from helpers.history import History
from helpers.runtime import Profile, seed_everything
from helpers.training import TrainConfig


@dataclass(frozen=True)
class SliceSettings:
    """One MiniLM run on a few examples per intent. Defaults overfit on purpose: all weights train, lr is high.

    Measured (smoke profile, seeds 0, 1 and 2): validation loss bottoms out at step 40 of 200 and ends 0.25 to 0.5
    higher. With 3 examples per intent and 20 epochs the turn depended on the seed; LoRA r=16 at 2e-3 on the same
    slice barely overfits, which is why the baseline trains all weights.
    """

    per_class: int = 2  # training examples per intent
    learning_rate: float = 1e-3
    epochs: int = 40
    rank: int | None = None  # LoRA rank (the classification head trains fully); None: full fine-tuning
    weight_decay: float = 0.0
    dropout: float = 0.1  # hidden and attention dropout of the encoder (MiniLM's default is 0.1)
    early_stopping_patience: int | None = None  # evaluations without a new best validation loss
    restore_best: bool = False  # end with the lowest-validation-loss weights
    batch_size: int = 4
    evals_per_epoch: float = 0.5  # how often to measure validation loss
    seed: int = 0


@dataclass
class SliceData:
    """The tiny slice's pools: a large training pool (sliced per run) and a validation set, both tokenised.

    No test set: this part of the lesson monitors and chooses, and both belong to validation.
    """

    labels: list[str]
    train_pool: Dataset
    validation: Dataset
    tokenizer: Any
    max_length: int

    def train_slice(self, per_class: int) -> Dataset:
        """The first ``per_class`` examples of each intent from the (shuffled) pool."""
        labels = self.train_pool["labels"]
        seen: dict[int, int] = {}
        keep = []
        for i, label in enumerate(labels):
            seen[label] = seen.get(label, 0) + 1
            if seen[label] <= per_class:
                keep.append(i)
        return self.train_pool.select(keep)


def load_slice_data(p: Profile, pool_per_class: int, val_per_class: int, seed: int = 0) -> SliceData:
    """Training pool and validation set drawn (disjoint, stratified) from banking77's training split."""
    intents = list(p.intents or data.banking77_intents())
    full = data.load_banking77("train", per_class=pool_per_class + val_per_class, intents=intents, seed=seed)
    pool, validation = data.stratified_split(full, test_size=val_per_class * len(intents), seed=seed)
    _, tokenizer = models.load_classifier(intents)
    tok = lambda d: data.tokenize(d, tokenizer, p.max_length)  # noqa: E731
    return SliceData(intents, tok(pool), tok(validation), tokenizer, p.max_length)


def run_slice(settings: SliceSettings, sd: SliceData, progress: bool = False) -> dict[str, Any]:
    """Train one run, monitored on validation (loss and accuracy at every evaluation); return its History (as a
    dict) and the validation accuracy of the weights it ends with."""
    train_set = sd.train_slice(settings.per_class)
    seed_everything(settings.seed)  # the new classification head is drawn at load time: same seed, same head
    net, _ = models.load_classifier(sd.labels)
    set_dropout(net, settings.dropout)  # before LoRA wraps the model, as the dropout layers are the encoder's
    steps_per_epoch = math.ceil(len(train_set) / settings.batch_size)
    config = TrainConfig(
        learning_rate=settings.learning_rate,
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        weight_decay=settings.weight_decay,
        eval_every_steps=max(1, round(steps_per_epoch / settings.evals_per_epoch)),
        eval_at_start=True,
        early_stopping_patience=settings.early_stopping_patience,
        restore_best=settings.restore_best,
        seed=settings.seed,
        progress=progress,
    )
    run = fine_tune_classifier(
        train_set,
        config,
        method="full" if settings.rank is None else "lora",
        eval_data=sd.validation,
        model=net,
        tokenizer=sd.tokenizer,
        rank=settings.rank or 8,
    )
    return {
        "settings": asdict(settings),
        "history": run.history.to_dict(),
        "val_accuracy": evaluation.evaluate_classifier(run.model, sd.validation, sd.tokenizer)["accuracy"],
        "train_size": len(train_set),
    }


def summarize(run: dict[str, Any]) -> dict[str, Any]:
    """One table row: validation-loss minimum and end, the overfitting gap, steps, validation accuracy."""
    h = History.from_dict(run["history"])
    best = h.best()
    end = h.evals[-1]
    ended = next((r for r in h.evals if r["step"] == h.restored_step), end) if h.restored_step is not None else end
    return {
        "train examples": run["train_size"],
        "steps": h.steps,
        "best step": best["step"],
        "min val loss": best["eval_loss"],
        "last val loss": end["eval_loss"],
        "overfit gap": end["eval_loss"] - best["eval_loss"],
        "val loss of final weights": ended["eval_loss"],
        "final train loss": h.final_loss,
        "val accuracy": run["val_accuracy"],
    }


def turning_point(history: History) -> int:
    """The step where validation loss is lowest: after it, more training makes validation worse."""
    return int(history.best()["step"])


def remedies(base: SliceSettings, more_data_per_class: int, quick: bool = False) -> dict[str, SliceSettings]:
    """The baseline and one change per remedy, everything else equal (more data keeps the number of steps).

    ``quick`` (the smoke profile) keeps the baseline, early stopping, a lower LR and more data.
    """
    same_steps = max(1, round(base.epochs * base.per_class / more_data_per_class))
    options = {
        "baseline (overfits)": base,
        "early stopping": replace(base, early_stopping_patience=3, restore_best=True),
        "weight decay 1.0": replace(base, weight_decay=1.0),
        "dropout 0.3": replace(base, dropout=0.3),
        "lower LR (÷10)": replace(base, learning_rate=base.learning_rate / 10),
        "LoRA r=4 instead of all weights": replace(base, rank=4),
        f"more data ({more_data_per_class}/intent, same steps)": replace(
            base, per_class=more_data_per_class, epochs=same_steps
        ),
    }
    if quick:
        options = {k: v for k, v in options.items() if not k.startswith(("weight decay", "dropout", "LoRA"))}
    return options


def remedies_table(runs: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per remedy (see ``summarize``), indexed by its name."""
    return pd.DataFrame({name: summarize(run) for name, run in runs.items()}).T.rename_axis("remedy")


@dataclass(frozen=True)
class Grid:
    """The explorer's axes: every combination is one run."""

    per_class: tuple[int, ...]
    learning_rate: tuple[float, ...]
    epochs: tuple[int, ...]
    rank: tuple[int | None, ...]  # None: full fine-tuning

    def points(self) -> list[dict[str, Any]]:
        """Every combination as a dict of axis values."""
        axes = asdict(self)
        return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]


def grid_for(p: Profile) -> Grid:
    """The explorer's grid for profile ``p`` (smoke: 2 runs, workshop: 4; half of them shared with the remedies).

    Workshop varies size and learning rate only: with the rank axis too, the grid took 6 of 15 minutes on 2 cores.
    """
    return p.pick(
        smoke=Grid((2,), (1e-4, 1e-3), (40,), (None,)),
        workshop=Grid((2, 4), (1e-4, 1e-3), (40,), (None,)),
        full=Grid((2, 10, 30), (1e-4, 3e-4, 1e-3), (20, 40), (None, 4, 16)),
    )


def key(point: dict[str, Any]) -> str:
    """A stable text key for one grid point (JSON keys must be strings)."""
    return "|".join(f"{k}={point[k]}" for k in ("per_class", "learning_rate", "epochs", "rank"))


def settings_key(settings: SliceSettings | dict[str, Any]) -> str:
    """A stable text key for a run's settings (to reuse a run instead of training it twice)."""
    values = asdict(settings) if isinstance(settings, SliceSettings) else settings
    return json.dumps(values, sort_keys=True)


def run_grid(
    grid: Grid, base: SliceSettings, sd: SliceData, done: Sequence[dict[str, Any]] = ()
) -> dict[str, dict[str, Any]]:
    """Train every grid point (shows a bar), reusing runs in ``done`` with identical settings.

    Returns {key: {'point', 'history', 'val_accuracy'}}.
    """
    known = {settings_key(run["settings"]): run for run in done}
    results = {}
    for point in tqdm(grid.points(), desc="Grid runs", unit="run"):
        settings = replace(base, **point)
        run = known.get(settings_key(settings)) or run_slice(settings, sd)
        results[key(point)] = {"point": point, "history": run["history"], "val_accuracy": run["val_accuracy"]}
    return results


def plan_for(p: Profile) -> dict[str, int]:
    """This notebook's sizes for profile ``p``: slice, 'more data' slice, validation size, epochs."""
    return {
        "per_class": 2,
        "more_data_per_class": p.pick(smoke=8, workshop=15, full=30),
        "quick_remedies": p.name == "smoke",
        "val_per_class": p.pick(smoke=5, workshop=6, full=20),
        "epochs": 40,
    }
