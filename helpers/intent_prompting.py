"""Classifying a message by prompting a chat model with the list of intents (zero- or few-shot)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from helpers.generation import Messages
from helpers.prompting import fold_for_matching, timed_generate


def readable(intent: str) -> str:
    """A banking77 intent name as words: 'card_arrival' -> 'card arrival'."""
    return intent.replace("_", " ").replace("?", "").lower()


def intent_prompt(query: str, intents: Sequence[str], examples: Sequence[tuple[str, str]] = ()) -> Messages:
    """Ask the chat model to label ``query`` with one of ``intents`` (few-shot when ``examples`` are given)."""
    options = "\n".join(f"- {readable(i)}" for i in intents)
    system = f"Classify the bank customer's message. Reply with exactly one label from this list:\n{options}"
    turns: Messages = [{"role": "system", "content": system}]
    for text, label in examples:
        turns += [{"role": "user", "content": text}, {"role": "assistant", "content": readable(label)}]
    return turns + [{"role": "user", "content": query}]


def parse_intent(reply: str, intents: Sequence[str]) -> int:
    """Index of the intent the reply names (exact label first, then most shared words); -1 if none."""
    text = fold_for_matching(readable(reply))
    names = [readable(i) for i in intents]
    exact = [i for i, n in enumerate(names) if n in text]
    if exact:
        return max(exact, key=lambda i: len(names[i]))  # the longest label mentioned wins
    words = set(re.findall(r"\w+", text))
    overlap = [len(words & set(n.split())) / len(n.split()) for n in names]
    best = max(range(len(names)), key=overlap.__getitem__)
    return best if overlap[best] > 0 else -1


def classify_by_prompting(
    model,
    tokenizer,
    texts: Sequence[str],
    intents: Sequence[str],
    examples: Sequence[tuple[str, str]] = (),
    batch_size: int = 8,
) -> tuple[list[int], float]:
    """(predicted intent index per text, -1 when unparseable; seconds per query) from the chat model."""
    conversations = [intent_prompt(t, intents, examples) for t in texts]
    replies, seconds = timed_generate(model, tokenizer, conversations, max_new_tokens=10, batch_size=batch_size)
    return [parse_intent(r, intents) for r in replies], seconds
