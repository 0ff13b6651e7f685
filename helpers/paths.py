"""Where the workbook reads and writes, and how big a folder is.

Every path the package uses starts here: the folder that holds ``helpers/`` (a checkout of the workbook, or
site-packages for an installed copy), the bundled data, the build folder for results, and the user cache folder.
Every size the workbook reports is in MiB (2**20 bytes).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent  # helpers/
PACKAGE_PARENT = PACKAGE_DIR.parent  # the checkout, or site-packages for an installed copy
DATA_DIR = PACKAGE_PARENT / "data"  # banking77, the bank's knowledge base, the probe and brand-voice data
NOTEBOOKS_DIR = PACKAGE_PARENT / "notebooks"  # the numbered notebooks (a checkout only)
METRICS_DIR = PACKAGE_DIR / "metrics"  # evaluate metrics shipped with the package
BENCH_RESULTS_DIR = PACKAGE_PARENT / "bench" / "results"  # measured run times and benchmarks (a checkout only)
MIB = 2**20  # bytes in a MiB: the unit of every size the workbook reports


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
    """Where results, cached runs and saved models go: the checkout's build/, never inside an installed package."""
    root = project_root()
    return root / "build" if root is not None else user_cache_dir() / "build"


def relative_to_root(path: str | Path) -> Path:
    """``path`` relative to the checkout (``build/shipped/...``) for printing; unchanged when outside it."""
    path, root = Path(path).resolve(), project_root()
    return path.relative_to(root) if root is not None and path.is_relative_to(root) else path


def folder_size_mib(folder: str | Path) -> float:
    """Total size of the files under ``folder`` in MiB (2**20 bytes)."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file()) / MIB
