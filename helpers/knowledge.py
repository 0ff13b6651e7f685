"""Northwind Bank's knowledge base: policy articles, question-answer pairs, and policy changes.

The bank is fictional: every fee, day count and phone number was invented for
this workbook, so no pre-trained model can know them. Files live in
``data/bank_kb/`` (see its README for the schema).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from pathlib import Path

from helpers.data import read_jsonl
from helpers.paths import DATA_DIR

KB_DIR = DATA_DIR / "bank_kb"
BANK_NAME = "Northwind Bank"
QA_SPLITS = ("train", "heldout")

Article = dict  # {"id", "title", "intents", "text"}
QA = dict  # {"id", "question", "answer", "article_id", "fact_id"}


def load_articles(kb_dir: str | Path | None = None) -> list[Article]:
    """The policy articles, in id order: dicts with id, title, intents (banking77 names) and text."""
    return read_jsonl(Path(kb_dir or KB_DIR) / "articles.jsonl")


def load_qa(split: str, kb_dir: str | Path | None = None) -> list[QA]:
    """Question-answer pairs of ``split`` ('train' or 'heldout'): question, short gold answer, source article."""
    if split not in QA_SPLITS:
        raise ValueError(f"split must be one of {QA_SPLITS}, not {split!r}.")
    return read_jsonl(Path(kb_dir or KB_DIR) / f"qa_{split}.jsonl")


def by_id(articles: Sequence[Article]) -> dict[str, Article]:
    """Articles keyed by their id."""
    return {a["id"]: a for a in articles}


def article_text(article: Article) -> str:
    """The text a retriever indexes and a prompt quotes: title, then body."""
    return f"{article['title']}. {article['text']}"


def evidence_sentence(article: Article, answer: str) -> str:
    """The sentence of ``article`` that states ``answer`` (the first one containing it)."""
    for sentence in re.split(r"(?<=[.!?])\s+", article["text"]):
        if answer.lower() in sentence.lower():
            return sentence
    raise ValueError(f"Answer {answer!r} does not appear in article {article['id']}.")


def sample_questions(qa: Sequence[QA], n: int | None, seed: int = 0) -> list[QA]:
    """``n`` questions drawn reproducibly (all of them when n is None or too large), in file order."""
    if n is None or n >= len(qa):
        return list(qa)
    keep = set(random.Random(seed).sample(range(len(qa)), n))
    return [q for i, q in enumerate(qa) if i in keep]


def intent_articles(articles: Sequence[Article]) -> dict[str, list[str]]:
    """banking77 intent -> ids of the articles that answer it."""
    index: dict[str, list[str]] = {}
    for a in articles:
        for intent in a["intents"]:
            index.setdefault(intent, []).append(a["id"])
    return index


def apply_policy_change(
    articles: Sequence[Article], qa: Sequence[QA], article_id: str, old: str, new: str
) -> tuple[list[Article], list[QA]]:
    """Copies of the articles and QA pairs with ``old`` replaced by ``new`` in one article and its answers.

    This is what happens when the bank changes a fee or a delivery time: the
    knowledge base is edited in one place; the gold answers follow.
    """
    known = by_id(articles)
    if article_id not in known:
        raise ValueError(f"No article {article_id!r}; ids run from {articles[0]['id']} to {articles[-1]['id']}.")
    if old not in known[article_id]["text"]:
        raise ValueError(f"{old!r} does not appear in article {article_id}; copy the value exactly as written there.")
    new_articles = [dict(a, text=a["text"].replace(old, new)) if a["id"] == article_id else dict(a) for a in articles]
    new_qa = [dict(q, answer=new) if q["article_id"] == article_id and q["answer"] == old else dict(q) for q in qa]
    return new_articles, new_qa


def answer_sources(
    questions: Sequence[QA], articles: Sequence[Article], shown: Sequence[Sequence[str]] | None = None
) -> list[list[str]]:
    """Per question, the knowledge-base texts an answer may state facts from (for ``helpers.facts.judge``).

    Always the article that answers it (what the bank's knowledge base says); with ``shown``, also the articles
    put into that question's prompt (RAG's retrieved ids), so a figure read from a wrong article is no invention.
    """
    known = by_id(articles)
    shown = shown if shown is not None else [[] for _ in questions]
    if len(shown) != len(questions):
        raise ValueError(f"{len(questions)} questions but {len(shown)} lists of shown articles; pass one per question.")
    return [
        [article_text(known[q["article_id"]])] + [article_text(known[i]) for i in ids if i != q["article_id"]]
        for q, ids in zip(questions, shown)
    ]
