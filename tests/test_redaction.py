"""helpers.redaction: each rule catches its kind (spaced digits too), leaves look-alikes alone, and is scored right."""

from __future__ import annotations

import pytest

from helpers import redaction
from helpers.paths import DATA_DIR
from helpers.redaction import Rule, Span


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("write to ana.b+x@mail.example.org now", "email"),
        ("IBAN DE89 3704 0044 0532 0130 00 please", "iban"),
        ("IBAN GB29NWBK60161331926819 please", "iban"),
        ("call +44 20 7946 0958 today", "phone"),
        ("call 07700 900123 today", "phone"),
        ("my account number is 4 8 1 5 2 7 7 0 3", "account_number"),
        ("card 4111-1111-1111-1111 declined", "account_number"),
        ("account 12345678 charged", "account_number"),
        ("this is Priya Sharma speaking", "name"),
    ],
)
def test_each_rule_catches_its_kind(text, kind):
    found = redaction.find(text)
    assert [s.kind for s in found] == [kind], found
    assert f"[{kind.upper()}]" in redaction.redact(text)


@pytest.mark.parametrize(
    "text",
    ["I paid 49.99 on 12/03/2024", "card ending 4821", "top up of 1,250.00 failed", "error 404", "branch 204 at 10:30"],
)
def test_amounts_dates_and_short_numbers_are_left_alone(text):
    assert redaction.redact(text) == text


def test_overlaps_go_to_the_rule_listed_first_and_redact_keeps_the_rest():
    text = "Mail maria@example.com or call +44 20 7946 0958."
    assert redaction.redact(text) == "Mail [EMAIL] or call [PHONE]."
    digits_first = (Rule("digits", r"\d+"), *redaction.RULES)
    assert "[DIGITS]" in redaction.redact("call +44 20 7946 0958", digits_first)


def test_redact_messages_keeps_roles_and_changes_only_content():
    chat = [{"role": "user", "content": "I am Emma Jones"}, {"role": "assistant", "content": "Hello"}]
    assert redaction.redact_messages(chat) == [
        {"role": "user", "content": "I am [NAME]"},
        {"role": "assistant", "content": "Hello"},
    ]


def test_score_counts_overlaps_for_recall_and_precision():
    texts = ["mail a@b.com, order 20240312 and QQ 12 34 56 C", "nothing here"]
    labels = [redaction.spans_of(texts[0], [("a@b.com", "email"), ("QQ 12 34 56 C", "ni_number")]), []]
    result = redaction.score(texts, labels)
    assert result == {"recall": 0.5, "precision": 0.5, "labelled": 2, "found": 2}  # order number is a false alarm
    with pytest.raises(ValueError, match="one list of spans per text"):
        redaction.score(texts, labels[:1])
    with pytest.raises(ValueError, match="does not occur"):
        redaction.spans_of("abc", [("xyz", "name")])


def test_the_labelled_sample_loads_and_the_rules_catch_every_account_number():
    texts, labels = redaction.load_labelled(DATA_DIR / "pii_sample" / "sample.jsonl")
    accounts = [(t, s) for t, spans in zip(texts, labels) for s in spans if s.kind == "account_number"]
    assert accounts and all(any(f.overlaps(s) for f in redaction.find(t)) for t, s in accounts)
    assert Span(0, 3, "x").overlaps(Span(2, 5, "y")) and not Span(0, 2, "x").overlaps(Span(2, 5, "y"))
