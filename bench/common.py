"""Shared bits of the benchmark scripts: machine description and result files."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    """What the numbers were measured on."""
    return {"device": "cuda" if torch.cuda.is_available() else "cpu", "cpu_cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "platform": platform.platform(terse=True),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M")}


def save(name: str, payload: dict) -> Path:
    """Write bench/results/<name>.json with the machine description added."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=1))
    print(f"wrote {path}")
    return path
