"""Notebook 06's SFT examples: its conversations tokenised with the prompt masked out of the loss, and a token-by-token
view of that mask."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from helpers.lessons.instruction_tuning import TASKS, build_conversations
from helpers.lm import IGNORE_INDEX, chat_examples


def sft_dataset(
    rows: Sequence[dict[str, Any]],
    tokenizer,
    tasks: Sequence[str] = TASKS,
    max_length: int = 128,
    assistant_only: bool = True,
):
    """Tokenised SFT examples (chat template; prompt tokens masked to -100 when ``assistant_only``)."""
    return chat_examples(build_conversations(rows, tasks), tokenizer, max_length, assistant_only=assistant_only)


def masked_labels(example: dict[str, list[int]], tokenizer) -> pd.DataFrame:
    """Token by token: the text piece, its id and its label (-100 = not in the loss)."""
    pieces = [tokenizer.decode([i]) for i in example["input_ids"]]
    return pd.DataFrame(
        {
            "token": [repr(p)[1:-1] for p in pieces],
            "input_id": example["input_ids"],
            "label": example["labels"],
            "in_loss": [lab != IGNORE_INDEX for lab in example["labels"]],
        }
    )
