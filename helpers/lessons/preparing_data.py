"""Notebook 02's experiments on banking77: labels flipped on purpose, a copy made imbalanced, chat conversations.

Each one plants a known problem so the notebook can measure what it costs and whether the checks in
``helpers.data_quality`` find it; a learner runs those checks on their own data, not these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from datasets import Dataset

from helpers.data_quality import per_class_recall


# --- label noise: flip labels on purpose, then score a mislabel finder against the truth ------------
def flip_labels(dataset: Dataset, fraction: float, seed: int = 0) -> tuple[Dataset, np.ndarray]:
    """(copy with ``fraction`` of labels changed to a different random label, boolean mask of flipped rows)."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction is a share of rows in [0, 1], got {fraction}.")
    n_classes = dataset.features["label"].num_classes
    rng = np.random.default_rng(seed)
    labels = np.array(dataset["label"])
    flipped = np.zeros(len(labels), dtype=bool)
    flipped[rng.choice(len(labels), size=round(fraction * len(labels)), replace=False)] = True
    # adding 1..C-1 modulo C always lands on a different label, uniformly among the others
    shift = rng.integers(1, n_classes, size=len(labels))
    labels[flipped] = (labels[flipped] + shift[flipped]) % n_classes
    noisy = dataset.remove_columns("label").add_column("label", labels.tolist())
    return noisy.cast_column("label", dataset.features["label"]), flipped


def catch_rate(flagged: Sequence[int], truly_wrong: np.ndarray) -> dict[str, float]:
    """How well a mislabel finder did: precision (flagged that were wrong) and recall (wrong that were flagged)."""
    flagged = np.asarray(flagged, dtype=int)
    hits = int(truly_wrong[flagged].sum()) if len(flagged) else 0
    return {
        "flagged": len(flagged),
        "caught": hits,
        "precision": hits / max(1, len(flagged)),
        "recall": hits / max(1, int(truly_wrong.sum())),
    }


# --- class imbalance: make some intents rare ---------------------------------------------------
def subsample_classes(dataset: Dataset, classes: Sequence[int], keep: int, seed: int = 0) -> Dataset:
    """Keep only ``keep`` examples of each label in ``classes`` (others untouched): an imbalanced copy."""
    rng = np.random.default_rng(seed)
    labels = np.array(dataset["label"])
    drop = []
    for c in classes:
        rows = np.nonzero(labels == c)[0]
        drop.extend(rng.permutation(rows)[keep:].tolist())
    return dataset.select(sorted(set(range(len(labels))) - set(drop)))


def recall_frame(
    predictions: Mapping[str, Sequence[int]], labels: Sequence[int], label_names: Sequence[str], rare: Sequence[int]
) -> pd.DataFrame:
    """One row per (training data, intent): the intent's recall on ``labels``, whether it was made rare, and its
    group ('rare intents' or 'common intents')."""
    labels = np.asarray(labels)
    missing = [label_names[c] for c in rare if not (labels == c).any()]
    if missing:
        raise ValueError(
            f"No examples of the rare intents {missing} to measure their recall on; use a split with them."
        )
    is_rare = np.isin(np.arange(len(label_names)), rare)
    frames = [
        pd.DataFrame(
            {
                "training data": name,
                "intent": list(label_names),
                "rare": is_rare,
                "group": np.where(is_rare, "rare intents", "common intents"),
                "recall": per_class_recall(pred, labels, len(label_names)),
            }
        )
        for name, pred in predictions.items()
    ]
    return pd.concat(frames, ignore_index=True)


def group_recall(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean recall of the rare and of the common intents, one row per training data (from ``recall_frame``)."""
    table = frame.pivot_table("recall", "training data", "group", aggfunc="mean", sort=False)
    return table[["rare intents", "common intents"]].rename_axis(columns=None)


def rare_only(predictions: Sequence[int], labels: Sequence[int], rare: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(predictions, labels) of the examples of a rare intent: scored (``intervals.scored``), their accuracy is the
    rare intents' pooled recall, which equals the mean of their recalls (``group_recall``) when each has as many
    examples."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    mask = np.isin(labels, rare)
    return predictions[mask], labels[mask]


# --- chat formatting: a support agent's reply per intent ------------------------------------------
SUPPORT_SYSTEM = "You are a friendly support agent for an online bank. Answer in two or three short sentences."
REPLIES = {  # one agent reply per core intent: enough to show formatting, not a knowledge base
    "card_arrival": "Sorry your card has not arrived yet. You can track its delivery in the app under Card, "
    "and if it is more than a week late I can order a replacement for you.",
    "lost_or_stolen_card": "I have frozen your card so nobody can use it. Please order a replacement in the app; "
    "we will also check your recent payments with you.",
    "exchange_rate": "We convert at the exchange rate shown in the app at the moment you pay. "
    "The app shows the rate before you confirm an exchange.",
    "top_up_failed": "I am sorry your top-up failed. Please check that the card you top up from is valid and "
    "has funds, then try again; failed top-ups are never charged.",
    "transfer_not_received_by_recipient": "Transfers can take up to a few working days. Please check the "
    "recipient's details in the app; if they are right, I can trace it.",
    "cash_withdrawal_charge": "Some cash withdrawals carry a fee, shown in the app under Fees. "
    "I can look up the charge on your withdrawal if you tell me the date.",
    "pin_blocked": "Your PIN is blocked after too many wrong tries. You can unblock it in the app under "
    "Card settings, or at any cash machine with your current PIN.",
    "Refund_not_showing_up": "Refunds usually appear within a few working days after the merchant sends them. "
    "If the merchant confirms it was sent over a week ago, I will investigate.",
    "change_pin": "You can change your PIN at most cash machines, or view your current PIN in the app "
    "under Card settings.",
    "declined_card_payment": "I am sorry your payment was declined. Please check your balance and that the card "
    "is not frozen in the app; then try again or tell me the merchant's name.",
}


def support_conversations(
    texts: Sequence[str], intents: Sequence[str], system: str | None = SUPPORT_SYSTEM
) -> list[list[dict[str, str]]]:
    """Turn (customer message, intent) pairs into chat conversations ending with the agent's reply."""
    conversations = []
    for text, intent in zip(texts, intents):
        reply = REPLIES.get(
            intent,
            f"Thanks for your message about {intent.replace('_', ' ')}. I will look into it and get back to you today.",
        )
        turns = [{"role": "user", "content": text}, {"role": "assistant", "content": reply}]
        conversations.append(([{"role": "system", "content": system}] if system else []) + turns)
    return conversations
