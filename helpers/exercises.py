"""Exercise checks: a friendly pass message, or an AssertionError with a hint; and the lesson's claims."""

from __future__ import annotations

from collections.abc import Callable, Mapping

NOT_YET = "not yet"


def _value(x: object) -> object:
    return x() if callable(x) else x


def check(
    name: str,
    passed: bool | Callable[[], bool],
    hint: str,
    detail: str | Callable[[], str] = "",
    *,
    answers: Mapping[str, object] | None = None,
) -> None:
    """Print a pass line for exercise ``name`` or raise AssertionError "<name>: not yet. <hint>".

    ``passed`` and ``detail`` may be zero-argument callables: they are evaluated only once every value in
    ``answers`` (the learner's variables, by name) is set, so a starting point of ``None`` gets a sentence,
    not a TypeError.
    """
    unset = [key for key, value in (answers or {}).items() if value is None]
    if unset:
        names = ", ".join(f"`{key}`" for key in unset)
        raise AssertionError(f"{name}: {NOT_YET}. Set {names} in the exercise's cell, then run it again. {hint}")
    ok, text = bool(_value(passed)), str(_value(detail))
    if not ok:
        raise AssertionError(f"{name}: {NOT_YET}. {hint}" + (f" ({text})" if text else ""))
    print(f"✅ {name}: passed" + (f" ({text})" if text else ""))


def claim(statement: str, holds: bool, evidence: str) -> None:
    """Assert one of the lesson's claims on the numbers just produced, printing the evidence."""
    if not holds:
        raise AssertionError(f"Claim failed: {statement}. Evidence: {evidence}")
    print(f"✔ {statement}: {evidence}")
