"""Catastrophic forgetting: a general-ability probe, a narrow bank task, and replay as a remedy.

The probe (data/general_probe/) holds general-knowledge questions that the
base SmolLM2-135M-Instruct answers correctly, plus general English text for
perplexity. The narrow task: name a banking77 query's intent in words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from helpers import data, generation, intervals, lm, paths

PROBE_DIR = paths.DATA_DIR / "general_probe"
Messages = list[dict[str, str]]
Recipe = tuple[str, float, list[Messages]]  # (method, learning rate, conversations)


def load_probe(n: int | None = None) -> list[dict[str, Any]]:
    """General-knowledge questions with accepted answers: [{'question', 'answers'}] (first ``n``)."""
    return data.read_jsonl(PROBE_DIR / "questions.jsonl")[:n]


def load_replay() -> list[dict[str, str]]:
    """General question-answer pairs for replay (none of them is a probe question): [{'question', 'answer'}]."""
    return data.read_jsonl(PROBE_DIR / "replay.jsonl")


def load_general_text() -> list[str]:
    """Paragraphs of plain general English (not about banking), for perplexity."""
    text = (PROBE_DIR / "general_text.txt").read_text(encoding="utf-8")
    return [p.strip() for p in text.split("\n\n") if p.strip()]


def intent_phrase(intent: str) -> str:
    """A banking77 intent name as words: 'Refund_not_showing_up' -> 'refund not showing up'."""
    return intent.replace("_", " ").lower()


def domain_examples(split: str, per_class: int | None, intents: Sequence[str], seed: int = 0) -> list[dict]:
    """banking77 queries with their intent phrase: [{'text', 'intent'}]."""
    return _examples(data.load_banking77(split, per_class=per_class, intents=intents, seed=seed))


def domain_splits(
    train_per_class: int, val_per_class: int, intents: Sequence[str], seed: int = 0
) -> tuple[list[dict], list[dict]]:
    """(training, validation) bank-task examples, disjoint and stratified, both from banking77's training split."""
    pool = data.load_banking77("train", per_class=train_per_class + val_per_class, intents=intents, seed=seed)
    train, val = data.stratified_split(pool, test_size=val_per_class * len(intents), seed=seed)
    return _examples(train), _examples(val)


def _examples(ds) -> list[dict]:
    names = ds.features["label"].names
    return [{"text": t, "intent": intent_phrase(names[y])} for t, y in zip(ds["text"], ds["label"])]


def domain_conversations(examples: Sequence[dict]) -> list[Messages]:
    """The narrow task as chat: the customer's query, the assistant names its intent."""
    return [[{"role": "user", "content": e["text"]}, {"role": "assistant", "content": e["intent"]}] for e in examples]


def replay_conversations(pairs: Sequence[dict]) -> list[Messages]:
    """General question-answer pairs as chat conversations."""
    return [[{"role": "user", "content": p["question"]}, {"role": "assistant", "content": p["answer"]}] for p in pairs]


def mentions_any(reply: str, answers: Sequence[str]) -> bool:
    """True when any accepted answer appears in ``reply`` as whole words (case-insensitive)."""
    text = reply.lower()
    return any(re.search(r"\b" + re.escape(a.lower()) + r"\b", text) for a in answers)


def words_only(text: str) -> str:
    """Lower case, punctuation dropped, spaces squeezed (for exact-match scoring)."""
    return " ".join(re.sub(r"[^a-z0-9 ]+", " ", text.lower().replace("_", " ")).split())


def probe_accuracy(model, tokenizer, probe: Sequence[dict], max_new_tokens: int = 24) -> tuple[float, list[str]]:
    """(share of probe questions answered correctly, the replies), greedy decoding (``mentions_any`` per reply)."""
    replies = generation.generate(
        model,
        tokenizer,
        [generation.user_message(q["question"]) for q in probe],
        max_new_tokens=max_new_tokens,
        batch_size=16,
    )
    hits = [mentions_any(r, q["answers"]) for r, q in zip(replies, probe)]
    return sum(hits) / len(hits), replies


def domain_replies(model, tokenizer, examples: Sequence[dict]) -> list[str]:
    """The model's reply to each bank query, greedy, after ``words_only`` (compare with ``words_only(intent)``)."""
    replies = generation.generate(
        model, tokenizer, [generation.user_message(e["text"]) for e in examples], max_new_tokens=8, batch_size=16
    )
    return [words_only(r) for r in replies]


def domain_right(model, tokenizer, examples: Sequence[dict]) -> list[int]:
    """1 per held-out query whose reply is exactly the intent phrase (after ``words_only``), else 0."""
    replies = domain_replies(model, tokenizer, examples)
    return [int(r == words_only(e["intent"])) for r, e in zip(replies, examples)]


def domain_accuracy(model, tokenizer, examples: Sequence[dict]) -> float:
    """Share of held-out queries whose reply is exactly the intent phrase (after ``words_only``)."""
    right = domain_right(model, tokenizer, examples)
    return sum(right) / len(right)


def general_perplexity(model, tokenizer, texts: Sequence[str], max_length: int = 128) -> float:
    """Perplexity on general English text (lower = the model still writes ordinary English well)."""
    return lm.perplexity(model, lm.text_examples(texts, tokenizer, max_length), tokenizer)


@dataclass
class Suite:
    """What every model is measured on while we compare methods: the bank task's validation queries and the
    general probe. The bank task's test queries are scored once, at the end (``final_scores``)."""

    domain_val: list[dict]
    probe: list[dict]
    general_text: list[str]
    text_max_length: int = 128


METRICS = ("domain_accuracy", "probe_accuracy", "general_perplexity")


def measure(model, tokenizer, suite: Suite) -> dict[str, Any]:
    """Validation domain accuracy, general-probe accuracy and general-text perplexity of one model, which probe
    questions it got right (``probe_right``, 1/0 per question, for paired intervals) and its replies to them."""
    _, replies = probe_accuracy(model, tokenizer, suite.probe)
    right = [int(mentions_any(r, q["answers"])) for r, q in zip(replies, suite.probe)]
    return {
        "domain_accuracy": domain_accuracy(model, tokenizer, suite.domain_val),
        "probe_accuracy": sum(right) / len(right),
        "general_perplexity": general_perplexity(model, tokenizer, suite.general_text, suite.text_max_length),
        "probe_right": right,
        "probe_replies": replies,
    }


def probe_replies(suite: Suite, before: dict[str, Any], runs: pd.DataFrame, n: int = 6) -> pd.DataFrame:
    """The first ``n`` probe questions with the replies of the untuned model and of each method (first seed)."""
    first = runs[runs["seed"] == runs["seed"].iloc[0]]
    table = {"question": [q["question"] for q in suite.probe], "before tuning": before["probe_replies"]}
    table.update(zip(first["method"], first["probe_replies"]))
    return pd.DataFrame(table).head(n).set_index("question")


def final_scores(tuned: dict[str, tuple[Any, Any]], examples: Sequence[dict]) -> dict[str, dict]:
    """The final score, once: each (model, tokenizer)'s bank-task accuracy on ``examples`` (the test queries), as
    ``intervals.scored`` rows (accuracy, 95% bootstrap interval, right/wrong per query)."""
    references = [words_only(e["intent"]) for e in examples]
    return {name: intervals.scored(domain_replies(m, tok, examples), references) for name, (m, tok) in tuned.items()}


def plot_tradeoff(table: pd.DataFrame, ax=None, title: str = "What each method gained and lost"):
    """Scatter of domain gain (y) against general-probe accuracy lost (x), one labelled point per method."""
    ax = ax if ax is not None else plt.subplots(figsize=(6.5, 4.5))[1]
    for name, row in table.iterrows():
        ax.scatter(row["probe_accuracy_lost"], row["domain_gain"], s=80)
        ax.annotate(
            f"{name}\n(ppl {row['perplexity_rise']:+.0%})",
            (row["probe_accuracy_lost"], row["domain_gain"]),
            textcoords="offset points",
            xytext=(8, 4),
            fontsize=9,
        )
    ax.axvline(0, color="grey", lw=0.8)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set(
        xlabel="general-probe accuracy lost (points; right = more forgetting)",
        ylabel="bank-task accuracy gained",
        title=title,
    )
    ax.xaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
    ax.yaxis.set_major_formatter(plt.matplotlib.ticker.PercentFormatter(1.0))
    return ax


def plan_for(p) -> dict[str, Any]:
    """This notebook's forgetting-experiment sizes for profile ``p`` (a helpers.runtime.Profile)."""
    return {
        "train_per_class": p.pick(smoke=8, workshop=16, full=40),
        "test_per_class": p.pick(smoke=3, workshop=5, full=10),
        "val_per_class": p.pick(smoke=3, workshop=5, full=10),  # bank-task validation, from banking77 train
        "min_gain": 0.2,  # bank-task validation gain both methods need before their forgetting is compared
        # 32 questions, not 16: at 16 the interval on replay's gap over plain full fine-tuning was too wide to tell
        # them apart. Replies are generated 16 at a time: 32 costs smoke one more batch per model.
        "n_probe": p.pick(smoke=32, workshop=32, full=38),
        # Chosen on validation (smoke, seed 0), LoRA r=8 on the attention projections: in 12 steps it gains most on
        # the bank task at the largest rate tried (5e-3), which keeps no less of the probe than 3e-3; more steps or
        # all linear layers did not do better, and full fine-tuning at 2e-4 gains more in the same steps. Every
        # LoRA setting echoed the question in a few words ("Greece" for Greece's capital) as soon as it learned the
        # task's format, so at these budgets LoRA forgets at least as much as full fine-tuning.
        "steps": p.pick(smoke=12, workshop=16, full=120),
        "batch_size": 8,
        "max_length": p.pick(smoke=64, workshop=64, full=96),
        "lr_full": 2e-4,
        "lr_lora": p.pick(smoke=5e-3, workshop=3e-3, full=1e-3),
        "lora_rank": 8,
        "replay_share": 0.25,
        # What the LoRA-versus-full check asks for: "full forgot more than LoRA" (the design's claim, for the long
        # training of the full profile) or, at the short budgets, that LoRA did not forget measurably less.
        "lora_forgets_less": p.pick(smoke=False, workshop=False, full=True),
    }
