"""banking77 with the 22M MiniLM: a recipe search on validation, then the chosen recipe scored on test once.

    python -m bench.banking77_search [--workers 8] [--budget-minutes 8] [--tiny]

1. Each change to bench/quality.py's recipe (5 epochs, learning rate 1e-4, warm-up 0.1, batch 32, max length 64),
   one at a time, and the recipe itself, over two seeds: trained on 90% of the training set and scored on the
   stratified 10% held back (the split bench/quality.py chooses its learning rate on).
2. The changes that beat the recipe on mean validation accuracy, stacked in the order of their gains (the best
   value per setting), each stack trained and scored the same way.
3. The best recipe on validation trains on the whole training set and is scored on test once, with a bootstrap
   interval; the starting recipe is trained and scored the same way beside it, for a paired difference.

Training is transformers.Trainer, set up as notebook 00's parity cell sets it up (helpers.lessons.trainer_parity),
in fp32; label smoothing is Trainer's, layer-wise learning-rate decay a list of AdamW parameter groups, R-Drop a
second forward pass (Liang et al. 2021). Runs go to parallel worker processes (one GPU runs several small models
at once). Writes bench/results/banking77_search.json after every run, so a run cut short keeps what it measured.
--tiny is a rehearsal at toy sizes that writes nowhere that counts (run it on a CPU before a GPU is lent).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch
import torch.nn.functional as F
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

from bench.common import RESULTS, machine, save
from helpers import data, intervals, models, runtime
from helpers.lessons.trainer_parity import trainer_kwargs
from helpers.training import TrainConfig

START = {"epochs": 5, "lr": 1e-4, "warmup": 0.1, "batch": 32, "max_length": 64, "smoothing": 0.0, "llrd": 1.0}
START |= {"rdrop": 0.0}
CHANGES = [
    ("epochs", 8),
    ("epochs", 10),
    ("lr", 2e-4),
    ("lr", 5e-5),
    ("batch", 16),
    ("warmup", 0.2),
    ("max_length", 128),
    ("smoothing", 0.1),
    ("llrd", 0.85),
    ("rdrop", 1.0),
]
SEEDS = (0, 1)
VALIDATION_SHARE = 0.1


class RecipeTrainer(Trainer):
    """Trainer with layer-wise learning-rate decay ``llrd`` (``parameter_groups``) and R-Drop: with ``rdrop`` > 0 each
    batch runs twice (two dropout masks) and the loss adds ``rdrop`` times the symmetric KL divergence between the
    two predictions to their mean cross-entropy (label-smoothed as the arguments say)."""

    def __init__(self, *args, rdrop: float = 0.0, llrd: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.rdrop, self.llrd = rdrop, llrd

    def create_optimizer(self, model=None):
        """Fused AdamW, as Trainer's default, over ``parameter_groups``: no weight decay on biases and norms."""
        if self.optimizer is None:
            decay = set(self.get_decay_parameter_names(self.model))
            groups = parameter_groups(self.model, decay, self.args.learning_rate, self.llrd, self.args.weight_decay)
            self.optimizer = torch.optim.AdamW(groups, lr=self.args.learning_rate, fused=True)
        return self.optimizer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """Trainer's loss when ``rdrop`` is 0; otherwise the R-Drop loss."""
        if not self.rdrop:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels, smoothing = inputs.pop("labels"), self.args.label_smoothing_factor
        a, b = model(**inputs).logits, model(**inputs).logits
        ce = (
            F.cross_entropy(a, labels, label_smoothing=smoothing)
            + F.cross_entropy(b, labels, label_smoothing=smoothing)
        ) / 2
        la, lb = F.log_softmax(a, -1), F.log_softmax(b, -1)
        kl = (
            F.kl_div(la, lb, log_target=True, reduction="batchmean")
            + F.kl_div(lb, la, log_target=True, reduction="batchmean")
        ) / 2
        loss = ce + self.rdrop * kl
        return (loss, {"logits": a}) if return_outputs else loss


def parameter_groups(
    model: torch.nn.Module, decay_names: set[str], lr: float, llrd: float, weight_decay: float
) -> list[dict]:
    """AdamW groups with layer-wise learning-rate decay: the head at ``lr``, encoder layer i of L at
    ``lr * llrd ** (L - i)``, embeddings at ``lr * llrd ** (L + 1)``; no weight decay on biases and norms."""
    layers = model.config.num_hidden_layers
    groups: dict[tuple[float, float], list] = {}
    for name, param in model.named_parameters():
        if ".embeddings." in name:
            depth = layers + 1
        elif ".layer." in name:
            depth = layers - int(name.split(".layer.")[1].split(".")[0])
        else:
            depth = 0  # the pooler and the classification head
        key = (lr * llrd**depth, weight_decay if name in decay_names else 0.0)
        groups.setdefault(key, []).append(param)
    return [{"params": p, "lr": g_lr, "weight_decay": wd} for (g_lr, wd), p in groups.items()]


def load_splits(stage: str, tiny: bool) -> tuple[Any, Any]:
    """(train, scored) for a stage: 'validation' is the 90/10 split of the training set, 'test' the whole
    training set and the test set. ``tiny``: a few examples per intent."""
    train = data.load_banking77("train", per_class=4 if tiny else None, seed=0)
    if stage == "validation":
        return data.stratified_split(train, test_size=0.25 if tiny else VALIDATION_SHARE, seed=0)
    return train, data.load_banking77("test", per_class=2 if tiny else None, seed=0)


def train_and_score(recipe: dict, seed: int, stage: str, tiny: bool) -> dict:
    """Train MiniLM with ``recipe`` and ``seed`` on the stage's training data; its scored predictions and seconds."""
    train, scored_on = load_splits(stage, tiny)
    labels = train.features["label"].names
    runtime.seed_everything(seed)  # the head is drawn after seeding, as the workbook's recipe draws it
    model, tokenizer = models.load_classifier(labels)
    train_tok, scored_tok = (data.tokenize(d, tokenizer, recipe["max_length"]) for d in (train, scored_on))
    config = TrainConfig(
        learning_rate=recipe["lr"],
        batch_size=recipe["batch"],
        warmup_ratio=recipe["warmup"],
        seed=seed,
        mixed_precision="no",
    )
    epochs = recipe["epochs"] * (0.2 if tiny else 1)
    steps = max(1, round(epochs * len(train_tok) / recipe["batch"]))
    with tempfile.TemporaryDirectory() as out:
        args = trainer_kwargs(config, steps) | {"label_smoothing_factor": recipe["smoothing"], "logging_strategy": "no"}
        trainer = RecipeTrainer(
            model=model,
            args=TrainingArguments(output_dir=out, save_strategy="no", **args),
            train_dataset=train_tok,
            data_collator=DataCollatorWithPadding(tokenizer),
            rdrop=recipe["rdrop"],
            llrd=recipe["llrd"],
        )
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        predictions = trainer.predict(scored_tok).predictions.argmax(-1)
    score = intervals.scored(predictions, scored_tok["labels"])
    return {"recipe": recipe, "seed": seed, "stage": stage, "steps": steps, "train_seconds": round(seconds, 1), **score}


def changed(recipe: dict) -> str:
    """A recipe's name: its settings that differ from START, or 'start'."""
    diff = [f"{k} {v}" for k, v in recipe.items() if START[k] != v]
    return ", ".join(diff) or "start"


class Search:
    """Runs recipes in worker processes and keeps every row in bench/results/banking77_search.json."""

    def __init__(self, workers: int, tiny: bool):
        self.workers, self.tiny, self.rows, self.began = workers, tiny, [], time.time()
        self.lock = threading.Lock()

    def run(self, jobs: list[tuple[dict, int, str]], deadline: float = float("inf")) -> list[dict]:
        """Each (recipe, seed, stage) in its own process, ``workers`` at a time, none started after ``deadline``
        (time.time()); the rows of those that ran, in order."""
        with ThreadPoolExecutor(self.workers) as pool:
            return [row for row in pool.map(lambda job: self._one(job, deadline), jobs) if row]

    def _one(self, job: tuple[dict, int, str], deadline: float) -> dict | None:
        recipe, seed, stage = job
        kept = [
            r for r in self.rows if (r["recipe"], r["seed"], r["stage"]) == (recipe, seed, stage) and "accuracy" in r
        ]
        if kept:  # measured by an earlier call (--resume)
            return kept[0]
        if time.time() > deadline:
            print("past the deadline, not run:", changed(recipe), seed, flush=True)
            return None
        env = os.environ | {"OMP_NUM_THREADS": "2"}
        argv = [sys.executable, "-m", "bench.banking77_search", "--job", json.dumps([recipe, seed, stage])]
        done = subprocess.run(argv + (["--tiny"] if self.tiny else []), env=env, capture_output=True, text=True)
        if done.returncode:
            print(done.stderr[-3000:], flush=True)
            row = {"recipe": recipe, "seed": seed, "stage": stage, "error": done.stderr.strip().splitlines()[-1]}
        else:
            row = json.loads(done.stdout.strip().splitlines()[-1])
        row["name"] = changed(recipe)
        with self.lock:
            self.rows.append(row)
            print({k: v for k, v in row.items() if k != "right"}, flush=True)
            self.save()
        return row

    def mean_validation(self, recipe: dict) -> float:
        """Mean validation accuracy of ``recipe`` over the seeds it ran (-1 if none finished)."""
        scores = [
            r["accuracy"] for r in self.rows if r["recipe"] == recipe and r["stage"] == "validation" and "accuracy" in r
        ]
        return sum(scores) / len(scores) if scores else -1.0

    def save(self, **extra) -> None:
        """Write every row so far (the per-example right/wrong only for the test stage)."""
        rows = [{k: v for k, v in r.items() if k != "right" or r["stage"] == "test"} for r in self.rows]
        save(
            "banking77_search",
            {"start": START, "seeds": list(SEEDS), "validation_share": VALIDATION_SHARE, "rows": rows, **extra},
        )


def main() -> None:
    """Run the three steps (module docstring) within the budget and write bench/results/banking77_search.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument(
        "--budget-minutes",
        type=float,
        default=8.0,
        help="no run of step 1 starts after 55%% of it, of step 2 after 75%%",
    )
    parser.add_argument("--tiny", action="store_true", help="a rehearsal at toy sizes; results go to a temp folder")
    parser.add_argument("--resume", action="store_true", help="keep the saved runs; run only what is missing")
    parser.add_argument("--stacks", type=int, default=None, help="try only the first N stacks of step 2")
    parser.add_argument("--job", help=argparse.SUPPRESS)  # a worker: one JSON [recipe, seed, stage]
    args = parser.parse_args()
    if args.job:
        print(json.dumps(train_and_score(*json.loads(args.job), tiny=args.tiny)), flush=True)
        return
    if args.tiny and "WORKBOOK_BENCH_RESULTS" not in os.environ:
        sys.exit("--tiny must not replace measured results: set WORKBOOK_BENCH_RESULTS to a temporary folder.")
    print(machine(), flush=True)
    search = Search(args.workers, args.tiny)
    saved = json.loads((RESULTS / "banking77_search.json").read_text()) if args.resume else {}
    search.rows = saved.get("rows", [])
    changes = CHANGES[-3:] if args.tiny else CHANGES
    seeds = SEEDS[:1] if args.tiny else SEEDS
    singles = [START] + [START | {k: v} for k, v in changes]
    budget = search.began + args.budget_minutes * 60
    search.run(
        [(recipe, seed, "validation") for seed in seeds for recipe in singles], budget - 0.45 * 60 * args.budget_minutes
    )
    base = search.mean_validation(START)
    gains = sorted(((search.mean_validation(START | {k: v}) - base, k, v) for k, v in changes), reverse=True)
    best_value = {}
    for gain, k, v in gains:
        if gain > 0 and k not in best_value:
            best_value[k] = v
    stacks, recipe = [], dict(START)
    for n, (k, v) in enumerate(best_value.items()):
        recipe = recipe | {k: v}
        if n:  # a stack of one change ran in step 1
            stacks.append(recipe)
    stacks = stacks[: args.stacks]
    search.run([(r, seed, "validation") for seed in seeds for r in stacks], budget - 0.25 * 60 * args.budget_minutes)
    tried = singles + stacks
    best = max(tried, key=search.mean_validation)
    print("chosen on validation:", changed(best), round(search.mean_validation(best), 4), flush=True)
    finals = search.run([(best, 0, "test")] + ([(START, 0, "test")] if best != START else []))
    chosen = saved.get("chosen_in_turn", [saved["chosen"]] if "chosen" in saved else []) + [
        changed(best)
    ]  # each call's choice, scored on test when it was made
    extra = {"chosen": changed(best), "chosen_recipe": best, "chosen_in_turn": chosen, "workers": args.workers}
    if len(finals) == 2 and all("right" in r for r in finals):
        gap = intervals.paired_difference(finals[0]["right"], finals[1]["right"])
        extra["test_gain_over_start"] = {"estimate": gap.estimate, "low": gap.low, "high": gap.high}
    search.save(**extra, minutes=round(saved.get("minutes", 0) + (time.time() - search.began) / 60, 1))


if __name__ == "__main__":
    main()
