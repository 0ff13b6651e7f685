"""Rebuild train.jsonl and heldout.jsonl from banking77 messages and the hand-written voice content below.

Run from the repository root: `python data/brand_voice/build_dataset.py`. Deterministic (seeded).
Customer messages come from banking77 (train split -> our train, test split -> our held-out), so no
held-out message was seen in training. Replies and summaries follow the rules in README.md.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
BANKING77 = HERE.parent / "banking77"
GREETING = "Hi, thanks for writing to Northwind Bank."
SIGN_OFF = "Warm regards, the Northwind team."
TRAIN_PER_INTENT, HELDOUT_PER_INTENT, MAX_WORDS = 14, 6, 24

# Per intent: the product it concerns, its usual urgency, empathy lines and concrete next steps.
# Every empathy line starts with "I'm sorry" or "I understand"; every next step names a place and an action.
CONTENT = {
    "card_arrival": (
        "card",
        "medium",
        [
            "I'm sorry your new card is taking so long.",
            "I understand how frustrating it is to wait for a card.",
        ],
        [
            "Next step: open Cards > Track delivery in the Northwind app; if it shows over 7 working days, tap Reissue for free.",
            "Next step: check the delivery status under Cards > Track delivery, and we post a free replacement after 7 working days.",
        ],
    ),
    "lost_or_stolen_card": (
        "card",
        "high",
        [
            "I'm sorry to hear your card is missing.",
            "I understand this is worrying, and we will protect your money.",
        ],
        [
            "Next step: tap Cards > Freeze now in the Northwind app, then call 0800 555 0199 any time to order a replacement.",
            "Next step: freeze the card under Cards > Freeze in the app straight away and report it on 0800 555 0199.",
        ],
    ),
    "exchange_rate": (
        "fx",
        "low",
        [
            "I understand you want to know what your money is worth abroad.",
            "I understand exchange rates can be confusing.",
        ],
        [
            "Next step: see today's rate under Payments > Currency in the app; Northwind adds 0.5% on weekdays and 1% at weekends.",
            "Next step: open Payments > Currency in the app for the live rate; our markup is 0.5% on weekdays and 1% at weekends.",
        ],
    ),
    "top_up_failed": (
        "top_up",
        "medium",
        [
            "I'm sorry your top-up did not go through.",
            "I understand how annoying a failed top-up is.",
        ],
        [
            "Next step: check that your linked card is in date under Account > Top-up methods, then try again; failed top-ups return within 3 working days.",
            "Next step: retry from Account > Top-up with a card in your own name; any failed amount comes back within 3 working days.",
        ],
    ),
    "transfer_not_received_by_recipient": (
        "transfer",
        "medium",
        [
            "I'm sorry your transfer has not reached the recipient yet.",
            "I understand your recipient is waiting for the money.",
        ],
        [
            "Next step: open the transfer under Payments > History and share the tracking reference with the recipient's bank; most arrive within 1 working day.",
            "Next step: check the transfer status under Payments > History; if it is still pending after 2 working days, tap Chase transfer.",
        ],
    ),
    "cash_withdrawal_charge": (
        "cash",
        "low",
        [
            "I understand an unexpected charge is unwelcome.",
            "I'm sorry the cash withdrawal fee was a surprise.",
        ],
        [
            "Next step: see your free allowance under Plan > Allowances; after 200 pounds a month, withdrawals cost 2%.",
            "Next step: check Plan > Allowances in the app, since withdrawals above 200 pounds a month carry a 2% fee.",
        ],
    ),
    "pin_blocked": (
        "card",
        "high",
        [
            "I'm sorry your PIN is blocked.",
            "I understand being locked out of your card is stressful.",
        ],
        [
            "Next step: go to Cards > Unblock PIN in the Northwind app and confirm with your passcode; it works again within minutes.",
            "Next step: unblock it under Cards > Unblock PIN in the app, then use it once at a Northwind cash machine.",
        ],
    ),
    "Refund_not_showing_up": (
        "refund",
        "medium",
        [
            "I'm sorry you are still waiting for your refund.",
            "I understand waiting for a refund is frustrating.",
        ],
        [
            "Next step: merchants' refunds take up to 5 working days; after that, tap Payments > Dispute on the original payment.",
            "Next step: give it 5 working days from the merchant's refund date, then raise it under Payments > Dispute.",
        ],
    ),
    "change_pin": (
        "card",
        "low",
        [
            "I understand you want a PIN that is easy to remember.",
            "I understand, and changing your PIN is quick.",
        ],
        [
            "Next step: choose a new PIN under Cards > Change PIN in the Northwind app, or at any Northwind cash machine.",
            "Next step: open Cards > Change PIN in the app and confirm with your passcode; the new PIN works straight away.",
        ],
    ),
    "declined_card_payment": (
        "card",
        "medium",
        [
            "I'm sorry your card payment was declined.",
            "I understand a declined card is embarrassing at the till.",
        ],
        [
            "Next step: check Cards > Limits in the app for a frozen card or a spending limit, then try the payment again.",
            "Next step: open the declined payment under Payments > History to see the reason and fix it in Cards > Limits.",
        ],
    ),
}
URGENT_WORDS = re.compile(r"\b(urgent|urgently|asap|immediately|emergency|stolen|fraud|right now|panick\w*)\b", re.I)
AMOUNT = re.compile(r"([£$€]\s?\d+(?:[.,]\d+)?|\d+(?:[.,]\d+)?\s?(?:pounds|dollars|euros|gbp|usd|eur)\b)", re.I)


def summary(message: str, intent: str) -> dict:
    """The structured summary of one message (rules in README.md)."""
    product, urgency, _, _ = CONTENT[intent]
    if URGENT_WORDS.search(message):
        urgency = "high"
    amount = AMOUNT.search(message)
    return {"intent": intent, "urgency": urgency, "product": product, "amount": amount.group(1) if amount else None}


def reply(intent: str, rng: random.Random) -> str:
    """A brand-voice reply: greeting, one empathy line, one concrete next step, the sign-off."""
    _, _, empathy, steps = CONTENT[intent]
    return "\n".join([GREETING, rng.choice(empathy), rng.choice(steps), SIGN_OFF])


def build(split: str, per_intent: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    frame = pd.read_csv(BANKING77 / f"{split}.csv")
    frame = frame[frame["text"].str.split().str.len() <= MAX_WORDS]
    rows = []
    for intent in CONTENT:
        texts = frame[frame["category"] == intent]["text"].drop_duplicates().sample(per_intent, random_state=seed)
        for text in texts:
            text = " ".join(text.split())
            rows.append(
                {"intent": intent, "message": text, "reply": reply(intent, rng), "summary": summary(text, intent)}
            )
    rng.shuffle(rows)
    return [{"id": f"{split}-{i:03d}", **row} for i, row in enumerate(rows)]


if __name__ == "__main__":
    for name, split, n in (("train", "train", TRAIN_PER_INTENT), ("heldout", "test", HELDOUT_PER_INTENT)):
        rows = build(split, n, seed=7)
        with open(HERE / f"{name}.jsonl", "w") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        print(name, len(rows))
