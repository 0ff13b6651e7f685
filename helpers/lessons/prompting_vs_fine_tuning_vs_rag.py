"""Notebook 03's scaffolding: its sizes per profile, the scope of facts a run covers, a table of answers, the RAG
prompt styles it chooses between on validation, and its fine-tune seeds."""

from __future__ import annotations

import random
from collections.abc import Sequence

import matplotlib.pyplot as plt
import pandas as pd

from helpers import facts, knowledge, prompting
from helpers.generation import Messages, generate, user_message
from helpers.intervals import mean_interval
from helpers.knowledge import BANK_NAME, QA, Article, article_text, by_id
from helpers.plots import plot_interval_bars
from helpers.retrieval import Index, search
from helpers.runtime import Profile
from helpers.seeds import for_profile


def experiment_sizes(p: Profile) -> dict[str, int | float | bool]:
    """Notebook 03's knobs for profile ``p``: fine-tune data, passes and learning rate, intent queries, answer length.

    A fine-tune memorises a fact only after many passes over it: on a CPU profile the run covers a scope of
    ``scope_facts`` facts drawn at random before any question is scored (``fact_scope``), with enough passes (12
    at 3e-3) for it to answer most of its own training questions (the notebook reports how many); the full
    profile covers every fact.
    """
    return {
        "scope_facts": p.pick(smoke=p.n_generate, workshop=p.n_generate, full=None),
        "ft_epochs": p.pick(smoke=12, workshop=12, full=15),
        "ft_learning_rate": 3e-3,
        "lora_rank": 16,
        "intent_queries_per_class": p.pick(smoke=2, workshop=4, full=10),
        "max_new_tokens": p.pick(smoke=24, workshop=32, full=40),
        "validation_questions": p.pick(smoke=0, workshop=0, full=40),
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


# --- the RAG prompt, chosen on validation ----------------------------------------------------------------------------
WRITER_SYSTEM = (
    f"You are the customer support assistant of {BANK_NAME}. Answer from these policy articles, stating the exact "
    "amount, time or name."
)
RAG_STYLES = ("instruction", "writer")


def rag_conversation(question: str, passages: Sequence[Article], style: str = "writer") -> Messages:
    """A RAG prompt in one of two ``style``s: 'instruction' (``prompting.rag``: articles and question in the user's
    turn, with leave to say "I don't know") or 'writer' (the articles in the system message and the question as
    the customer typed it, as notebook 08's writer reads its policy)."""
    if style not in RAG_STYLES:
        raise ValueError(f"style must be one of {RAG_STYLES}, not {style!r}.")
    if style == "instruction":
        return prompting.rag(question, passages)
    context = "\n".join(f"- {article_text(p)}" for p in passages)
    return user_message(question, system=f"{WRITER_SYSTEM}\n{context}")


def rag_prompts(
    questions: Sequence[str], index: Index, articles: Sequence[Article], k: int = 3, style: str = "writer"
) -> list[Messages]:
    """One RAG conversation per question in ``style``, holding the ``articles`` of its top ``k`` hits."""
    known = by_id(articles)
    return [
        rag_conversation(question, [known[article_id] for article_id, _, _ in hits], style)
        for question, hits in zip(questions, search(index, questions, k))
    ]


def rag_candidates(p: Profile) -> list[tuple[str, int]]:
    """The (style, top k) pairs compared on validation; the first is used where there is no comparison. Smoke and
    workshop keep the instruction prompt with 3 articles: a handful of validation questions is too few to choose
    on (the writer prompt with the top article once won on validation, lost on the held-out questions and stopped
    quoting the changed limit), so only the full profile compares them, on its own validation questions."""
    grid = [("instruction", 3), ("writer", 3), ("writer", 1), ("instruction", 1)]
    return p.pick(smoke=grid[:1], workshop=grid[:1], full=grid)


def validation_questions(train: Sequence[QA], n: int | None, seed: int = 0) -> list[QA]:
    """The prompt-choice questions: ``n`` training questions (the base model never saw them and no held-out
    question is among them; the fine-tune's use of them does not matter, as the choice is made with the base model)."""
    return knowledge.sample_questions(train, n, seed)


# --- seeds ------------------------------------------------------------------------------------------------------------
def seeds(p: Profile) -> list[int]:
    """Fine-tune seeds by the usual policy (``for_profile``): one in smoke (a second would double its longest
    cell), two in workshop, three in full."""
    return for_profile(p)


def fine_tune_rows(scores: dict[str, dict], stale_replies: Sequence[str], old: str, new: str) -> list[dict]:
    """One seed's rows for the fine-tuned approaches: held-out accuracy and hallucination rate of 'LoRA fine-tune'
    and 'RAG + fine-tune' (``scores`` as ``prompting.evaluate_prompts`` gives them), and the share of the stale
    fine-tune's ``stale_replies`` about the changed fact that state the ``old`` and the ``new`` value."""
    rows = [
        {"approach": m, "accuracy": scores[m]["accuracy"], "hallucination rate": scores[m]["hallucination_rate"]}
        for m in ("LoRA fine-tune", "RAG + fine-tune")
    ]
    rows[0] |= {
        "says old value": prompting.share_stating(stale_replies, old),
        "says new value": prompting.share_stating(stale_replies, new),
    }
    return rows


def fine_tune_seed(model, tokenizer, prompts: dict[str, list], stale_prompts: list, judge: dict, size: int) -> dict:
    """Scores of one more fine-tuned ``model``: replies to ``prompts`` ('LoRA fine-tune' and 'RAG + fine-tune'
    conversations) scored with ``judge`` (golds, sources per approach, questions) and its replies to
    ``stale_prompts``; ``size``: max new tokens. Returns {'scores', 'stale'} for ``fine_tune_rows``."""
    scores = {
        m: prompting.evaluate_prompts(
            model, tokenizer, convs, judge["golds"], size, sources=judge["sources"][m], questions=judge["questions"]
        )[1]
        for m, convs in prompts.items()
    }
    return {"scores": scores, "stale": generate(model, tokenizer, stale_prompts, size)}


def compare_rag_prompts(
    model, tokenizer, val: Sequence[QA], index: Index, articles: Sequence[Article], candidates, max_new_tokens: int
) -> pd.DataFrame:
    """Per (style, top k) candidate: the base model's RAG scores (``prompting.evaluate_prompts``) on the validation
    questions ``val``, indexed by (style, k)."""
    texts, golds = [q["question"] for q in val], [q["answer"] for q in val]
    rows = {}
    for style, k in candidates:
        shown = [[hit[0] for hit in hits] for hits in search(index, texts, k)]
        rows[(style, k)] = prompting.evaluate_prompts(
            model,
            tokenizer,
            rag_prompts(texts, index, articles, k, style),
            golds,
            max_new_tokens,
            sources=knowledge.answer_sources(val, articles, shown),
            questions=texts,
        )[1]
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis(["style", "top k"])


def interval_bars(verdicts: dict, title: str = ""):
    """Grouped bars of each method's right-fact and hallucination rates with their 95% bootstrap intervals over
    the questions as error bars."""
    rows = [
        {"method": m, "metric": name, "share": iv.estimate, "low": iv.low, "high": iv.high}
        for m, vs in verdicts.items()
        for name, measure in (("held-out accuracy", "right_fact"), ("hallucination rate", "hallucinated"))
        for iv in [mean_interval([getattr(v, measure) for v in vs])]
    ]
    ax = plt.subplots(figsize=(9, 4))[1]
    plot_interval_bars(pd.DataFrame(rows), "method", "share", "low", "high", "metric", ax, title, percent=True)
    ax.tick_params(axis="x", labelrotation=20)
    ax.set(ylim=(0, 1.1), xlabel="", ylabel="")
    ax.legend(fontsize=8)
    return ax
