"""Notebook 09: few-shot fine-tuning. Prompting, a frozen embedding + head, SetFit, full and LoRA, same splits.

Validation is carved out of banking77's train split and decides every setting (C, learning rate, best epoch) and
which method is "the right one"; the test split only scores each finished model. Every run returns a JSON-ready
row whose per-example test predictions let intervals and paired differences be computed afterwards.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from datasets import Dataset

from helpers import data, intent_prompting
from helpers import few_shot as recipe
from helpers.classifier import fine_tune_classifier
from helpers.evaluation import predict_logits
from helpers.intervals import Interval, accuracy_interval, paired_difference
from helpers.runtime import Profile
from helpers.training import TrainConfig

# Published banking77 test accuracy on all 77 intents: (method, examples per intent, accuracy, source).
PUBLISHED = [
    ("USE+ConveRT (frozen encoders + MLP)", 10, 0.8519, "Casanueva et al. 2020, arXiv:2003.04807"),
    ("DNNC (NLI pair classifier)", 10, 0.8671, "Zhang et al. 2021, arXiv:2106.04564 (CPFT paper)"),
    ("CPFT (contrastive pre-training + fine-tuning)", 10, 0.8720, "Zhang et al. 2021, arXiv:2106.04564"),
    ("all-MiniLM-L6-v2 frozen + logistic regression", 8, 0.8004, "MTEB Banking77Classification leaderboard"),
]

# Learning rates each fine-tune tries (validation picks one): full fine-tuning takes small steps, LoRA's fresh
# adapters big ones. On a CPU budget: one each, notebook 04's LoRA rate and twice its full rate (few steps here).
LR_GRID = {"full": (1e-4, 2e-4, 5e-4), "lora": (1e-3, 2e-3, 5e-3)}
ONE_RATE = {"full": (2e-4,), "lora": (2e-3,)}


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


def _timed(fn, *args):
    start = time.perf_counter()
    return fn(*args), time.perf_counter() - start


def _row(method: str, per_intent: int, val_acc: float, preds, train_s: float, infer_s: float, setting: str) -> dict:
    preds = [int(p) for p in preds]
    return dict(
        method=method, per_intent=per_intent, val_accuracy=float(val_acc), predictions=preds, setting=setting
    ) | dict(train_seconds=float(train_s), ms_per_query=1000 * infer_s / max(1, len(preds)))


def _per_intent(train: Dataset) -> int:  # examples per intent of a balanced training set
    return len(train) // len(set(train["label"]))


embed, fit_head = recipe.embed, recipe.fit_head  # the library's recipe (the CLI uses the same)


def frozen_head(embedder, train: Dataset, val: Dataset, test: Dataset, c_grid: Sequence[float]) -> dict:
    """Frozen MiniLM + logistic regression, C chosen on validation; train seconds = embed + fit of the chosen C."""
    x_train, embed_s = _timed(embed, embedder, train["text"])
    x_val = embed(embedder, val["text"])
    scores = {c: fit_head(x_train, train["label"], c).score(x_val, val["label"]) for c in c_grid}
    best = max(c_grid, key=lambda c: (scores[c], -c))  # ties go to the stronger regularisation
    head, fit_s = _timed(fit_head, x_train, train["label"], best)
    preds, infer_s = _timed(lambda: head.predict(embed(embedder, test["text"])))
    return _row("frozen + head", _per_intent(train), scores[best], preds, embed_s + fit_s, infer_s, f"C={best:g}")


def setfit_run(train: Dataset, val: Dataset, test: Dataset, s: Settings, seed: int = 0) -> dict:
    """SetFit (``helpers.few_shot.setfit``): contrastive fine-tuning of MiniLM on sentence pairs, then a head."""
    config = recipe.SetFitConfig(
        iterations=s.setfit_iterations, max_steps=s.setfit_max_steps, batch_size=s.batch_size, seed=seed
    )
    model, train_s = _timed(recipe.setfit, train, config)
    val_acc = np.mean(model.predict(val["text"]) == np.asarray(val["label"]))
    preds, infer_s = _timed(model.predict, test["text"])
    steps = config.steps(len(train))
    return _row("SetFit", _per_intent(train), val_acc, preds, train_s, infer_s, f"{steps} pair steps")


def fine_tune_run(method: str, train: Dataset, val: Dataset, test: Dataset, s: Settings, seed: int = 0) -> dict:
    """Full or LoRA fine-tuning of MiniLM; learning rate and epoch chosen on validation, then scored on test."""
    per_epoch = math.ceil(len(train) / s.batch_size)
    steps = max(s.min_steps, s.epochs * per_epoch)
    best, best_acc, best_lr = None, -1.0, 0.0
    for lr in s.lr_grid[method]:
        config = TrainConfig(lr, max_steps=steps, eval_every_steps=per_epoch, batch_size=s.batch_size, seed=seed)
        config.progress = False
        run = fine_tune_classifier(train, config, method=method, eval_data=val, max_length=s.max_length)
        logits, labels = predict_logits(run.model, run.eval_data, run.tokenizer)
        if (acc := float(np.mean(logits.argmax(-1) == labels))) > best_acc:
            best, best_acc, best_lr = run, acc, lr
    test_tok = data.tokenize(test, best.tokenizer, s.max_length)
    (logits, _), infer_s = _timed(predict_logits, best.model, test_tok, best.tokenizer)
    h, name = best.history, {"full": "full fine-tune", "lora": "LoRA"}[method]
    row = _row(name, _per_intent(train), best_acc, logits.argmax(-1), h.train_seconds, infer_s, f"lr={best_lr:g}")
    return row | {"best_step": h.best_step, "steps": h.steps}  # best == last: still improving when the budget ended


def prompting_runs(chat, tokenizer, shots: Dataset, test: Dataset) -> list[dict]:
    """SmolLM2 zero-shot and few-shot (one example per intent from ``shots``) on the test split."""
    names, one_each = test.features["label"].names, first_per_class(shots, 1)
    examples = [(t, names[y]) for t, y in zip(one_each["text"], one_each["label"])]
    rows = []
    for method, ex in (("prompt zero-shot", []), ("prompt few-shot", examples)):
        preds, seconds = intent_prompting.classify_by_prompting(chat, tokenizer, test["text"], names, ex)
        rows.append(_row(method, len(ex) // len(names), float("nan"), preds, 0.0, seconds * len(test), ""))
    return rows


def right(row: Mapping, test_labels: Sequence[int]) -> np.ndarray:
    """1.0 where the row's test prediction is right, else 0.0 (one entry per test example)."""
    return (np.asarray(row["predictions"]) == np.asarray(test_labels)).astype(float)


def results_frame(rows: Sequence[Mapping], test_labels: Sequence[int]) -> pd.DataFrame:
    """One line per run: test accuracy with its 95% bootstrap interval, validation accuracy and costs."""
    cis = [accuracy_interval(r["predictions"], test_labels) for r in rows]
    frame = pd.DataFrame([{k: v for k, v in r.items() if k != "predictions"} for r in rows])
    for column in ("best_step", "steps"):  # step counts, missing for methods without steps: whole numbers
        if column in frame:
            frame[column] = frame[column].astype("Int64")
    return frame.assign(accuracy=[c.estimate for c in cis], low=[c.low for c in cis], high=[c.high for c in cis])


def plot_curves(frame: pd.DataFrame, ax=None, title: str = "Test accuracy against examples per intent"):
    """Learning curves with 95% intervals as error bars; prompting as horizontal bands. Returns the axes."""
    ax = ax or plt.subplots(figsize=(8, 4.5))[1]
    trained = frame[~frame.method.str.startswith("prompt")]
    for method, part in trained.groupby("method", sort=False):
        part = part.sort_values("per_intent")
        err = [part.accuracy - part.low, part.high - part.accuracy]
        ax.errorbar(part.per_intent, part.accuracy, yerr=err, marker="o", capsize=4, label=method)
    for (_, r), style in zip(frame[frame.method.str.startswith("prompt")].iterrows(), ("--", ":")):
        line = ax.axhline(r.accuracy, ls=style, color="grey", label=f"SmolLM2 {r.method} (no training)")
        ax.axhspan(r.low, r.high, color=line.get_color(), alpha=0.1)
    ax.set(xlabel="labelled examples per intent", ylabel="test accuracy", title=title)
    ax.set_xticks(sorted(trained.per_intent.unique()))
    ax.yaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
    ax.legend(loc="lower right", fontsize=8)
    return ax


def right_method(rows: Sequence[Mapping], size: int) -> Mapping:
    """The trained method with the best *validation* accuracy at ``size`` per intent (test never decides)."""
    trained = [r for r in rows if r["per_intent"] == size and not r["method"].startswith("prompt")]
    if not trained:
        raise ValueError(
            f"No trained method at {size} per intent; sizes run: {sorted({r['per_intent'] for r in rows})}"
        )
    return max(trained, key=lambda r: r["val_accuracy"])


def versus_prompting(rows: Sequence[Mapping], size: int, test_labels: Sequence[int]) -> tuple[dict, dict, Interval]:
    """(right method, best prompt on test, paired test-accuracy difference): the strongest prompt is the opponent."""
    chosen = right_method(rows, size)
    prompts = [r for r in rows if r["method"].startswith("prompt")]
    opponent = max(prompts, key=lambda r: right(r, test_labels).mean())
    return chosen, opponent, paired_difference(right(chosen, test_labels), right(opponent, test_labels))


def spend(embedder, pool: Dataset, val: Dataset, counts: Mapping[str, int]) -> pd.Series:
    """Validation recall per intent of the frozen baseline (C=10) trained on what ``counts`` buys; mean = accuracy."""
    train, names = labelled(pool, counts), val.features["label"].names
    if len(set(train["label"])) < 2:
        raise ValueError("Label at least two intents: a classifier needs two classes to tell apart.")
    preds = fit_head(embed(embedder, train["text"]), train["label"]).predict(embed(embedder, val["text"]))
    hits = pd.Series(preds == np.asarray(val["label"]), index=[names[y] for y in val["label"]])
    return hits.groupby(level=0, sort=False).mean()  # validation has the same count per intent: mean = accuracy
