"""Notebook 11: responsible fine-tuning. Canary memorisation and scrubbing; a slice audit and a data fix.

Part 1 plants canaries (``helpers.memorisation``) in a small SFT set for SmolLM2, fine-tunes it with and without
the redaction step (``helpers.redaction``), and measures exposure. Part 2 builds slices of banking77 by
deterministic transformations, scores a MiniLM classifier per slice with bootstrap intervals, picks the worst slice
on validation, augments the training data for it and retrains with the same number of optimiser steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from datasets import Dataset, concatenate_datasets

from helpers import memorisation, redaction
from helpers.chat import fine_tune_chat
from helpers.classifier import FineTuned, fine_tune_classifier
from helpers.data import load_banking77, read_jsonl, stratified_split, tokenize
from helpers.evaluation import predict_labels
from helpers.intervals import accuracy_interval, paired_difference
from helpers.lessons.slice_transforms import LENGTH_SLICES, TRANSFORMS
from helpers.paths import DATA_DIR
from helpers.runtime import Profile
from helpers.training import TrainConfig

HOLDERS = ("Alice Moreau", "Kwame Mensah", "Priya Sharma", "Chen Wei", "Olga Ivanova")
LM_RATES = {"lora": 3e-3, "full": 1e-4}  # LoRA's fresh adapters take big steps, full fine-tuning small ones


@dataclass(frozen=True)
class Settings:
    """One profile's sizes for both experiments."""

    repetitions: tuple[int, ...]  # how often each canary appears in the SFT data
    n_filler: int  # ordinary support Q&A conversations around the canaries
    lm_steps: int  # optimiser steps per SmolLM2 fine-tune (same for every method)
    lm_methods: tuple[str, ...]  # 'lora', and 'full' where the budget allows
    n_candidates: int  # random secrets each canary is ranked against
    train_per_class: int | None
    val_per_class: int
    test_per_class: int | None
    epochs: int  # classifier passes over the original training set; the augmented run gets the same steps
    max_length: int  # tokens per classifier message
    digits: int = 5  # random digits per canary: a space of 10**digits secrets
    lm_batch: int = 8
    lm_max_length: int = 64
    classifier_lr: float = 2e-4
    batch_size: int = 16


def settings(p: Profile) -> Settings:
    """Smoke: LoRA only, 12 steps, 100 candidates; workshop: LoRA and full, 24 steps; full: longer and bigger."""
    return Settings(
        repetitions=(1, 4, 16),
        n_filler=p.pick(smoke=32, workshop=64, full=156),
        lm_steps=p.pick(smoke=12, workshop=24, full=60),
        lm_methods=p.pick(smoke=("lora",), workshop=("lora", "full"), full=("lora", "full")),
        n_candidates=p.pick(smoke=100, workshop=400, full=2000),
        train_per_class=p.train_per_class,
        val_per_class=p.pick(smoke=10, workshop=20, full=20),
        test_per_class=p.test_per_class,
        epochs=p.epochs,
        max_length=p.max_length,
    )


# ---------------------------------------------------------------- part 1: canaries
def filler(n: int) -> list[list[dict[str, str]]]:
    """The first ``n`` question/answer pairs of the fictional bank's knowledge base, as support chats."""
    rows = read_jsonl(DATA_DIR / "bank_kb" / "qa_train.jsonl")[:n]
    return [
        [
            {"role": "system", "content": memorisation.SYSTEM},
            {"role": "user", "content": r["question"]},
            {"role": "assistant", "content": r["answer"]},
        ]
        for r in rows
    ]


def canary_run(s: Settings, method: str, scrub: bool, seed: int = 0) -> list[dict]:
    """Fine-tune SmolLM2 on the planted data (redacted first when ``scrub``) and measure every canary."""
    canaries = memorisation.make_canaries(s.repetitions, HOLDERS, s.digits, seed)
    chats = memorisation.plant(filler(s.n_filler), canaries, seed)
    if scrub:
        chats = [redaction.redact_messages(c) for c in chats]
    config = TrainConfig(LM_RATES[method], max_steps=s.lm_steps, batch_size=s.lm_batch, seed=seed)
    run = fine_tune_chat(chats, config, method=method, max_length=s.lm_max_length)
    rows = memorisation.measure(run.model, run.tokenizer, canaries, s.n_candidates, seed)
    data = "scrubbed" if scrub else "as collected"
    return [r | {"method": method, "data": data, "train_seconds": run.history.train_seconds} for r in rows]


def chance_threshold(n_canaries: int, risk: float = 0.05) -> float:
    """Exposure that any of ``n_canaries`` never-seen canaries exceeds with probability ``risk``: P(E >= e) = 2**-e."""
    return math.log2(n_canaries / risk)


def plot_exposure(frame: pd.DataFrame, chance: float, ax=None):
    """Exposure (bits) against repetitions, one line per (method, data); the chance threshold dashed."""
    ax = ax or plt.subplots(figsize=(7, 4))[1]
    for (method, data), part in frame.groupby(["method", "data"], sort=False):
        ax.plot(part.repetitions, part.exposure, marker="o", label=f"{method}, {data}")
    ax.axhline(frame.max_exposure.iloc[0], color="black", lw=0.8, label="maximum: the model's top choice")
    ax.axhline(chance, ls="--", color="grey", label="chance (5% risk over all canaries)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(frame.repetitions.unique()), [str(r) for r in sorted(frame.repetitions.unique())])
    ax.set(xlabel="times the canary appears in the training data", ylabel="exposure (bits)")
    ax.legend(fontsize=8)
    return ax


# ---------------------------------------------------------------- part 2: slices
def classifier_splits(s: Settings, intents: Sequence[str] | None, seed: int = 0) -> tuple[Dataset, Dataset, Dataset]:
    """(train, validation, test): validation carved out of banking77's training split; test from its test split."""
    per_class = None if s.train_per_class is None else s.train_per_class + s.val_per_class
    pool = load_banking77("train", per_class=per_class, intents=intents, seed=seed)
    share = s.val_per_class / (per_class or len(pool) / len(set(pool["label"])))
    train, val = stratified_split(pool, test_size=share, seed=seed)
    return train, val, load_banking77("test", per_class=s.test_per_class, intents=intents, seed=seed)


def transformed(dataset: Dataset, transform: Callable[[str], str]) -> Dataset:
    """The dataset with every text transformed (labels unchanged)."""
    return dataset.map(lambda row: {"text": transform(row["text"])})


def augmented(train: Dataset, transform_names: Sequence[str]) -> Dataset:
    """The training set plus a transformed copy per named transformation (what "fix it with data" means here)."""
    unknown = [n for n in transform_names if n not in TRANSFORMS]
    if unknown:
        raise ValueError(f"Unknown transformations {unknown}; choose from: {', '.join(TRANSFORMS)}.")
    return concatenate_datasets([train] + [transformed(train, TRANSFORMS[n]) for n in transform_names])


def train_classifier(train: Dataset, val: Dataset, s: Settings, steps: int, seed: int = 0) -> FineTuned:
    """Full fine-tune of MiniLM for exactly ``steps`` optimiser steps (so an augmented set costs no extra steps)."""
    config = TrainConfig(s.classifier_lr, max_steps=steps, batch_size=s.batch_size, seed=seed)
    return fine_tune_classifier(train, config, eval_data=val, max_length=s.max_length)


def slice_right(run: FineTuned, dataset: Dataset) -> dict[str, np.ndarray]:
    """Per slice: 1.0/0.0 for each message right/wrong. Transformed slices keep every message (paired with
    "original"); length slices are subsets, marked by NaN where a message is not in them."""
    texts = {"original": dataset["text"]} | {n: [f(t) for t in dataset["text"]] for n, f in TRANSFORMS.items()}
    labels = np.asarray(dataset["label"])
    out = {}
    for name, batch in texts.items():
        tok = tokenize(Dataset.from_dict({"text": batch, "label": labels}), run.tokenizer, run.max_length or 64)
        out[name] = (predict_labels(run.model, tok, run.tokenizer) == labels).astype(float)
    for name, keep in LENGTH_SLICES.items():
        out[name] = np.where([keep(t) for t in dataset["text"]], out["original"], np.nan)
    return out


def slice_table(right: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Accuracy per slice with its bootstrap interval, and the gap to the original messages (paired where possible)."""
    rows = []
    for name, r in right.items():
        kept = ~np.isnan(r)
        if not kept.any():  # an empty subset (no message that long) has no accuracy
            continue
        acc = accuracy_interval(r[kept], np.ones(kept.sum()))
        gap = paired_difference(right["original"][kept], r[kept]) if name in TRANSFORMS else None
        rows.append(dict(slice=name, n=int(kept.sum()), accuracy=acc.estimate, low=acc.low, high=acc.high, gap=gap))
    return pd.DataFrame(rows).set_index("slice")


def worst_slice(table: pd.DataFrame) -> str:
    """The transformed slice with the largest gap to the original messages (length slices cannot be augmented)."""
    fixable = table.loc[[n for n in table.index if n in TRANSFORMS]]
    return max(fixable.index, key=lambda n: (fixable.gap[n].estimate, n))


def gap_change(before: Mapping[str, np.ndarray], after: Mapping[str, np.ndarray], name: str):
    """Paired interval of (gap before) - (gap after) on slice ``name``: above zero means the gap narrowed."""
    return paired_difference(before["original"] - before[name], after["original"] - after[name])


def plot_slices(before: pd.DataFrame, after: pd.DataFrame | None = None, ax=None, title: str = ""):
    """Accuracy per slice with 95% intervals; before (and after) the fix side by side. Returns the axes."""
    ax = ax or plt.subplots(figsize=(8, 5))[1]
    y = np.arange(len(before))
    for frame, shift, label in ((before, -0.15, "before the fix"), (after, 0.15, "after the fix")):
        if frame is None:
            continue
        err = [frame.accuracy - frame.low, frame.high - frame.accuracy]
        ax.errorbar(frame.accuracy, y + shift, xerr=err, fmt="o", capsize=3, label=label)
    ax.set_yticks(y, before.index)
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
    ax.set(xlabel="accuracy (95% bootstrap interval)", title=title)
    ax.legend(fontsize=8)
    return ax
