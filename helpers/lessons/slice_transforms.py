"""Notebook 11's slices: deterministic rewrites of a customer message (typos, lower case without punctuation,
non-native phrasing, a writer's name of one origin) and length slices. The same text always gets the same change.
"""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Callable

NAMES_BY_ORIGIN = {
    "English": ("Oliver Smith", "Emma Jones", "James Taylor", "Hannah Brown"),
    "West African": ("Kwame Mensah", "Chidi Okafor", "Amara Diallo", "Zainab Bello"),
    "South Asian": ("Priya Sharma", "Rahul Gupta", "Nadia Rahman", "Arjun Nair"),
    "East Asian": ("Chen Wei", "Yuki Tanaka", "Mei Lin", "Hiroshi Sato"),
    "Arabic": ("Mohammed Haddad", "Leila Nasser", "Omar Khalil", "Fatima Aziz"),
    "Slavic": ("Olga Ivanova", "Tomasz Nowak", "Ivan Petrov", "Elena Popova"),
}


def _rng(text: str, salt: str) -> random.Random:
    return random.Random(zlib.crc32(f"{salt}|{text}".encode()))  # the same text always gets the same change


def typos(text: str, rate: float = 0.6) -> str:
    """Swap two inner letters or drop one in about ``rate`` of the words of 4+ letters (deterministic per text)."""
    rng, words = _rng(text, "typos"), text.split(" ")
    for i, w in enumerate(words):
        if len(w) >= 4 and w.isalpha() and rng.random() < rate:
            j = rng.randrange(1, len(w) - 2)
            words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :] if rng.random() < 0.5 else w[:j] + w[j + 1 :]
    return " ".join(words)


def plain_lower(text: str) -> str:
    """Lower case, punctuation removed: how many people type on a phone."""
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", text.lower())).strip()


def non_native(text: str) -> str:
    """A rough learner's register: articles dropped, "do/does/did" questions flattened, "I'm" as "I am"."""
    out = re.sub(r"\b(?:a|an|the)\s+", "", text, flags=re.IGNORECASE)
    out = re.sub(r"\b(?:do|does|did)\s+(I|you|we|they|it)\b", r"\1", out, flags=re.IGNORECASE)
    return out.replace("I'm", "I am").replace("don't", "not").replace("can't", "cannot")


def with_name(origin: str) -> Callable[[str], str]:
    """A transformation that introduces the writer by a name of ``origin``; the intent does not depend on it."""
    names = NAMES_BY_ORIGIN[origin]
    return lambda text: f"Hi, this is {names[zlib.crc32(text.encode()) % len(names)]}. {text}"


TRANSFORMS: dict[str, Callable[[str], str]] = {
    "typos": typos,
    "lower case, no punctuation": plain_lower,
    "non-native phrasing": non_native,
} | {f"name: {origin}": with_name(origin) for origin in NAMES_BY_ORIGIN}
LENGTH_SLICES = {
    "short (<= 6 words)": lambda t: len(t.split()) <= 6,
    "long (>= 20 words)": lambda t: len(t.split()) >= 20,
}
