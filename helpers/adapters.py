"""LoRA adapters through peft, and parameter counting."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence

import torch
from peft import LoraConfig, TaskType, get_peft_model

# Attention projections by model family (what "target_modules" names in each).
ATTENTION_MODULES = {
    "bert": ["query", "key", "value", "attention.output.dense"],
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj"],
}


@contextlib.contextmanager
def peft_wrapping() -> Iterator[None]:
    """Silence the one deprecation warning that peft 0.21 raises from its own code when it wraps a model.

    ``PeftModel.__init__`` reads ``model.is_gradient_checkpointing``, which transformers 5 deprecated in favour
    of ``is_activation_checkpointing``; nothing in this package reads it. Every other warning still shows.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        yield


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def trainable_share(model: torch.nn.Module) -> float:
    """Fraction of parameters that will be trained (0..1)."""
    trainable, total = count_parameters(model)
    return trainable / total


def add_lora(
    model: torch.nn.Module,
    rank: int = 8,
    alpha: float | None = None,
    dropout: float = 0.0,
    target_modules: Sequence[str] | None = None,
    train_head: bool = True,
):
    """Wrap ``model`` with peft LoRA adapters (base frozen) and return the PeftModel.

    Defaults: the attention projections of the model's family, ``alpha = 2 * rank``.
    For a sequence classifier, ``train_head`` also trains the new classification head
    (it starts random, so it must learn).
    """
    if rank <= 0:
        raise ValueError(f"LoRA rank must be a positive integer, got {rank}.")
    family = model.config.model_type
    targets = list(target_modules or ATTENTION_MODULES.get(family, []))
    if not targets:
        raise ValueError(f"No default LoRA targets for model type {family!r}; pass target_modules=[...].")
    is_classifier = hasattr(model, "classifier") or hasattr(model, "score")
    task = TaskType.SEQ_CLS if is_classifier else TaskType.CAUSAL_LM
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha if alpha is not None else 2 * rank,
        lora_dropout=dropout,
        target_modules=targets,
        task_type=task,
        modules_to_save=None if train_head or not is_classifier else [],
    )
    with peft_wrapping():
        peft_model = get_peft_model(model, config)
    if is_classifier and not train_head:
        for name, p in peft_model.named_parameters():
            if "classifier" in name or "score" in name:
                p.requires_grad_(False)
    return peft_model


def freeze_all_but_head(model: torch.nn.Module) -> torch.nn.Module:
    """Freeze the encoder of a sequence classifier so only its classification head trains."""
    head = "classifier" if hasattr(model, "classifier") else "score"
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(head))
    return model


def set_dropout(model: torch.nn.Module, p: float) -> torch.nn.Module:
    """Set every dropout layer of ``model`` to probability ``p`` (and record it in a BERT-style config)."""
    if not 0 <= p < 1:
        raise ValueError(f"dropout must be in [0, 1), got {p}.")
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p
    config = getattr(model, "config", None)
    for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        if hasattr(config, name):
            setattr(config, name, p)
    return model
