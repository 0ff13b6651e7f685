"""Notebook 05's comparison over seeds: each recipe (full fine-tuning, LoRA, full + replay) tuned and measured per seed,
the changes against the untuned model, their mean over seeds, and the forgetting gap paired by question."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from helpers import intervals
from helpers.chat import fine_tune_chat, mix_replay
from helpers.lessons.forgetting import Recipe, Suite, domain_conversations, measure, replay_conversations
from helpers.seeds import for_profile
from helpers.training import TrainConfig


def recipes(domain_train: Sequence[dict], replay_pairs: Sequence[dict], plan: dict[str, Any]) -> dict[str, Recipe]:
    """The three ways to tune on the same budget: name -> (method, learning rate, conversations). Replay mixes
    general pairs into the bank conversations so they make up ``plan['replay_share']`` of them."""
    domain = domain_conversations(domain_train)
    mixed = mix_replay(domain, replay_conversations(replay_pairs), plan["replay_share"])
    return {
        "full fine-tuning": ("full", plan["lr_full"], domain),
        "LoRA": ("lora", plan["lr_lora"], domain),
        "full + replay": ("full", plan["lr_full"], mixed),
    }


def tune_and_measure(
    seed: int, recipes: dict[str, Recipe], suite: Suite, plan: dict[str, Any], keep: dict | None = None
) -> list[dict[str, Any]]:
    """Train a fresh SmolLM2 per recipe with ``seed`` (LoRA's starting matrices, batch order; the data stay the same)
    and ``measure`` it: one row per method. ``keep`` (a dict), if given, receives each (model, tokenizer)."""
    rows = []
    for name, (method, lr, conversations) in recipes.items():
        config = TrainConfig(learning_rate=lr, max_steps=plan["steps"], batch_size=plan["batch_size"], seed=seed)
        run = fine_tune_chat(
            conversations, config, method=method, max_length=plan["max_length"], rank=plan["lora_rank"]
        )
        rows.append(
            {
                "method": name,
                **measure(run.model, run.tokenizer, suite),
                "trainable_params": run.trainable,
                "train_seconds": run.history.train_seconds,
                "final_train_loss": run.history.final_loss,
            }
        )
        if keep is not None:
            keep[name] = (run.model, run.tokenizer)
    return rows


def changes(runs: pd.DataFrame, before: dict[str, Any]) -> pd.DataFrame:
    """``runs`` (rows of ``tune_and_measure``, any seeds) with what each run gained and lost against ``before``:
    'domain_gain', 'probe_accuracy_lost' and 'perplexity_rise' (relative)."""
    return runs.assign(
        domain_gain=runs["domain_accuracy"] - before["domain_accuracy"],
        probe_accuracy_lost=before["probe_accuracy"] - runs["probe_accuracy"],
        perplexity_rise=runs["general_perplexity"] / before["general_perplexity"] - 1,
    )


def mean_over_seeds(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per method (in order of appearance): the mean over seeds of every number in ``changes(runs)``."""
    numbers = runs.select_dtypes("number").columns.drop("seed")
    return runs.groupby("method", sort=False)[list(numbers)].mean().astype(float)


def forgetting_gap(runs: pd.DataFrame, a: str, b: str) -> intervals.Interval:
    """``a``'s probe accuracy minus ``b``'s (positive: ``b`` forgot more), averaged over the seeds in ``runs`` and
    paired by probe question, with a 95% bootstrap interval over the questions."""
    per_seed = []
    for seed, group in runs.groupby("seed"):
        right = dict(zip(group["method"], group["probe_right"]))
        if a not in right or b not in right:
            raise ValueError(f"Seed {seed} has no run for {sorted({a, b} - set(right))}; methods: {sorted(right)}.")
        per_seed.append(np.subtract(right[a], right[b], dtype=float))
    return intervals.mean_interval(np.mean(per_seed, axis=0))


def seeds_for(p) -> list[int]:
    """Training seeds for the forgetting comparison in profile ``p``: three in full; one in smoke and in workshop
    too (against the usual two), as each seed trains three SmolLM2 copies and a second would not fit the
    workshop's ten minutes."""
    return for_profile(p, workshop=1)
