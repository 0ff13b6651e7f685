"""Prompt builders (zero-shot, engineered, few-shot, RAG, intent picking) and answer scoring.

Every builder returns a conversation (a list of chat messages) for
``helpers.generation.generate``. Scoring reads the figures an answer states
(``helpers.facts``): it is right when it states the short gold fact ("£7.40",
"7.40 pounds"), and it hallucinates when it states a figure its sources do not
hold, so a 135M-parameter model is judged on facts, not on its prose.
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence

from helpers import facts
from helpers.generation import Messages, generate, user_message
from helpers.knowledge import BANK_NAME, QA, Article, article_text, by_id
from helpers.retrieval import Index, search

ENGINEERED_SYSTEM = (
    f"You are the customer support assistant of {BANK_NAME}. Answer the customer's question "
    "in one short sentence that states the exact amount, time or name. "
    f"If you do not know {BANK_NAME}'s policy, reply: I don't know."
)
RAG_SYSTEM = (
    f"You are the customer support assistant of {BANK_NAME}. Answer the question in one short "
    "sentence, copying the exact amount, time or name from the policy articles. "
    "If the articles do not say, reply: I don't know."
)
ABSTAIN_PATTERNS = (
    "i don't know",
    "i do not know",
    "i'm not sure",
    "i am not sure",
    "not able to provide",
    "unable to provide",
    "don't have access",
    "do not have access",
    "don't have information",
    "do not have information",
    "cannot provide",
    "can't provide",
    "i cannot answer",
    "no information",
    "articles do not say",
    "not specified",
    "not mentioned",
)


# --- prompts -------------------------------------------------------------------
def zero_shot(question: str) -> Messages:
    """The bare question, as a customer would type it, with only the bank's name for context."""
    return user_message(f"Question for {BANK_NAME}: {question}")


def engineered(question: str) -> Messages:
    """The question with a system prompt: role, format (one sentence, exact figure) and permission to abstain."""
    return user_message(question, system=ENGINEERED_SYSTEM)


def few_shot(question: str, examples: Sequence[QA], system: str = ENGINEERED_SYSTEM) -> Messages:
    """The engineered prompt plus worked examples as earlier chat turns (question -> short answer)."""
    turns: Messages = [{"role": "system", "content": system}]
    for ex in examples:
        turns += [{"role": "user", "content": ex["question"]}, {"role": "assistant", "content": ex["answer"]}]
    return turns + [{"role": "user", "content": question}]


def rag(question: str, passages: Sequence[Article | str]) -> Messages:
    """The question after the retrieved policy articles, with instructions to answer from them only."""
    texts = [p if isinstance(p, str) else article_text(p) for p in passages]
    context = "\n".join(f"- {t}" for t in texts)
    return user_message(f"Policy articles:\n{context}\n\nQuestion: {question}", system=RAG_SYSTEM)


def rag_prompts(questions: Sequence[str], index: Index, articles: Sequence[Article], k: int = 3) -> list[Messages]:
    """One RAG conversation per question, holding the ``articles`` of its top ``k`` hits in ``index``."""
    known = by_id(articles)
    return [
        rag(question, [known[article_id] for article_id, _, _ in hits])
        for question, hits in zip(questions, search(index, questions, k))
    ]


def pick_examples(train: Sequence[QA], k: int, exclude_article: str | None = None, seed: int = 0) -> list[QA]:
    """``k`` training pairs from distinct articles (never ``exclude_article``, so no answer leaks)."""
    pool = [q for q in train if q["article_id"] != exclude_article]
    random.Random(seed).shuffle(pool)
    chosen, seen = [], set()
    for q in pool:
        if q["article_id"] not in seen:
            chosen.append(q)
            seen.add(q["article_id"])
        if len(chosen) == k:
            break
    return chosen


# --- scoring -------------------------------------------------------------------
def fold_for_matching(text: str) -> str:
    """Lower case; curly apostrophes, hyphens and non-breaking spaces made plain; runs of spaces to one.

    What ``contains_gold`` and ``is_abstention`` compare; punctuation stays ("£7.40", "12:30").
    """
    text = text.lower().replace("\u2019", "'").replace("-", " ").replace("\u00a0", " ")
    return re.sub(r"\s+", " ", text).strip()


def contains_gold(reply: str, gold: str) -> bool:
    """True if ``reply`` states ``gold`` as a whole value: '£5' matches '£5.' and '£5 fee', not '£50' or '£5.90'."""
    pattern = r"(?<![\w.,])" + re.escape(fold_for_matching(gold)) + r"(?![\d]|[.,]\d)"
    return re.search(pattern, fold_for_matching(reply)) is not None


def share_stating(replies: Sequence[str], value: str) -> float:
    """Share of ``replies`` that state ``value`` (as ``contains_gold`` judges it); 0 when there are none."""
    return sum(contains_gold(r, value) for r in replies) / max(1, len(replies))


def answer_tokens(text: str) -> list[str]:
    """Word and number tokens; an amount, a time or a share stays one token ("£7.40", "12:30", "50%")."""
    return re.findall(r"[£$€]?\d+(?:[.,:]\d+)*%?|\w+", fold_for_matching(text))  # "£7.40." keeps no full stop


def word_tokens(text: str) -> list[str]:
    """Runs of lower-case letters and digits: "£7.40" is "7" and "40"; for comparing prose, not figures."""
    return re.findall(r"[a-z0-9]+", text.lower())


def token_f1(reply: str, gold: str, tokenize: Callable[[str], list[str]] = answer_tokens) -> float:
    """SQuAD-style token F1 between reply and gold (0..1): partial credit for overlapping tokens."""
    pred, ref = tokenize(reply), tokenize(gold)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def is_abstention(reply: str) -> bool:
    """True when the reply declines to answer ("I don't know", "I'm not sure", ...)."""
    text = fold_for_matching(reply)
    return any(p in text for p in ABSTAIN_PATTERNS)


def score_answer(
    reply: str, gold: str, sources: Sequence[str] = (), question: str = ""
) -> dict[str, float | bool | str]:
    """{'correct', 'f1', 'abstained', 'hallucinated', 'kind'} from ``facts.judge`` against ``sources``.

    correct: the reply states the gold fact (any spelling of it); hallucinated: it states a fact (amount, time,
    limit, duration) that neither ``sources`` (the knowledge-base texts it could draw on) nor the question holds;
    abstained: it declines ("I don't know") and states no fact. With no sources, only the gold fact counts as known.
    """
    verdict = facts.judge(reply, gold, sources, question)
    return {
        "correct": verdict.right_fact,
        "f1": token_f1(reply, gold),
        "abstained": verdict.kind == "no fact" and is_abstention(reply),
        "hallucinated": verdict.hallucinated,
        "kind": verdict.kind,
    }


def score_answers(
    replies: Sequence[str],
    golds: Sequence[str],
    sources: Sequence[Sequence[str]] | None = None,
    questions: Sequence[str] | None = None,
) -> dict[str, float]:
    """Mean accuracy (right fact), hallucination rate, abstention rate and token F1 over a set of answers.

    ``sources``: per reply, the knowledge-base texts it could draw on (see ``score_answer``); ``questions``: per
    reply, the question it answers (a figure repeated from it is not invented).
    """
    if len(replies) != len(golds):
        raise ValueError(f"{len(replies)} replies but {len(golds)} gold answers; pass one gold per reply.")
    sources = sources if sources is not None else [()] * len(replies)
    questions = questions if questions is not None else [""] * len(replies)
    if len(sources) != len(replies) or len(questions) != len(replies):
        raise ValueError(f"{len(replies)} replies: pass one list of sources and one question per reply.")
    rows = [score_answer(r, g, s, q) for r, g, s, q in zip(replies, golds, sources, questions)]
    n = max(1, len(rows))
    return {
        "accuracy": sum(r["correct"] for r in rows) / n,
        "hallucination_rate": sum(r["hallucinated"] for r in rows) / n,
        "abstention_rate": sum(r["abstained"] for r in rows) / n,
        "token_f1": sum(r["f1"] for r in rows) / n,
    }


def timed_generate(
    model, tokenizer, conversations: Sequence[Messages], max_new_tokens: int = 32, batch_size: int = 8
) -> tuple[list[str], float]:
    """(greedy replies, seconds per answer) for a batch of conversations."""
    start = time.perf_counter()
    replies = generate(model, tokenizer, conversations, max_new_tokens=max_new_tokens, batch_size=batch_size)
    return replies, (time.perf_counter() - start) / max(1, len(conversations))


def evaluate_prompts(
    model,
    tokenizer,
    conversations: Sequence[Messages],
    golds: Sequence[str],
    max_new_tokens: int = 32,
    batch_size: int = 8,
    sources: Sequence[Sequence[str]] | None = None,
    questions: Sequence[str] | None = None,
) -> tuple[list[str], dict[str, float]]:
    """(replies, scores + 'seconds_per_answer') for one way of prompting, on questions with gold answers.

    ``sources`` and ``questions`` go to ``score_answers``: what each reply may state without inventing it.
    """
    replies, seconds = timed_generate(model, tokenizer, conversations, max_new_tokens, batch_size)
    return replies, {**score_answers(replies, golds, sources, questions), "seconds_per_answer": seconds}


def qa_conversation(qa: QA) -> Messages:
    """A training conversation for fine-tuning: the bare (zero-shot) question, then the short gold answer."""
    return zero_shot(qa["question"]) + [{"role": "assistant", "content": qa["answer"]}]
