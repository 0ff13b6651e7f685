"""Device, seeds, run profiles and the environment report."""

from __future__ import annotations

import json
import os
import platform
import random
import sys
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import datasets
import numpy as np
import seaborn as sns
import torch
import transformers
from transformers.utils import logging as hf_logging

from helpers import models
from helpers.paths import BENCH_RESULTS_DIR

PROFILES = ("smoke", "workshop", "full")
T = TypeVar("T")

# Ten intents that span the domain (cards, transfers, top-ups, fees, security);
# the smoke and workshop profiles train on these so a CPU run stays short.
CORE_INTENTS = (
    "card_arrival",
    "lost_or_stolen_card",
    "exchange_rate",
    "top_up_failed",
    "transfer_not_received_by_recipient",
    "cash_withdrawal_charge",
    "pin_blocked",
    "Refund_not_showing_up",
    "change_pin",
    "declined_card_payment",
)


@dataclass(frozen=True)
class Profile:
    """The sizes every notebook reads for one run budget (smoke, workshop or full)."""

    name: str
    n_intents: int  # banking77 intents used (77 = all of them)
    train_per_class: int | None  # training examples per intent (None = all)
    test_per_class: int | None  # test examples per intent (None = all)
    max_length: int  # tokens per classification example
    epochs: int  # passes over the training data for a standard fine-tune
    batch_size: int  # examples per optimiser step
    lm_max_length: int  # tokens per chat-model example
    lm_steps: int  # optimiser steps for a chat-model fine-tune
    n_generate: int  # held-out prompts the chat model answers in an evaluation

    def pick(self, smoke: T, workshop: T, full: T) -> T:
        """Return the value given for this profile: ``profile().pick(smoke=2, workshop=5, full=20)``."""
        return {"smoke": smoke, "workshop": workshop, "full": full}[self.name]

    @property
    def intents(self) -> tuple[str, ...] | None:
        """The intent names this profile trains on, or None for all 77."""
        return None if self.n_intents >= 77 else CORE_INTENTS[: self.n_intents]


_PROFILES = {
    "smoke": Profile(
        "smoke",
        n_intents=10,
        train_per_class=16,
        test_per_class=20,
        max_length=32,
        epochs=3,
        batch_size=16,
        lm_max_length=96,
        lm_steps=12,
        n_generate=12,
    ),
    "workshop": Profile(
        "workshop",
        n_intents=10,
        train_per_class=60,
        test_per_class=40,
        max_length=48,
        epochs=4,
        batch_size=16,
        lm_max_length=128,
        lm_steps=40,
        n_generate=30,
    ),
    "full": Profile(
        "full",
        n_intents=77,
        train_per_class=None,
        test_per_class=None,
        max_length=64,
        epochs=5,
        batch_size=32,
        lm_max_length=256,
        lm_steps=300,
        n_generate=60,
    ),
}


def profile(name: str | None = None) -> Profile:
    """The active run profile: ``name``, else $WORKBOOK_PROFILE, else full on CUDA and workshop elsewhere."""
    name = name or os.environ.get("WORKBOOK_PROFILE") or ("full" if torch.cuda.is_available() else "workshop")
    name = name.strip().lower()
    if name not in _PROFILES:
        raise ValueError(f"Unknown profile {name!r}. Set WORKBOOK_PROFILE to one of: {', '.join(PROFILES)}.")
    return _PROFILES[name]


def pick_device(prefer: str | None = None) -> torch.device:
    """The device to train on: ``prefer`` if given, else CUDA, then Apple MPS, then CPU."""
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> int:
    """Seed Python, NumPy and torch (all devices) so a run repeats exactly; returns the seed."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return seed


def environment_report() -> dict[str, Any]:
    """Versions, hardware, the active profile and which bundled models are installed."""
    device = pick_device()
    report: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "device": str(device),
        "cpu_threads": torch.get_num_threads(),
        "profile": profile().name,
    }
    if device.type == "cuda":
        report["gpu"] = torch.cuda.get_device_name(0)
    for pkg in ("datasets", "peft", "accelerate", "evaluate", "sentence_transformers"):
        module = sys.modules.get(pkg) or __import__(pkg)
        report[pkg] = getattr(module, "__version__", "?")
    report["models"] = models.bundled_models()
    return report


def profile_table(p: Profile | None = None) -> dict[str, Any]:
    """The active profile's sizes as a plain dict (for display)."""
    return asdict(p or profile())


def measured_run_times(notebook: str) -> str:
    """One line: this notebook's measured seconds per profile and the CPU they were measured on (bench/results)."""
    found = []
    for name in PROFILES:
        path = BENCH_RESULTS_DIR / f"notebooks-{name}.json"
        result = json.loads(path.read_text()) if path.exists() else {"rows": []}
        row = next((r for r in result["rows"] if r["notebook"].startswith(notebook)), None)
        if row:
            m = result["machine"]
            cpu = f"{m.get('cpu_model', 'CPU')} ({', '.join(m.get('cpu_features', [])) or 'no AVX2'})"
            found.append(f"{name} {row['seconds'] / 60:.1f} min on {m['cpu_cores']} cores of {cpu}")
    if not found:
        return f"{notebook}: no measured run time yet (python -m bench.notebook_times)"
    return f"measured run time of {notebook}: " + "; ".join(found) + ". Other CPUs differ (README: Hardware)."


def setup_notebook(seed: int = 0, notebook: str | None = None) -> Profile:
    """Call once at the top of a notebook: quiet library logs, seaborn theme, seed, and a one-line report.

    Returns the active profile. Prints the seed, profile, device and library versions, so every executed notebook
    records what it ran with, and with ``notebook`` (its number, "07") its measured run times per profile.
    """
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # per-file "Loading weights" bars; our own loops keep theirs
    datasets.disable_progress_bars()
    sns.set_theme(style="whitegrid", context="notebook")
    seed_everything(seed)
    active = profile()
    print(
        f"profile={active.name} seed={seed} device={pick_device()} torch={torch.__version__} "
        f"transformers={transformers.__version__} datasets={datasets.__version__} python={platform.python_version()}"
    )
    if notebook:
        print(measured_run_times(notebook))
    return active
