"""Notebook 09: few-shot fine-tuning. Prompting, a frozen embedding + head, SetFit, full and LoRA, same splits.

Validation is carved out of banking77's train split and decides every setting (C, learning rate, best epoch) and
which method is "the right one". Training never sees the test split: every run returns a ``Fitted`` (its row and its
predictor), and ``few_shot_scores.score_test`` scores all of them once, at the end (each row's ``intervals.scored``
score: accuracy, its interval and right/wrong per message, for paired differences afterwards).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from datasets import Dataset

from helpers import cache, data, intent_prompting
from helpers import few_shot as recipe
from helpers.classifier import fine_tune_classifier
from helpers.evaluation import predict_labels
from helpers.runtime import Profile
from helpers.training import TrainConfig

# Learning rates each fine-tune tries (validation picks one): full fine-tuning takes small steps, LoRA's fresh
# adapters big ones. On a CPU budget: one each, notebook 04's LoRA rate and twice its full rate (few steps here).
LR_GRID = {"full": (1e-4, 2e-4, 5e-4), "lora": (1e-3, 2e-3, 5e-3)}
ONE_RATE = {"full": (2e-4,), "lora": (2e-3,)}
CACHE_NAME = "09_few_shot"  # helpers.cache: the final rows of a whole run (validation choices and test predictions)


@dataclass(frozen=True)
class Settings:
    """The sweep for one profile: intents, sizes, split sizes and each method's budget and candidate settings."""

    intents: tuple[str, ...] | None  # None: all 77
    sizes: tuple[int, ...]  # training examples per intent
    test_per_class: int | None  # test examples per intent (None: all)
    val_per_class: int = 10  # validation examples per intent, carved out of the training pool
    c_grid: tuple[float, ...] = (1.0, 10.0, 100.0)  # logistic-regression strengths tried on validation
    lr_grid: Mapping[str, tuple[float, ...]] = field(default_factory=lambda: dict(LR_GRID))  # tried on validation
    epochs: int = 10  # passes for full / LoRA; the epoch with the lowest validation loss is kept
    min_steps: int = 30  # ...but at least this many optimiser steps (4 per intent is only a few batches)
    batch_size: int = 16
    max_length: int = 32  # banking77 messages are short: 32 tokens keep almost all of them whole
    setfit_iterations: int = 5  # SetFit draws 2 x this many pairs per training sentence
    setfit_max_steps: int = 60  # ...capped at this many contrastive steps (time budget)


def settings(p: Profile) -> Settings:
    """Smoke: 10 intents, 8 per intent; workshop: 10 intents at 4, 8, 16; full: 77 intents at 4, 8, 10, 16."""
    return Settings(
        intents=p.intents,
        sizes=p.pick(smoke=(8,), workshop=(4, 8, 16), full=(4, 8, 10, 16)),
        test_per_class=p.pick(smoke=8, workshop=25, full=None),
        lr_grid=p.pick(smoke=ONE_RATE, workshop=ONE_RATE, full=LR_GRID),
        epochs=p.pick(smoke=8, workshop=10, full=10),
        setfit_max_steps=p.pick(smoke=30, workshop=60, full=400),
    )


def first_per_class(dataset: Dataset, counts: int | Mapping[int, int], skip: int = 0) -> Dataset:
    """The first ``counts`` examples of each label (an int, or label id -> count) after skipping ``skip`` of each."""
    seen: Counter = Counter()
    keep = []
    for i, label in enumerate(dataset["label"]):
        want = counts if isinstance(counts, int) else counts.get(label, 0)
        if skip <= seen[label] < skip + want:
            keep.append(i)
        seen[label] += 1
    return dataset.select(keep)


def splits(s: Settings, seed: int = 0) -> tuple[Dataset, Dataset, Dataset]:
    """(training pool, validation, test). Validation is the pool's first ``val_per_class`` per intent, held out."""
    train = data.load_banking77("train", intents=s.intents, seed=seed)  # shuffled by seed
    validation = first_per_class(train, s.val_per_class)
    pool = first_per_class(train, 10**6, skip=s.val_per_class)
    test = data.load_banking77("test", per_class=s.test_per_class, intents=s.intents, seed=seed)
    return pool, validation, test


def labelled(pool: Dataset, counts: Mapping[str, int]) -> Dataset:
    """The first ``counts[intent]`` pool examples of each named intent: what a labelling budget buys."""
    names = pool.features["label"].names
    unknown = sorted(set(counts) - set(names))
    if unknown:
        raise ValueError(f"Unknown intents {unknown}; choose from: {', '.join(names)}.")
    return first_per_class(pool, {names.index(k): int(v) for k, v in counts.items()})


def timed(fn, *args):
    """(fn(*args), seconds it took)."""
    start = time.perf_counter()
    return fn(*args), time.perf_counter() - start


def _row(method: str, per_intent: int, val_acc: float, train_s: float, setting: str) -> dict:
    return dict(
        method=method, per_intent=per_intent, val_accuracy=float(val_acc), setting=setting, train_seconds=float(train_s)
    )


def _per_intent(train: Dataset) -> int:  # examples per intent of a balanced training set
    return len(train) // len(set(train["label"]))


@dataclass
class Fitted:
    """One finished run: its JSON-ready row (validation accuracy, chosen setting, training seconds) and predictor."""

    row: dict
    predict: Callable[[Dataset], Sequence[int]]  # messages (a "text" column) -> predicted label ids


embed, fit_head = recipe.embed, recipe.fit_head  # the library's recipe (the CLI uses the same)


def frozen_head(embedder, train: Dataset, val: Dataset, c_grid: Sequence[float]) -> Fitted:
    """Frozen MiniLM + logistic regression, C chosen on validation; train seconds = embed + fit of the chosen C."""
    x_train, embed_s = timed(embed, embedder, train["text"])
    x_val = embed(embedder, val["text"])
    scores = {c: fit_head(x_train, train["label"], c).score(x_val, val["label"]) for c in c_grid}
    best = max(c_grid, key=lambda c: (scores[c], -c))  # ties go to the stronger regularisation
    head, fit_s = timed(fit_head, x_train, train["label"], best)
    row = _row("frozen + head", _per_intent(train), scores[best], embed_s + fit_s, f"C={best:g}")
    return Fitted(row, lambda d: head.predict(embed(embedder, d["text"])))


def setfit_run(train: Dataset, val: Dataset, s: Settings, seed: int = 0) -> Fitted:
    """SetFit (``helpers.few_shot.setfit``): contrastive fine-tuning of MiniLM on sentence pairs, then a head."""
    config = recipe.SetFitConfig(
        iterations=s.setfit_iterations, max_steps=s.setfit_max_steps, batch_size=s.batch_size, seed=seed
    )
    model, train_s = timed(recipe.setfit, train, config)
    val_acc = np.mean(model.predict(val["text"]) == np.asarray(val["label"]))
    row = _row("SetFit", _per_intent(train), val_acc, train_s, f"{config.steps(len(train))} pair steps")
    return Fitted(row, lambda d: model.predict(d["text"]))


def fine_tune_run(method: str, train: Dataset, val: Dataset, s: Settings, seed: int = 0) -> Fitted:
    """Full or LoRA fine-tuning of MiniLM; learning rate and epoch (lowest validation loss) chosen on validation."""
    per_epoch = math.ceil(len(train) / s.batch_size)
    steps = max(s.min_steps, s.epochs * per_epoch)
    best, best_acc, best_lr = None, -1.0, 0.0
    for lr in s.lr_grid[method]:
        config = TrainConfig(lr, max_steps=steps, eval_every_steps=per_epoch, batch_size=s.batch_size, seed=seed)
        config.progress = False
        run = fine_tune_classifier(train, config, method=method, eval_data=val, max_length=s.max_length)
        acc = float(np.mean(predict_labels(run.model, run.eval_data, run.tokenizer) == np.asarray(val["label"])))
        if acc > best_acc:
            best, best_acc, best_lr = run, acc, lr
    model, tokenizer, h = best.model, best.tokenizer, best.history

    def predict(d: Dataset) -> np.ndarray:
        return predict_labels(model, data.tokenize(d, tokenizer, s.max_length), tokenizer)

    name = {"full": "full fine-tune", "lora": "LoRA"}[method]
    row = _row(name, _per_intent(train), best_acc, h.train_seconds, f"lr={best_lr:g}")
    return Fitted(row | {"best_step": h.best_step, "steps": h.steps}, predict)  # best == last: still improving


def train_all(embedder, pool: Dataset, val: Dataset, s: Settings) -> list[Fitted]:
    """Every trained method at every size, each setting chosen on validation; the test split is not an argument."""
    fitted = []
    for size in s.sizes:
        train = first_per_class(pool, size)
        print(f"{size} per intent ({len(train)} messages): frozen + head, SetFit, full, LoRA")
        fitted += [frozen_head(embedder, train, val, s.c_grid), setfit_run(train, val, s)]
        fitted += [fine_tune_run(method, train, val, s) for method in ("full", "lora")]
    return fitted


def prompters(chat, tokenizer, shots: Dataset) -> list[Fitted]:
    """SmolLM2 zero-shot and few-shot (one example per intent from ``shots``) as predictors; nothing is trained."""
    names, one_each = shots.features["label"].names, first_per_class(shots, 1)
    examples = [(t, names[y]) for t, y in zip(one_each["text"], one_each["label"])]

    def asker(ex):
        return lambda d: intent_prompting.classify_by_prompting(chat, tokenizer, d["text"], names, ex)[0]

    return [
        Fitted(_row(method, len(ex) // len(names), float("nan"), 0.0, ""), asker(ex))
        for method, ex in (("prompt zero-shot", []), ("prompt few-shot", examples))
    ]


def stored(key: Mapping) -> list[dict] | None:
    """The final rows an earlier run saved under ``key`` (``helpers.cache``; None when there are none: train)."""
    return cache.lookup(CACHE_NAME, dict(key))


def validation_frame(rows: Sequence[Mapping]) -> pd.DataFrame:
    """The validation side of each run: accuracy, chosen setting, training seconds (no test column)."""
    keep = ("method", "per_intent", "val_accuracy", "setting", "train_seconds", "best_step", "steps")
    frame = pd.DataFrame([{k: r[k] for k in keep if k in r} for r in rows])
    return whole_steps(frame)


def whole_steps(frame: pd.DataFrame) -> pd.DataFrame:
    """Step counts (missing for methods without steps) as whole numbers."""
    for column in ("best_step", "steps"):
        if column in frame:
            frame[column] = frame[column].astype("Int64")
    return frame


def spend(embedder, pool: Dataset, val: Dataset, counts: Mapping[str, int]) -> pd.Series:
    """Validation recall per intent of the frozen baseline (C=10) trained on what ``counts`` buys; mean = accuracy."""
    train, names = labelled(pool, counts), val.features["label"].names
    if len(set(train["label"])) < 2:
        raise ValueError("Label at least two intents: a classifier needs two classes to tell apart.")
    preds = fit_head(embed(embedder, train["text"]), train["label"]).predict(embed(embedder, val["text"]))
    hits = pd.Series(preds == np.asarray(val["label"]), index=[names[y] for y in val["label"]])
    return hits.groupby(level=0, sort=False).mean()  # validation has the same count per intent: mean = accuracy
