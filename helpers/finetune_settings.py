"""The command-line fine-tuner's settings check (one sentence per bad value) and its starting model."""

from __future__ import annotations

import math
from pathlib import Path

from transformers import AutoConfig

from helpers.models import load_classifier

# setting: (whole number?, smallest value, an example); every one must also be finite
LIMITS = {
    "epochs": (False, 0, "3"),
    "lr": (False, 0, "5e-4"),
    "batch_size": (True, 1, "16"),
    "max_length": (True, 2, "128"),
    "lora_rank": (True, 1, "8"),
    "max_steps": (True, 1, "100"),
    "checkpoint_every": (True, 1, "50"),
}


def check_settings(**values: float | int | None) -> None:
    """Raise ValueError naming the first setting that is not a finite number in range (None: not set)."""
    for name, value in values.items():
        whole, smallest, example = LIMITS[name]
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if (
            value is None
            or number
            and (value >= smallest if whole else value > smallest)
            and (not whole or float(value).is_integer())
        ):
            continue
        kind = f"a whole number of at least {smallest}" if whole else "a finite number above 0"
        raise ValueError(f"{name}={value!r} is not allowed: it must be {kind} (for example {name}={example}).")


def load_model(labels: list[str], model: str | Path | None):
    """(classifier, tokenizer) for ``labels``; a saved classifier for another number of labels gets a sentence."""
    try:
        return load_classifier(labels, model=model)
    except RuntimeError as err:
        if "mismatch" not in str(err):
            raise
        try:
            heads = AutoConfig.from_pretrained(str(model)).num_labels
        except OSError:
            heads = "another number of"
        raise ValueError(
            f"The model {model} is a classifier for {heads} labels but the training data has "
            f"{len(labels)}; pass model='<the model it was fine-tuned from>', or train on data with "
            "its labels."
        ) from None
