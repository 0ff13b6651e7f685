"""Shared bits of the benchmark scripts: machine description and result files."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


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


def machine() -> dict:
    """What the numbers were measured on."""
    return {
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "cpu_cores": os.cpu_count(),
        "cpu_model": cpu_model(),
        "cpu_features": cpu_features(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(terse=True),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


def save(name: str, payload: dict) -> Path:
    """Write bench/results/<name>.json with the machine description added."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=1))
    print(f"wrote {path}")
    return path
