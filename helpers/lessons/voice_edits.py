"""Notebook 10's rejected replies: deterministic edits of an on-voice reply, each breaking one or more voice rules.

A generic register, a casual greeting, a generic sign-off, a vague next step, exclamation marks, no empathy line, a
padded sentence past the word limit: each pair built from one of them isolates what we prefer.
"""

from __future__ import annotations

from collections.abc import Callable

from helpers.lessons import instruction_tuning as voice

GENERIC_REPLY = (
    "Thank you for contacting us! We apologize for any inconvenience. "
    "Please reach out to our customer support team for further assistance with your request."
)


RAMBLE = (
    "Please note that processing times can vary depending on a number of different factors, and we really do "
    "appreciate your patience and understanding while our team carefully reviews every detail of your request."
)


def _lines(reply: str) -> list[str]:
    return reply.strip().splitlines()


def generic(reply: str) -> str:
    """Wrong register: a generic call-centre answer with none of the voice's parts."""
    return GENERIC_REPLY


def no_greeting(reply: str) -> str:
    """The house greeting swapped for a casual one."""
    return "\n".join(["Hey there,", *_lines(reply)[1:]])


def no_sign_off(reply: str) -> str:
    """The house sign-off swapped for a generic one."""
    return "\n".join([*_lines(reply)[:-1], "Best regards, Customer Support."])


def vague_step(reply: str) -> str:
    """The concrete next step replaced by a vague promise."""
    return "\n".join(
        "We will look into it and get back to you." if ln.startswith("Next step:") else ln for ln in _lines(reply)
    )


def shouty(reply: str) -> str:
    """Wrong register: every sentence ends with an exclamation mark."""
    return "\n".join(ln[:-1] + "!" if ln.endswith(".") else ln + "!" for ln in _lines(reply))


def no_empathy(reply: str) -> str:
    """The empathy line dropped: straight to business."""
    return "\n".join(ln for ln in _lines(reply) if not ln.startswith(voice.EMPATHY_OPENERS))


def rambling(reply: str) -> str:
    """Too long: a padded sentence before the sign-off pushes the reply past the word limit."""
    lines = _lines(reply)
    return "\n".join([*lines[:-1], RAMBLE, lines[-1]])


REJECTIONS: dict[str, Callable[[str], str]] = {
    f.__name__: f for f in (generic, no_greeting, no_sign_off, vague_step, shouty, no_empathy, rambling)
}
