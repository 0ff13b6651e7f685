"""Notebook 03's scaffolding: its sizes per profile and the side-by-side table of answers."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from helpers.knowledge import QA
from helpers.prompting import contains_gold
from helpers.runtime import Profile


def experiment_sizes(p: Profile) -> dict[str, int | float | bool]:
    """Notebook 03's knobs for profile ``p``: fine-tune data, passes and learning rate, intent queries, answer length.

    A fine-tune memorises a fact only after many passes over it: on a CPU profile it trains on the facts the
    evaluated questions ask about (plus the changed article), 12 passes at 3e-3 (measured: about 90% of its
    training questions right); on a GPU it trains on every training pair.
    """
    return {
        "ft_focused": p.pick(smoke=True, workshop=True, full=False),
        "ft_epochs": p.pick(smoke=12, workshop=12, full=15),
        "ft_learning_rate": 3e-3,
        "lora_rank": 16,
        "intent_queries_per_class": p.pick(smoke=2, workshop=4, full=10),
        "max_new_tokens": p.pick(smoke=24, workshop=32, full=40),
        "top_k": 3,
    }


def answers_frame(questions: Sequence[QA], replies: dict[str, Sequence[str]], n: int = 4) -> pd.DataFrame:
    """A table of the first ``n`` questions: gold answer and each method's reply (marked right or wrong)."""
    rows = []
    for i, q in enumerate(questions[:n]):
        row = {"question": q["question"], "gold": q["answer"]}
        for method, answers in replies.items():
            row[method] = ("✔ " if contains_gold(answers[i], q["answer"]) else "✘ ") + answers[i]
        rows.append(row)
    return pd.DataFrame(rows)
