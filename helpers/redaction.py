"""Redact personal data (PII) from text before it trains a model: clear, testable rules, and their recall/precision.

Each ``Rule`` is a named regular expression with a placeholder. ``redact`` applies them all (overlaps go to the
rule listed first), ``find`` lists what they would remove, and ``score`` measures recall and precision against
labelled spans. Rules, not a model: they run offline, and every miss can be read and fixed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# A short list of given names (several origins) for the "name" rule; a real deployment uses its customer list.
FIRST_NAMES = (
    "Alice", "Amara", "Anna", "Carlos", "Chen", "Chidi", "David", "Elena", "Emma", "Fatima", "Hannah", "Hiroshi",
    "Ivan", "James", "John", "Kwame", "Leila", "Lucas", "Maria", "Mei", "Mohammed", "Nadia", "Noah", "Oliver",
    "Olga", "Priya", "Rahul", "Sofia", "Tomasz", "Wei", "Yuki", "Zainab",
)  # fmt: skip


@dataclass(frozen=True)
class Rule:
    """One kind of PII: a regular expression (``pattern``) and what replaces a match (``placeholder``)."""

    kind: str
    pattern: str
    placeholder: str = ""
    flags: int = 0

    def compiled(self) -> re.Pattern:
        """The compiled pattern."""
        return re.compile(self.pattern, self.flags)

    def replacement(self) -> str:
        """The text a match becomes: the placeholder, or ``[KIND]``."""
        return self.placeholder or f"[{self.kind.upper()}]"


@dataclass(frozen=True)
class Span:
    """A stretch of text ``text[start:end]`` of one PII ``kind`` (found by a rule, or labelled by hand)."""

    start: int
    end: int
    kind: str

    def overlaps(self, other: Span) -> bool:
        """Whether the two spans share at least one character."""
        return self.start < other.end and other.start < self.end


_NAMES = "|".join(FIRST_NAMES)
RULES: tuple[Rule, ...] = (
    Rule("email", r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b"),
    # IBAN: country code, 2 check digits, then 11-30 letters/digits, often in groups of four.
    Rule("iban", r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"),
    # Phone: an international +CC or a leading 0 / (area), then at least 8 more digits in groups.
    Rule("phone", r"(?:\+\d{1,3}[ .-]?|\(0?\d{2,4}\)[ .-]?|\b0)\d{2,4}(?:[ .-]?\d{2,4}){2,4}\b"),
    # Account and card numbers: 8 or more digits, written together or with single spaces/dashes between them
    # ("4 8 1 5 2 7 7 0 3", "4111-1111-1111-1111").
    Rule("account_number", r"\b\d(?:[ -]?\d){7,}\b"),
    # A listed given name, with the capitalised surname that follows it, if any.
    Rule("name", rf"\b(?:{_NAMES})(?: [A-Z][a-z]+(?:-[A-Z][a-z]+)?)?\b"),
)


def find(text: str, rules: Sequence[Rule] = RULES) -> list[Span]:
    """Every span the rules match, without overlaps (a rule listed earlier wins), in text order."""
    taken: list[Span] = []
    for rule in rules:
        for m in rule.compiled().finditer(text):
            span = Span(m.start(), m.end(), rule.kind)
            if m.end() > m.start() and not any(span.overlaps(t) for t in taken):
                taken.append(span)
    return sorted(taken, key=lambda s: s.start)


def redact(text: str, rules: Sequence[Rule] = RULES) -> str:
    """``text`` with every rule's matches replaced by the rule's placeholder ("[EMAIL]", "[ACCOUNT_NUMBER]", ...)."""
    by_kind = {r.kind: r.replacement() for r in rules}
    out, last = [], 0
    for span in find(text, rules):
        out += [text[last : span.start], by_kind[span.kind]]
        last = span.end
    return "".join(out) + text[last:]


def redact_messages(conversation: Iterable[dict[str, str]], rules: Sequence[Rule] = RULES) -> list[dict[str, str]]:
    """A chat conversation with every message's content redacted."""
    return [{**m, "content": redact(m["content"], rules)} for m in conversation]


def score(
    texts: Sequence[str], labels: Sequence[Sequence[Span]], rules: Sequence[Rule] = RULES
) -> dict[str, float | int]:
    """Recall (labelled spans a found span overlaps) and precision (found spans that overlap a labelled one).

    Kinds are not compared: redacting a phone number as an account number still removes it.
    """
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} label lists: give one list of spans per text.")
    gold = hit = found_n = right = 0
    for text, spans in zip(texts, labels):
        found = find(text, rules)
        gold += len(spans)
        hit += sum(any(f.overlaps(s) for f in found) for s in spans)
        found_n += len(found)
        right += sum(any(f.overlaps(s) for s in spans) for f in found)
    return {
        "recall": hit / gold if gold else 1.0,
        "precision": right / found_n if found_n else 1.0,
        "labelled": gold,
        "found": found_n,
    }


def spans_of(text: str, marked: Sequence[tuple[str, str]]) -> list[Span]:
    """Labelled spans from (substring, kind) pairs, each located at its first occurrence in ``text``."""
    spans = []
    for piece, kind in marked:
        start = text.find(piece)
        if start < 0:
            raise ValueError(f"Labelled text {piece!r} does not occur in {text!r}.")
        spans.append(Span(start, start + len(piece), kind))
    return spans


def load_labelled(path) -> tuple[list[str], list[list[Span]]]:
    """(texts, labelled spans) from a JSONL file of ``{"text": ..., "pii": [[substring, kind], ...]}`` lines."""
    from helpers.data import read_jsonl  # noqa: PLC0415  (keeps this module light: regexes only at import)

    rows = read_jsonl(path)
    return [r["text"] for r in rows], [spans_of(r["text"], r["pii"]) for r in rows]
