"""Cache slow experiment results on disk so a re-opened notebook (or a workshop) skips the wait.

Results are keyed by name, profile and the exact settings, so changing a knob
recomputes. They live under build/cache/ of the checkout (``helpers.paths``).
WORKBOOK_CACHE=off (set by `make test`) always recomputes, and still stores the result: a later run with the cache
on (the browser test after `make test`, a learner re-opening a notebook) reuses it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers.paths import build_dir
from helpers.runtime import profile


def cache_root() -> Path:
    """The folder of cached results: build/cache in the checkout (see ``helpers.paths.build_dir``)."""
    return build_dir() / "cache"


def cache_enabled() -> bool:
    """False when $WORKBOOK_CACHE is 'off' (or '0')."""
    return os.environ.get("WORKBOOK_CACHE", "on").lower() not in ("off", "0", "false", "no")


def _path(name: str, settings: dict[str, Any]) -> Path:
    digest = hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return cache_root() / profile().name / f"{name}-{digest}.json"


def lookup(name: str, settings: dict[str, Any]) -> Any | None:
    """The result stored for name, profile and settings, or None (none stored, or the cache is off); writes nothing."""
    path = _path(name, settings)
    if not (cache_enabled() and path.exists()):
        return None
    print(f"Using cached results from {path.name} in {path.parent} (set WORKBOOK_CACHE=off to rerun).")
    return json.loads(path.read_text())["result"]


def cached(name: str, settings: dict[str, Any], compute: Callable[[], Any]) -> Any:
    """``compute()``'s JSON-serialisable result, reused from disk when name, profile and settings match; stored even
    with the cache off, so that a later run with it on reuses it."""
    stored = lookup(name, settings)
    if stored is not None:
        return stored
    path = _path(name, settings)
    result = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"settings": settings, "result": result}, default=str))
    os.replace(tmp, path)
    return result
