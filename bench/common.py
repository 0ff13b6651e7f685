"""Shared bits of the benchmark scripts: machine description and result files."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

import torch

from helpers import precision, runtime

# $WORKBOOK_BENCH_RESULTS sends results elsewhere (a rehearsal at toy sizes must not replace measured numbers).
RESULTS = Path(os.environ.get("WORKBOOK_BENCH_RESULTS") or Path(__file__).resolve().parent / "results")


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux, else the platform's processor string)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown CPU"


def cpu_features() -> list[str]:
    """The vector and matrix instructions that decide CPU training speed: AVX2, AVX-512, AVX-512 BF16, AMX."""
    checks = {
        "AVX2": torch.cpu._is_avx2_supported,
        "AVX-512": torch.cpu._is_avx512_supported,
        "AVX-512 BF16": torch.cpu._is_avx512_bf16_supported,
        "AMX": torch.cpu._is_amx_tile_supported,
    }
    return [name for name, has in checks.items() if has()]


def commit() -> str:
    """The short git commit of the code being measured, with "+changes" when the tree has uncommitted edits."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True)
    except OSError:
        return "unknown"
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "") if head.returncode == 0 else "unknown"


def machine() -> dict:
    """What the numbers were measured on."""
    return {
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "cpu_cores": os.cpu_count(),
        "cpu_model": cpu_model(),
        "cpu_features": cpu_features(),
        "torch_threads": torch.get_num_threads(),
        "auto_precision": precision.resolve("auto", runtime.pick_device().type).reason,
        "platform": platform.platform(terse=True),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def save(name: str, payload: dict) -> Path:
    """Write bench/results/<name>.json with the machine description added."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), "commit": commit(), **payload}, indent=1))
    print(f"wrote {path}")
    return path


def kept_rows(old: Path) -> list[dict]:
    """The rows of an earlier results file worth keeping beside a partial re-run: all of them if it was timed on
    this CPU, none otherwise (one file, one machine). Each row names its notebook."""
    if not old.exists():
        return []
    earlier = json.loads(old.read_text())
    if earlier["machine"].get("cpu_model") != cpu_model():
        print(f"{old.name} was timed on {earlier['machine'].get('cpu_model')}; its other rows are dropped.")
        return []
    return earlier["rows"]
