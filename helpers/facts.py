"""Facts stated in an answer, measured: extract amounts, percentages, times, durations and counts, normalise them,
and compare them with the knowledge base the answer could have used.

A **hallucination** is an answer that states a fact (a fee, an amount, a time, a limit, a duration) that none of its
sources holds: not the question, not the knowledge-base article that answers it, not the passages retrieved into
its prompt. "£5", "5 GBP" and "5.00 pounds" are one value; "2 hours" is "120 minutes" and "two weeks" is "14 days";
"3 business days" is "3 working days" is "3 days" (the unit family counts, not the wording). A name ("Mastercard")
is no fact here: the scorer reads figures, so its hallucination rate is a floor, not a ceiling.
Each answer gets one of ``KINDS``: it states the asked fact (``correct``), a fact with no source
(``hallucinated``), only facts its sources hold but not the asked one (``off-target``: a real figure from the wrong
place), or no fact at all (``no fact``: it abstains or stays vague).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from helpers.intervals import Interval, mean_interval, paired_difference

KINDS = ("correct", "hallucinated", "off-target", "no fact")
CURRENCIES = {"£": "GBP", "$": "USD", "€": "EUR", "gbp": "GBP", "usd": "USD", "eur": "EUR", "pound": "GBP"}
CURRENCIES |= {"pounds": "GBP", "dollar": "USD", "dollars": "USD", "euro": "EUR", "euros": "EUR"}
WORDS = "one two three four five six seven eight nine ten eleven twelve".split()
DIGITS = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"  # "1,250", "7.40", "12": no trailing comma or full stop
NUMBER = rf"(?:{DIGITS}|{'|'.join(WORDS)})"
UNITS = {"minute": ("minute", 1), "min": ("minute", 1), "hour": ("minute", 60), "hr": ("minute", 60)}
UNITS |= {"day": ("day", 1), "week": ("day", 7), "month": ("month", 1), "year": ("month", 12)}
MONTHS = "january february march april may june july august september october november december".split()

_PATTERNS = [  # (kind, regex); earlier kinds claim their characters first
    ("phone", r"\b0\d{3}[ -]?\d{3}[ -]?\d{4}\b"),
    ("code", r"\b\d{2}-\d{2}-\d{2}\b"),
    ("money", rf"(?P<cur>[£$€])\s?(?P<num>{DIGITS})"),
    ("money", rf"(?P<num>{DIGITS})\s?(?P<cur>gbp|usd|eur|pounds?|dollars?|euros?)\b"),
    ("pence", r"\b(?P<num>\d+)\s?(?:p|pence)\b"),
    ("time", r"\b(?P<h>[01]?\d|2[0-3])(?::(?P<m>[0-5]\d))?\s?(?P<ampm>am|pm)\b"),
    ("time", r"\b(?P<h>[01]?\d|2[0-3]):(?P<m>[0-5]\d)\b"),
    ("percent", r"(?P<num>\d+(?:\.\d+)?)\s?(?:%|percent\b|per cent\b)"),
    (
        "duration",
        rf"\b(?P<num>{NUMBER})[ -](?:(?:working|business|banking|calendar)[ -])?(?P<unit>{'|'.join(UNITS)})s?\b",
    ),
    ("date", r"\b(?P<num>\d{1,2})(?:st|nd|rd|th)\b"),
    ("date", rf"\b(?P<num>\d{{1,2}})\s(?P<month>{'|'.join(MONTHS)})\b"),
    (
        "money",
        r"(?<![\d.,])(?P<num>(?:\d{1,3}(?:,\d{3})+|\d+)\.\d\d)(?![\d.,]*\d)",
    ),  # "5.00": two decimals read as an amount
    ("count", rf"\b(?P<num>{DIGITS})[ -](?!(?:and|or|to|of|the|a|in|on|at|is)\b)(?P<unit>[a-z]+)"),
]
_COMPILED = [(kind, re.compile(pattern)) for kind, pattern in _PATTERNS]


@dataclass(frozen=True)
class Fact:
    """One stated fact: its kind, a normalised value and unit (what comparisons use) and the text it came from."""

    kind: str  # money, percent, time (minutes after midnight), duration, date, count, phone, code
    value: float | str
    unit: str | None = None  # currency for money (None: not said), base unit for a duration, else None
    text: str = ""

    def matches(self, other: Fact) -> bool:
        """Same kind and value; a currency left unsaid matches any, otherwise units must agree."""
        if self.kind != other.kind or self.unit != other.unit and None not in (self.unit, other.unit):
            return False
        if isinstance(self.value, str) or isinstance(other.value, str):
            return self.value == other.value
        return abs(self.value - other.value) < 1e-9


def _number(text: str) -> float:
    return float(WORDS.index(text) + 1) if text in WORDS else float(text.replace(",", ""))


def _fact(kind: str, m: re.Match, text: str) -> Fact:
    g = m.groupdict()
    if kind in ("phone", "code"):
        return Fact(kind, re.sub(r"\D", "", text), None, text)
    if kind == "money":
        return Fact("money", _number(g["num"]), CURRENCIES.get(g.get("cur")), text)
    if kind == "pence":
        return Fact("money", _number(g["num"]) / 100, "GBP", text)
    if kind == "time":
        hour = int(g["h"]) % 12 + (12 if g.get("ampm") == "pm" else 0) if g.get("ampm") else int(g["h"])
        return Fact("time", float(hour * 60 + int(g.get("m") or 0)), None, text)
    if kind == "duration":
        base, scale = UNITS[g["unit"]]
        return Fact("duration", _number(g["num"]) * scale, base, text)
    if kind == "date":
        return Fact("date", f"{int(g['num'])} {g['month']}" if g.get("month") else f"day {int(g['num'])}", None, text)
    return Fact(kind, _number(g["num"]), None, text)


def extract_facts(text: str) -> list[Fact]:
    """Every fact stated in ``text``, in order of appearance (each character belongs to one fact at most)."""
    folded = text.lower().replace("\u00a0", " ").replace("\u2011", "-").replace("\u2013", "-")
    taken = [False] * len(folded)
    found: list[tuple[int, Fact]] = []
    for kind, regex in _COMPILED:
        for m in regex.finditer(folded):
            if any(taken[m.start() : m.end()]):
                continue
            taken[m.start() : m.end()] = [True] * (m.end() - m.start())
            shown = (text if len(text) == len(folded) else folded)[m.start() : m.end()].strip()
            found.append((m.start(), _fact(kind, m, shown)))
    return [f for _, f in sorted(found, key=lambda pair: pair[0])]


def supported(fact: Fact, known: Iterable[Fact]) -> bool:
    """True if some fact in ``known`` matches ``fact``."""
    return any(fact.matches(k) for k in known)


def _states_literally(answer: str, gold: str) -> bool:
    """For a gold answer with no number in it ("Mastercard"): the words, case-insensitively, as a whole."""
    return re.search(r"(?<!\w)" + re.escape(gold.lower()) + r"(?!\w)", answer.lower()) is not None


@dataclass(frozen=True)
class Verdict:
    """How one answer stands against its sources: its kind, the facts it stated, and those no source holds."""

    kind: str  # one of KINDS
    right_fact: bool  # it states the gold fact (it may still have invented another: kind 'hallucinated')
    stated: tuple[Fact, ...]
    unsupported: tuple[Fact, ...]
    answer: str = ""
    gold: str = ""

    @property
    def hallucinated(self) -> bool:
        """It states at least one fact that none of its sources holds."""
        return bool(self.unsupported)


def judge(answer: str, gold: str, sources: Sequence[str], question: str = "") -> Verdict:
    """Classify ``answer`` against the ``gold`` fact and the texts it could know it from (``sources``).

    ``sources`` are the knowledge-base texts the answer may draw on: the article that answers the question, and
    for RAG the passages retrieved into the prompt. A fact repeated from the ``question`` is not invented.
    """
    stated = tuple(extract_facts(answer))
    known = [f for text in [*sources, question, gold] for f in extract_facts(text)]
    gold_facts = extract_facts(gold)
    right = all(supported(g, stated) for g in gold_facts) if gold_facts else _states_literally(answer, gold)
    unsupported = tuple(f for f in stated if not supported(f, known))
    if unsupported:
        kind = "hallucinated"
    elif right:
        kind = "correct"
    else:
        kind = "off-target" if stated else "no fact"
    return Verdict(kind, right, stated, unsupported, answer, gold)


def judge_all(
    answers: Sequence[str], golds: Sequence[str], sources: Sequence[Sequence[str]], questions: Sequence[str] = ()
) -> list[Verdict]:
    """``judge`` for each answer with its own gold, sources and question (questions may be left out)."""
    if not len(answers) == len(golds) == len(sources) or (questions and len(questions) != len(answers)):
        raise ValueError(
            f"Pass one gold, one list of sources (and one question) per answer: {len(answers)} answers, "
            f"{len(golds)} golds, {len(sources)} source lists, {len(questions)} questions."
        )
    questions = list(questions) or [""] * len(answers)
    return [judge(a, g, s, q) for a, g, s, q in zip(answers, golds, sources, questions)]


def rates(verdicts: Sequence[Verdict]) -> dict[str, float]:
    """Shares (0..1) of answers stating the right fact, and of each kind ('hallucinated' is the hallucination rate)."""
    n = max(1, len(verdicts))
    return {"right fact": sum(v.right_fact for v in verdicts) / n} | {
        kind: sum(v.kind == kind for v in verdicts) / n for kind in KINDS
    }


def summary(verdicts: Mapping[str, Sequence[Verdict]], level: float = 0.95) -> pd.DataFrame:
    """One row per method: right-fact and hallucination rates with bootstrap intervals, and each kind's share."""
    rows = {}
    for method, vs in verdicts.items():
        right = mean_interval([v.right_fact for v in vs], level=level)
        wrong = mean_interval([v.hallucinated for v in vs], level=level)
        rows[method] = {
            "right fact": right.estimate,
            "right fact CI": f"{right.low:.0%} to {right.high:.0%}",
            "hallucinated": wrong.estimate,
            "hallucinated CI": f"{wrong.low:.0%} to {wrong.high:.0%}",
            **{f"{kind} share": share for kind, share in rates(vs).items() if kind in ("off-target", "no fact")},
            "answers": len(vs),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def examples(verdicts: Mapping[str, Sequence[Verdict]], per_kind: int = 3) -> pd.DataFrame:
    """Up to ``per_kind`` answers of each kind, taken from the methods in turn: method, gold, answer, facts."""
    rows = []
    for kind in KINDS:
        queues = {m: [v for v in vs if v.kind == kind] for m, vs in verdicts.items()}
        picked: list[tuple[str, Verdict]] = []
        while len(picked) < per_kind and any(queues.values()):
            for method, queue in queues.items():
                if queue and len(picked) < per_kind:
                    picked.append((method, queue.pop(0)))
        rows += [
            {
                "kind": kind,
                "method": method,
                "gold": v.gold,
                "answer": v.answer,
                "facts stated": ", ".join(f.text for f in v.stated) or "-",
                "no source for": ", ".join(f.text for f in v.unsupported) or "-",
            }
            for method, v in picked
        ]
    return pd.DataFrame(rows, columns=["kind", "method", "gold", "answer", "facts stated", "no source for"])


def paired_gap(verdicts: Mapping[str, Sequence[Verdict]], a: str, b: str, measure: str = "hallucinated") -> Interval:
    """Method ``a``'s rate minus ``b``'s on ``measure`` ('hallucinated' or 'right_fact'), paired over the same
    questions, with its bootstrap interval (positive: ``a`` does it more often)."""
    if measure not in ("hallucinated", "right_fact"):
        raise ValueError(f"measure must be 'hallucinated' or 'right_fact', not {measure!r}.")
    return paired_difference([getattr(v, measure) for v in verdicts[a]], [getattr(v, measure) for v in verdicts[b]])
