"""Where the workbook reads and writes: its checkout's build/ folder, or a user cache folder for an installed copy."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_PARENT = Path(__file__).resolve().parent.parent


def project_root() -> Path | None:
    """The workbook checkout that holds this package (notebooks/ beside helpers/), or None for an installed copy."""
    return PACKAGE_PARENT if (PACKAGE_PARENT / "notebooks").is_dir() else None


def user_cache_dir() -> Path:
    """$WORKBOOK_CACHE_DIR, else $XDG_CACHE_HOME/fine-tuning-workbook, else ~/.cache/fine-tuning-workbook."""
    explicit = os.environ.get("WORKBOOK_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fine-tuning-workbook"


def build_dir() -> Path:
    """Where results, cached runs and saved adapters go: the checkout's build/, never inside an installed package."""
    root = project_root()
    return root / "build" if root is not None else user_cache_dir() / "build"
