"""Notebook 08's scoring: a row per message (facts read by ``helpers.facts``), the scoreboard, and the whole
assistant against each part alone, with paired intervals."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from helpers import facts, intervals, knowledge
from helpers.lessons import instruction_tuning
from helpers.lessons.capstone import Turn


def score(
    turns: Sequence[Turn], questions: Sequence[dict], articles: Sequence[knowledge.Article] | None = None
) -> pd.DataFrame:
    """One row per message: right intent, right fact, hallucinated, voice rules met, usable, escalated, seconds.

    Facts are read by ``helpers.facts``: right_fact = the reply states the gold fact; hallucinated = it states a
    figure that neither the policy answering the question, nor the article put into its prompt, nor the message
    holds. usable = all three at once (right fact, nothing invented, every voice rule): a reply the bank could send
    as it is. An escalated message gets the hand-over reply: no fact, right or invented, so it is never usable.
    """
    known = knowledge.by_id(articles or knowledge.load_articles())
    shown = [[t.article_id] if t.article_id else [] for t in turns]
    sources = knowledge.answer_sources(questions, list(known.values()), shown)
    rows = []
    for t, q, texts in zip(turns, questions, sources):
        verdict = facts.judge("" if t.escalated else t.reply, q["answer"], texts, q["question"])
        voice_ok = instruction_tuning.follows_voice(t.reply)
        rows.append(
            {
                "id": q["id"],
                "message": t.message,
                "intent": t.intent,
                "right_intent": t.intent in q["gold_intents"] if t.intent else None,
                "right_fact": verdict.right_fact,
                "hallucinated": verdict.hallucinated,
                "fact_kind": verdict.kind,
                "verdict": verdict,
                "voice_ok": voice_ok,
                "usable": verdict.right_fact and not verdict.hallucinated and voice_ok,
                "escalated": t.escalated,
                "seconds": t.seconds,
                "reply": t.reply,
                "gold": q["answer"],
            }
        )
    return pd.DataFrame(rows)


def scoreboard(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per system: intent accuracy, fact accuracy, hallucination rate, voice-rule rate, usable-reply rate,
    escalation rate, seconds per message."""
    rows = {
        name: {
            "right intent": f["right_intent"].dropna().astype(float).mean()
            if f["right_intent"].notna().any()
            else float("nan"),
            "right facts": f["right_fact"].mean(),
            "hallucinated": f["hallucinated"].mean(),
            "voice rules met": f["voice_ok"].mean(),
            "usable replies": f["usable"].mean(),
            "escalated": f["escalated"].mean(),
            "seconds per message": f["seconds"].mean(),
        }
        for name, f in frames.items()
    }
    return pd.DataFrame(rows).T


def answered_verdicts(frames: dict[str, pd.DataFrame]) -> dict[str, list[facts.Verdict]]:
    """Per system, the fact verdicts of the messages it answered itself (escalated ones state nothing)."""
    return {name: list(f.loc[~f["escalated"].astype(bool), "verdict"]) for name, f in frames.items()}


def strongest_part(board: pd.DataFrame, whole: str, measure: str = "right facts") -> str:
    """The single part highest on ``measure`` of a ``scoreboard``; ties go to more right facts, then to fewer
    hallucinations."""
    if measure not in board:
        raise ValueError(f"No column {measure!r} on the scoreboard; it has {', '.join(board.columns)}.")
    parts = board.drop(index=whole)
    ranked = sorted(
        parts.index,
        key=lambda n: (-parts.loc[n, measure], -parts.loc[n, "right facts"], parts.loc[n, "hallucinated"]),
    )
    return ranked[0]


def gaps(frames: dict[str, pd.DataFrame], whole: str, measure: str = "right_fact") -> dict[str, intervals.Interval]:
    """Per part: the ``whole`` system's rate on ``measure`` minus the part's, on the same messages, with a paired
    bootstrap interval (positive: the whole is ahead)."""
    if whole not in frames:
        raise ValueError(f"No system {whole!r} among {', '.join(frames)}.")
    ours = frames[whole][measure].astype(float).to_numpy()
    return {
        name: intervals.paired_difference(ours, f[measure].astype(float).to_numpy())
        for name, f in frames.items()
        if name != whole
    }
