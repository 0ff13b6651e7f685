"""The one recipe for fine-tuning a chat model (supervised fine-tuning, SFT), and replay mixing.

``fine_tune_chat`` teaches a causal LM to write the assistant's replies of chat conversations: the loss covers
only the assistant's tokens (``helpers.lm.chat_examples``), with LoRA adapters or every weight training.
``mix_replay`` mixes general conversations into a narrow training set, a remedy for forgetting.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import torch
from datasets import Dataset

from helpers.adapters import add_lora, count_parameters
from helpers.classifier import FineTuned, check_method
from helpers.lm import chat_examples, lm_collator
from helpers.models import load_chat_model
from helpers.runtime import seed_everything
from helpers.training import TrainConfig, train

Messages = list[dict[str, str]]
METHODS = ("lora", "full")


def fine_tune_chat(
    train_data: Sequence[Messages] | Dataset,
    config: TrainConfig | None = None,
    *,
    method: str = "lora",
    eval_data: Sequence[Messages] | Dataset | None = None,
    model: str | Path | torch.nn.Module | None = None,
    tokenizer=None,
    max_length: int = 256,
    assistant_only: bool = True,
    rank: int = 8,
    alpha: float | None = None,
    target_modules: Sequence[str] | None = None,
    resume: bool = False,
) -> FineTuned:
    """Fine-tune a causal LM on chat conversations with ``method`` ('lora' or 'full'); returns a ``FineTuned``.

    Data: conversations (lists of {'role', 'content'} ending with the assistant's reply), tokenised here at
    ``max_length`` with the loss on the assistant's tokens only (``assistant_only``), or a tokenised dataset
    (``input_ids``, ``labels``; e.g. plain text from ``helpers.lm.text_examples``). ``model``: a hub id or folder
    (None: the bundled SmolLM2), loaded after seeding with ``config.seed``; or a built ``nn.Module`` with its
    ``tokenizer``, used as it is (no seeding; a peft model keeps its adapters). ``eval_data`` adds an eval loss.
    """
    config = config or TrainConfig()
    check_method(method, METHODS)
    if isinstance(model, torch.nn.Module):
        if tokenizer is None:
            raise ValueError("A built model needs its tokenizer: pass tokenizer= with model=.")
        net = model
    else:
        seed_everything(config.seed)  # LoRA's matrices start alike in every run with this seed
        net, tokenizer = load_chat_model(model)
    train_tok = _tokenised(train_data, tokenizer, max_length, assistant_only)
    eval_tok = None if eval_data is None else _tokenised(eval_data, tokenizer, max_length, assistant_only)
    if method == "full":
        net.requires_grad_(True)
    elif not hasattr(net, "peft_config"):
        net = add_lora(net, rank=rank, alpha=alpha, target_modules=target_modules)
    history = train(net, train_tok, config, eval_tok, collate_fn=lm_collator(tokenizer), resume=resume)
    trainable, total = count_parameters(net)
    return FineTuned(net, tokenizer, history, trainable, total, train_tok, eval_tok, max_length=max_length)


def mix_replay(domain: Sequence[Messages], replay: Sequence[Messages], share: float, seed: int = 0) -> list[Messages]:
    """Domain conversations with general ones mixed in so they make up ``share`` of the result, shuffled.

    When the share needs more general examples than ``replay`` holds, the pool is used whole as often as needed
    (each pass in a new order), as a replay buffer does, so every example is used k or k + 1 times.
    """
    if not 0 <= share < 1:
        raise ValueError(f"replay share must be in [0, 1), got {share}.")
    n_replay = round(share * len(domain) / (1 - share))
    if n_replay and not replay:
        raise ValueError(f"A replay share of {share:.0%} needs general examples to mix in; replay is empty.")
    rng = random.Random(seed)
    passes, rest = divmod(n_replay, max(1, len(replay)))
    picked = [c for _ in range(passes) for c in rng.sample(list(replay), len(replay))] + rng.sample(list(replay), rest)
    mixed = list(domain) + picked
    rng.shuffle(mixed)
    return mixed


def _tokenised(data: Sequence[Messages] | Dataset, tokenizer, max_length: int, assistant_only: bool) -> Dataset:
    if isinstance(data, Dataset):
        if "input_ids" not in data.column_names:
            raise ValueError(
                f"The dataset has no 'input_ids' column (columns: {', '.join(data.column_names)}); pass the "
                "conversations themselves, or tokenise them with helpers.lm.chat_examples(...)."
            )
        return data
    if not data:
        raise ValueError("No conversations given: pass at least one list of messages ending with the assistant's.")
    return chat_examples(data, tokenizer, max_length, assistant_only=assistant_only)
