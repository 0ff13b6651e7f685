"""Notebook 03's scaffolding: its sizes per profile, the scope of facts a run covers, a table of answers."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pandas as pd

from helpers import facts
from helpers.knowledge import QA
from helpers.runtime import Profile


def experiment_sizes(p: Profile) -> dict[str, int | float | bool]:
    """Notebook 03's knobs for profile ``p``: fine-tune data, passes and learning rate, intent queries, answer length.

    A fine-tune memorises a fact only after many passes over it: on a CPU profile the run covers a scope of
    ``scope_facts`` facts drawn at random before any question is scored (``fact_scope``), 12 passes at 3e-3
    (measured: about 90% of its training questions right); the full profile covers every fact.
    """
    return {
        "scope_facts": p.pick(smoke=p.n_generate, workshop=p.n_generate, full=None),
        "ft_epochs": p.pick(smoke=12, workshop=12, full=15),
        "ft_learning_rate": 3e-3,
        "lora_rank": 16,
        "intent_queries_per_class": p.pick(smoke=2, workshop=4, full=10),
        "max_new_tokens": p.pick(smoke=24, workshop=32, full=40),
        "top_k": 3,
    }


def fact_scope(heldout: Sequence[QA], n_facts: int | None, seed: int = 0) -> set[str]:
    """The fact ids a run covers: ``n_facts`` of the held-out questions' facts, drawn at random (None: all).

    Drawn from the seed alone, before any answer is scored: the fine-tune's data and the evaluated questions both
    come from this scope, and neither is chosen by looking at the other (no test-set leakage).
    """
    facts = sorted({q["fact_id"] for q in heldout})
    return set(facts if n_facts is None or n_facts >= len(facts) else random.Random(seed).sample(facts, n_facts))


def answers_frame(questions: Sequence[QA], replies: dict[str, Sequence[str]], n: int = 4) -> pd.DataFrame:
    """A table of the first ``n`` questions: gold answer and each method's reply (✔ when it states the gold fact)."""
    rows = []
    for i, q in enumerate(questions[:n]):
        row = {"question": q["question"], "gold": q["answer"]}
        for method, answers in replies.items():
            right = facts.judge(answers[i], q["answer"], []).right_fact
            row[method] = ("✔ " if right else "✘ ") + answers[i]
        rows.append(row)
    return pd.DataFrame(rows)
