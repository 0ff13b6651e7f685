"""Notebook 04's models after training: reload them from their files, score them once, merge by hand and by peft,
export and reload as plain transformers."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification

from helpers import intervals, lora, models, paths
from helpers.adapters import peft_wrapping
from helpers.evaluation import predict_labels, predict_logits


def load_adapter(folder: str | Path, labels: list[str], adapter_name: str = "default"):
    """A fresh MiniLM base with the saved adapter (and its classifier head) loaded from ``folder``."""
    if not (Path(folder) / "adapter_config.json").exists():
        raise FileNotFoundError(f"{folder} holds no adapter_config.json; save one with model.save_pretrained(folder).")
    base, _ = models.load_classifier(labels)
    with peft_wrapping():
        return PeftModel.from_pretrained(base, str(folder), adapter_name=adapter_name)


def logits_on(model, dataset, tokenizer) -> np.ndarray:
    """Logits (N, C) of ``model`` on a tokenised dataset, in its order."""
    return predict_logits(model, dataset, tokenizer)[0]


def load_trained(row: dict, labels: list[str]) -> torch.nn.Module:
    """The finished classifier of one ``lora_and_peft.run_variant`` row, rebuilt on a fresh MiniLM from its folder.

    A LoRA row's folder holds a peft adapter (``load_adapter``); a head-only or full row's holds its trained
    weights in ``trained.safetensors``, loaded over the pre-trained ones.
    """
    if row["method"] == "lora":
        return load_adapter(row["folder"], labels).eval()
    model, _ = models.load_classifier(labels)
    unexpected = model.load_state_dict(load_file(str(Path(row["folder"]) / "trained.safetensors")), strict=False)[1]
    if unexpected:
        raise ValueError(f"{row['folder']} holds weights this model does not have: {', '.join(unexpected[:3])}.")
    return model.eval()


def score_saved(rows: list[dict], dataset, labels: list[str], tokenizer) -> list[dict]:
    """Each saved model's final score row on the tokenised ``dataset`` (``intervals.scored``: accuracy, its 95%
    bootstrap interval 'low' to 'high', and 'right' per message, in dataset order), one row per variant and seed.

    Meant for the test split, once, after every run has trained; ``right`` lets two variants be compared on the same
    messages (``helpers.intervals.paired_difference``).
    """
    references = dataset["labels"]
    return [
        {
            "variant": row["variant"],
            "method": row["method"],
            "seed": row["seed"],
            **intervals.scored(predict_labels(load_trained(row, labels), dataset, tokenizer), references),
        }
        for row in rows
    ]


def hand_merged(peft_model, labels: list[str]) -> torch.nn.Module:
    """A fresh MiniLM holding ``peft_model``'s trained adapter and head, merged with ``helpers.lora.merge_lora``.

    Our ``LoRALinear`` layers go on the same targets with the same rank and alpha, get peft's A and B copied in,
    and are folded into plain linear layers by our own code: no peft call touches the weights.
    """
    settings = peft_model.peft_config[peft_model.active_adapter]
    base, _ = models.load_classifier(labels)
    lora.inject_lora(base, sorted(settings.target_modules), r=settings.r, alpha=settings.lora_alpha)
    lora.copy_lora_weights(peft_model, base)
    trained = peft_model.get_base_model()
    for name in settings.modules_to_save or []:  # the new head trains in full: copy it as it is
        wrapper = getattr(trained, name, None)  # peft lists 'classifier' and 'score'; a model has one of them
        if wrapper is not None:
            getattr(base, name).load_state_dict(wrapper.modules_to_save[peft_model.active_adapter].state_dict())
    lora.merge_lora(base)
    return base.eval()


def logits_gap(model_a, model_b, dataset, tokenizer) -> dict[str, float]:
    """Largest absolute logit difference of two classifiers on ``dataset``, and how many predictions differ."""
    a, b = logits_on(model_a, dataset, tokenizer), logits_on(model_b, dataset, tokenizer)
    return {
        "max_logit_gap": float(np.abs(a - b).max()),
        "different_predictions": int((a.argmax(-1) != b.argmax(-1)).sum()),
    }


def export_and_reload(merged: torch.nn.Module, tokenizer, root: str | Path | None = None) -> dict:
    """Save a merged model with ``save_pretrained`` in a temporary folder under ``root`` (default build/), reload it.

    The reload is ``AutoModelForSequenceClassification.from_pretrained``: plain transformers, no peft. Returns the
    reloaded model, its class name, the files written and their size in MiB.
    """
    root = Path(root or paths.build_dir())
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix="merged_") as folder:
        merged.save_pretrained(folder)  # safetensors by default
        tokenizer.save_pretrained(folder)
        reloaded = AutoModelForSequenceClassification.from_pretrained(folder, use_safetensors=True)
        files = sorted(f.name for f in Path(folder).iterdir())
        size = paths.folder_size_mib(folder)
    return {"model": reloaded.eval(), "class": type(reloaded).__name__, "files": files, "mib": size}
