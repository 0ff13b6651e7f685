"""Exercise checks: a friendly pass message, or an AssertionError with a hint."""

from __future__ import annotations


def check(name: str, passed: bool, hint: str, detail: str = "") -> None:
    """Print a pass line for exercise ``name`` or raise AssertionError carrying ``hint``."""
    if not passed:
        raise AssertionError(f"{name}: not yet. {hint}" + (f" ({detail})" if detail else ""))
    print(f"✅ {name}: passed" + (f" ({detail})" if detail else ""))


def claim(statement: str, holds: bool, evidence: str) -> None:
    """Assert one of the lesson's claims on the numbers just produced, printing the evidence."""
    if not holds:
        raise AssertionError(f"Claim failed: {statement}. Evidence: {evidence}")
    print(f"✔ {statement}: {evidence}")
