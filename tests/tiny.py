"""Tiny models and datasets for fast unit tests (seconds, not minutes)."""

from __future__ import annotations

import torch
from datasets import ClassLabel, Dataset, Features, Value
from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, LlamaConfig, LlamaForCausalLM

from helpers import models
from helpers.adapters import add_lora

TEXTS = {
    "card": ["my card has not arrived", "where is my new card", "card still not delivered", "when does my card come"],
    "fee": ["why was I charged a fee", "there is an extra charge", "what is this fee for", "I paid a charge twice"],
}


def tokenizer():
    """The bundled MiniLM tokenizer (local files)."""
    return AutoTokenizer.from_pretrained(models.minilm_dir())


def tiny_classifier(
    n_labels: int = 2, seed: int = 0, vocab_size: int = 30522, max_positions: int = 64
) -> BertForSequenceClassification:
    """A 2-layer, 32-wide BERT classifier (MiniLM's vocabulary by default), its weights drawn from ``seed``."""
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=n_labels,
        max_position_embeddings=max_positions,
    )
    return BertForSequenceClassification(config)


def tiny_causal_lm(
    vocab_size: int, seed: int = 0, hidden: int = 32, layers: int = 2, max_positions: int = 128
) -> LlamaForCausalLM:
    """A small Llama causal LM (``layers`` layers, ``hidden`` wide), its weights drawn from ``seed``."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
    )
    return LlamaForCausalLM(config)


def tiny_lora_lm(vocab_size: int, seed: int = 0, scale: float = 0.3, rank: int = 4):
    """``tiny_causal_lm`` with LoRA adapters whose B is drawn from N(0, ``scale``) (as if trained; 0: fresh)."""
    model = add_lora(tiny_causal_lm(vocab_size, seed=seed, max_positions=256), rank=rank)
    torch.manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, scale)
    return model


def two_class_dataset(repeat: int = 4) -> Dataset:
    """A small, learnable two-intent dataset with a ClassLabel column."""
    texts, labels = [], []
    for _ in range(repeat):
        for label, examples in TEXTS.items():
            texts += examples
            labels += [label] * len(examples)
    features = Features({"text": Value("string"), "label": ClassLabel(names=list(TEXTS))})
    return Dataset.from_dict({"text": texts, "label": labels}, features=features)
