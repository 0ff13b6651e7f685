"""Facts stated in answers: extraction, normalisation, and the hallucination verdict (no model needed)."""

from __future__ import annotations

import pytest

from helpers import facts, knowledge
from helpers.intervals import in_words

A03 = knowledge.article_text(knowledge.by_id(knowledge.load_articles())["A03"])  # £7.40, 4 working days, 0800 ...


def values(text: str) -> list[tuple]:
    return [(f.kind, f.value, f.unit) for f in facts.extract_facts(text)]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("It costs £7.40.", [("money", 7.4, "GBP")]),
        ("A fee of 5 GBP", [("money", 5.0, "GBP")]),
        ("It is 5.00", [("money", 5.0, None)]),  # two decimals read as an amount, currency unsaid
        ("Transfers over £1,250, then", [("money", 1250.0, "GBP")]),
        ("Only 31p per transfer", [("money", 0.31, "GBP")]),
        ("A 1.9% fee", [("percent", 1.9, None)]),
        ("Within 3 business days", [("duration", 3.0, "day")]),
        ("two weeks", [("duration", 14.0, "day")]),
        ("after 2 hours", [("duration", 120.0, "minute")]),
        ("by 4:30pm", [("time", 990.0, None)]),
        ("before 16:30", [("time", 990.0, None)]),
        ("a 7-digit code", [("count", 7.0, None)]),
        ("Call 0800 146 2290 now", [("phone", "08001462290", None)]),
        ("on the 1st of each month", [("date", "day 1", None)]),
        ("I'm sorry, I don't know.", []),
        ("No, there is no daily cap on disposable cards.", []),
    ],
)
def test_extract_and_normalise(text, expected):
    assert values(text) == expected


def test_one_value_in_many_spellings():
    spellings = ["£5", "5 GBP", "5 pounds", "£5.00", "5.00"]
    first = facts.extract_facts(spellings[0])[0]
    assert all(first.matches(facts.extract_facts(s)[0]) for s in spellings)
    assert not first.matches(facts.extract_facts("$5")[0])  # a different currency is a different fact
    assert not first.matches(facts.extract_facts("£50")[0])
    assert facts.extract_facts("3 working days")[0].matches(facts.extract_facts("three business days")[0])


@pytest.mark.parametrize(
    "answer, kind, right",
    [
        ("A replacement card costs £7.40.", "correct", True),
        ("It costs 7.40 GBP and arrives in 4 working days.", "correct", True),  # another fact, from the source
        ("A replacement card costs £5.", "hallucinated", False),
        ("It costs £7.40, plus a £2 postage fee.", "hallucinated", True),  # right, and an invented fee besides
        ("It arrives within 4 working days.", "off-target", False),  # a real fact, not the one asked
        ("I'm sorry, I don't know.", "no fact", False),
        ("Please contact our support team for the current fee.", "no fact", False),
    ],
)
def test_judge_kinds(answer, kind, right):
    verdict = facts.judge(answer, "£7.40", [A03], question="What does a new card cost if I lose mine?")
    assert (verdict.kind, verdict.right_fact, verdict.hallucinated) == (kind, right, kind == "hallucinated")


def test_old_string_match_got_these_wrong():
    """The old scorer (prompting.contains_gold, and 'hallucinated = wrong and not an abstention')."""
    # A vague refusal is no hallucination: it states no figure.
    assert facts.judge("No, there is no daily cap on creating cards.", "20 per day", [A03]).kind == "no fact"
    # The right amount in another spelling is right, not hallucinated.
    assert facts.judge("That will be 7.40 pounds.", "£7.40", [A03]).kind == "correct"
    # A figure repeated from the question is not invented.
    assert facts.judge("Yes, £20 is fine.", "£7.40", [A03], question="Can I send £20?").kind == "off-target"
    # A right answer with an invented fee next to it hallucinated too.
    assert facts.judge("£7.40, and £9.99 express.", "£7.40", [A03]).kind == "hallucinated"


def test_sources_decide_what_counts_as_invented():
    # £8.30 is in the knowledge base (express delivery, A01) but not in what this answer could read.
    assert facts.judge("It costs £8.30.", "£7.40", [A03]).kind == "hallucinated"
    a01 = knowledge.article_text(knowledge.by_id(knowledge.load_articles())["A01"])
    assert facts.judge("It costs £8.30.", "£7.40", [A03, a01]).kind == "off-target"  # retrieved: a misreading


def test_gold_without_a_figure_is_matched_as_words():
    assert facts.judge("It is a Mastercard debit card.", "Mastercard", []).kind == "correct"
    assert facts.judge("It is a Visa card.", "Mastercard", []).kind == "no fact"


def test_judge_all_rates_summary_and_examples():
    answers = ["It costs £7.40.", "It costs £5.", "I don't know.", "£9"]
    verdicts = facts.judge_all(answers, ["£7.40"] * 4, [[A03]] * 4)
    out = facts.rates(verdicts)
    assert out["right fact"] == 0.25 and out["hallucinated"] == 0.5 and out["no fact"] == 0.25
    assert sum(out[k] for k in facts.KINDS) == pytest.approx(1.0)
    table = facts.summary({"a": verdicts, "b": verdicts[:1]})
    assert table.loc["a", "hallucinated"] == 0.5 and table.loc["b", "right fact"] == 1.0
    assert table["hallucinated"].dtype == float  # numbers stay numbers for plots and formats
    assert table.loc["b", "right fact CI"] == "100% to 100%" and table.loc["a", "answers"] == 4
    other = facts.judge_all(["£7.40 exactly", "£3"], ["£7.40"] * 2, [[A03]] * 2)
    rows = facts.examples({"a": verdicts, "b": other}, per_kind=2)
    assert list(rows["kind"]) == ["correct", "correct", "hallucinated", "hallucinated", "no fact"]
    assert list(rows["method"][:4]) == ["a", "b", "a", "b"]  # the methods take turns
    assert rows.iloc[2]["no source for"] == "£5" and rows.iloc[4]["facts stated"] == "-"
    with pytest.raises(ValueError, match="one gold"):
        facts.judge_all(answers, ["£7.40"], [[A03]] * 4)


def test_paired_gap():
    many = {
        "guess": facts.judge_all(["£5"] * 10 + ["£7.40"] * 2, ["£7.40"] * 12, [[A03]] * 12),
        "read": facts.judge_all(["£7.40"] * 12, ["£7.40"] * 12, [[A03]] * 12),
    }
    gap = facts.paired_gap(many, "guess", "read")
    assert gap.estimate == pytest.approx(10 / 12) and gap.low > 0  # guessing invents more, measurably
    assert facts.paired_gap(many, "guess", "read", "right_fact").estimate == pytest.approx(-10 / 12)
    assert in_words(gap, "guess", "read", "hallucinates more often") == "guess hallucinates more often than read"
    assert in_words(facts.paired_gap(many, "read", "guess"), "read", "guess", "hallucinates more often") == (
        "guess hallucinates more often than read"
    )
    assert in_words(facts.paired_gap(many, "read", "read"), "read", "read", "hallucinates more often") == (
        "no measurable difference at this size"
    )
    with pytest.raises(ValueError, match="measure must be"):
        facts.paired_gap(many, "guess", "read", "kind")
