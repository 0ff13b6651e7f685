"""Instruction tuning for a brand voice and a JSON format: the Northwind Bank data, SFT conversations,
format and voice checks, similarity to references, and the voice adapter's training settings.

The voice rules (data/brand_voice/README.md) are checked by code, so "sounds like us" becomes a number.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from helpers.data import read_jsonl
from helpers.generation import generate
from helpers.models import load_embedder
from helpers.paths import DATA_DIR
from helpers.prompting import token_f1, word_tokens
from helpers.runtime import profile as active_profile
from helpers.seeds import for_profile
from helpers.training import TrainConfig

BRAND_VOICE_DIR = DATA_DIR / "brand_voice"
GREETING = "Hi, thanks for writing to Northwind Bank."
SIGN_OFF = "Warm regards, the Northwind team."
EMPATHY_OPENERS = ("I'm sorry", "I understand")
NEXT_STEP = "Next step:"
MAX_REPLY_WORDS = 60
VOICE_SYSTEM = "You are Northwind Bank's support assistant. Reply to the customer's message."
JSON_SYSTEM = (
    'Summarise the customer\'s message as JSON with keys "intent", "urgency" (low, medium or high), '
    '"product" and "amount".'
)
JSON_KEYS = ("intent", "urgency", "product", "amount")
URGENCY_LEVELS = ("low", "medium", "high")
TASKS = ("voice", "json")


# --- data -----------------------------------------------------------------------------
def load_brand_voice(split: str = "train", intents: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Rows of data/brand_voice/<split>.jsonl ('train' or 'heldout'): id, intent, message, reply, summary."""
    if split not in ("train", "heldout"):
        raise ValueError(f"split must be 'train' or 'heldout', not {split!r}.")
    rows = read_jsonl(BRAND_VOICE_DIR / f"{split}.jsonl")
    return [r for r in rows if intents is None or r["intent"] in intents]


def conversation(row: dict[str, Any], task: str, with_answer: bool = True) -> list[dict[str, str]]:
    """The chat for one row and task ('voice': a reply; 'json': a summary); with_answer adds the reference."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, not {task!r}.")
    system = VOICE_SYSTEM if task == "voice" else JSON_SYSTEM
    messages = [{"role": "system", "content": system}, {"role": "user", "content": row["message"]}]
    if with_answer:
        messages.append({"role": "assistant", "content": reference(row, task)})
    return messages


def reference(row: dict[str, Any], task: str) -> str:
    """The reference answer of one row for a task: the brand-voice reply or the compact JSON summary."""
    return row["reply"] if task == "voice" else json.dumps(row["summary"])


def build_conversations(
    rows: Sequence[dict[str, Any]], tasks: Sequence[str] = TASKS, with_answer: bool = True
) -> list[list[dict[str, str]]]:
    """SFT conversations for every row and task, tasks interleaved row by row."""
    return [conversation(r, t, with_answer) for r in rows for t in tasks]


# --- checks ---------------------------------------------------------------------------
def check_voice(text: str) -> dict[str, bool]:
    """Each voice rule (greeting, empathy, next step, sign-off, length, no '!') as pass/fail for one reply."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    middle = lines[1:-1]
    return {
        "greeting": bool(lines) and lines[0] == GREETING,
        "empathy": any(ln.startswith(EMPATHY_OPENERS) for ln in middle),
        "next_step": any(ln.startswith(NEXT_STEP) and len(ln.split()) >= 5 for ln in middle),
        "sign_off": bool(lines) and lines[-1] == SIGN_OFF,
        "short": len(text.split()) <= MAX_REPLY_WORDS,
        "no_exclamation": "!" not in text,
    }


def follows_voice(text: str) -> bool:
    """True when a reply meets every voice rule (see ``check_voice``)."""
    return all(check_voice(text).values())


def parse_json(text: str) -> dict[str, Any] | None:
    """The JSON object in ``text`` (a ```json fence is allowed), or None if it does not parse to an object."""
    body = re.sub(r"^```(?:json)?\s*|\s*```$", "", text.strip())
    try:
        value = json.loads(body)
    except (json.JSONDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def check_json(text: str, intent: str | None = None) -> dict[str, bool]:
    """Format checks for a JSON summary: parses, has the required keys, a valid urgency, the right intent."""
    value = parse_json(text)
    ok = value is not None
    keys = ok and all(k in value for k in JSON_KEYS)
    return {
        "valid_json": ok,
        "required_keys": bool(keys),
        "valid_urgency": bool(keys) and value["urgency"] in URGENCY_LEVELS,
        "intent_correct": bool(keys) and intent is not None and value["intent"] == intent,
    }


# --- similarity -----------------------------------------------------------------------
def embedding_cosine(predictions: Sequence[str], references: Sequence[str], embedder=None) -> list[float]:
    """Cosine similarity of each prediction to its reference with a sentence embedder (default: MiniLM)."""
    if embedder is None:
        embedder = load_embedder()
    a = embedder.encode(list(predictions), normalize_embeddings=True, convert_to_numpy=True)
    b = embedder.encode(list(references), normalize_embeddings=True, convert_to_numpy=True)
    return [float(x) for x in (a * b).sum(axis=1)]


# --- evaluation -----------------------------------------------------------------------
def generate_answers(
    model, tokenizer, rows: Sequence[dict[str, Any]], task: str, max_new_tokens: int = 64, **decoding
) -> list[str]:
    """The model's answers for one task on ``rows`` (greedy unless decoding says otherwise)."""
    conversations = build_conversations(rows, [task], with_answer=False)
    return generate(model, tokenizer, conversations, max_new_tokens=max_new_tokens, **decoding)


def score_answers(rows: Sequence[dict[str, Any]], task: str, answers: Sequence[str], embedder=None) -> pd.DataFrame:
    """One row per answer: the format checks of its task, token F1 and embedding cosine to the reference."""
    refs = [reference(r, task) for r in rows]
    records = []
    for row, answer, ref in zip(rows, answers, refs):
        checks = check_voice(answer) if task == "voice" else check_json(answer, row["intent"])
        passed = all(checks.values()) if task == "voice" else checks["required_keys"]
        records.append(
            {
                "id": row["id"],
                "task": task,
                "answer": answer,
                "reference": ref,
                **checks,
                "format_ok": passed,
                "token_f1": token_f1(answer, ref, tokenize=word_tokens),
            }
        )
    frame = pd.DataFrame(records)
    frame["cosine"] = embedding_cosine(list(answers), refs, embedder) if len(frame) else []
    return frame


def summarize_scores(frame: pd.DataFrame) -> dict[str, float]:
    """Rates (0..1) of every check column and mean similarities of a ``score_answers`` frame."""
    skip = {"id", "task", "answer", "reference"}
    return {c: float(frame[c].mean()) for c in frame.columns if c not in skip}


def side_by_side(
    rows: Sequence[dict[str, Any]], task: str, before: Sequence[str], after: Sequence[str], n: int = 4
) -> pd.DataFrame:
    """A readable table of the first ``n`` held-out messages: base answer, tuned answer, reference."""
    return pd.DataFrame(
        [
            {"message": r["message"], "before tuning": b, "after tuning": a, "reference": reference(r, task)}
            for r, b, a in zip(rows[:n], before, after)
        ]
    )


def show_table(frame: pd.DataFrame):
    """A pandas Styler that keeps line breaks and wraps long text (for notebooks)."""
    return frame.style.set_properties(
        **{"white-space": "pre-wrap", "text-align": "left", "vertical-align": "top"}
    ).hide(axis="index")


# --- training -------------------------------------------------------------------------
@dataclass(frozen=True)
class VoiceSettings:
    """How the voice adapter is trained: LoRA rank, steps, learning rate, tokens per example, batch."""

    rank: int = 8
    steps: int = 30
    learning_rate: float = 2e-3
    max_length: int = 128
    batch_size: int = 8
    seed: int = 0

    def train_config(self) -> TrainConfig:
        """The training loop's settings for the voice adapter (no evaluation, so nothing to restore)."""
        return TrainConfig(
            learning_rate=self.learning_rate,
            max_steps=self.steps,
            batch_size=self.batch_size,
            warmup_ratio=0.1,
            seed=self.seed,
            restore_best=False,
        )


ADHERENCE = {  # the rates notebook 06 plots: name -> (task, column of a score_answers frame)
    "valid JSON": ("json", "valid_json"),
    "JSON keys": ("json", "required_keys"),
    "right intent": ("json", "intent_correct"),
    "voice: all rules": ("voice", "format_ok"),
    "voice: greeting": ("voice", "greeting"),
    "voice: next step": ("voice", "next_step"),
    "voice: sign-off": ("voice", "sign_off"),
}


def voice_seeds(p) -> list[int]:
    """The adapter's training seeds by the usual policy (``for_profile``): one in smoke (a second doubles its
    training), two in workshop, three in full."""
    return for_profile(p)


def adherence(frames: dict[str, pd.DataFrame]) -> list[dict[str, float | str]]:
    """One row per ``ADHERENCE`` metric: its rate over the held-out answers in ``frames`` (task -> score frame)."""
    return [{"metric": name, "rate": float(frames[task][col].mean())} for name, (task, col) in ADHERENCE.items()]


def voice_settings(profile=None) -> VoiceSettings:
    """The adapter-training sizes for the active profile (steps and tokens per example grow with it)."""
    p = profile or active_profile()
    return VoiceSettings(steps=p.pick(smoke=24, workshop=60, full=300), max_length=p.lm_max_length + 32, batch_size=8)
