"""History: what one training run did, step by step, ready to tabulate and plot."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from helpers.plots import plot_history


@dataclass
class History:
    """Training loss per optimiser step and evaluation records, plus the run's totals."""

    config: dict[str, Any] = field(default_factory=dict)
    total_steps: int = 0
    train: list[dict[str, float]] = field(default_factory=list)  # step, epoch, loss, lr, examples
    evals: list[dict[str, float]] = field(default_factory=list)  # step, eval_loss, metrics...
    best_step: int | None = None  # step with the lowest eval loss
    restored_step: int | None = None  # step whose weights the model ended with, if not the last
    stopped_early: bool = False
    train_seconds: float = 0.0
    precision: dict[str, str] = field(default_factory=dict)  # {"mode": "no"|"bf16"|..., "reason": why}

    def log_train(self, step: int, epoch: int, loss: float, lr: float, examples: int) -> None:
        """Record one optimiser step."""
        self.train.append({"step": step, "epoch": epoch, "loss": loss, "lr": lr, "examples": examples})

    def log_eval(self, step: int, record: dict[str, float]) -> None:
        """Record one evaluation taken after ``step`` optimiser steps."""
        self.evals.append({"step": step, **record})

    @property
    def steps(self) -> int:
        """Optimiser steps taken."""
        return self.train[-1]["step"] if self.train else 0

    @property
    def examples_seen(self) -> int:
        """Training examples processed (repeats counted)."""
        return int(sum(r["examples"] for r in self.train))

    @property
    def final_loss(self) -> float:
        """Mean training loss over the last 10% of steps (less noisy than the last step)."""
        tail = self.train[-max(1, len(self.train) // 10) :]
        return sum(r["loss"] for r in tail) / len(tail)

    def best(self, metric: str = "eval_loss") -> dict[str, float]:
        """The evaluation record with the lowest ``metric``."""
        return min(self.evals, key=lambda r: r[metric])

    def train_frame(self) -> pd.DataFrame:
        """One row per optimiser step."""
        return pd.DataFrame(self.train)

    def eval_frame(self) -> pd.DataFrame:
        """One row per evaluation."""
        return pd.DataFrame(self.evals)

    def plot(self, ax=None, title: str | None = None, smooth: int = 5):
        """Training loss (smoothed over ``smooth`` steps) and eval loss against steps; returns the axes."""
        return plot_history(self, ax=ax, title=title, smooth=smooth)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        """Inverse of ``to_dict``."""
        return cls(**data)

    def save(self, path: str | Path) -> None:
        """Write the History as valid JSON (a NaN or infinite loss is written as null)."""
        Path(path).write_text(json.dumps(json_safe(self.to_dict()), indent=1, allow_nan=False))

    @classmethod
    def load(cls, path: str | Path) -> History:
        """Read a History written by ``save``."""
        return cls.from_dict(json.loads(Path(path).read_text()))


def json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None: strict JSON has no NaN or Infinity."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value
