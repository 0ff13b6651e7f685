"""Notebook 01, generative side: a tiny causal LM from scratch vs SmolLM2 + LoRA, same text, same wall time.

The from-scratch model is a small Llama (the SmolLM2 architecture family) that
shares SmolLM2's tokenizer, so both models predict the same tokens and their
perplexities compare directly. Also: training-FLOPs estimates and the public
pre-training figures of the two bundled models.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from helpers import adapters, data, lm, models, precision
from helpers.chat import fine_tune_chat
from helpers.history import History
from helpers.runtime import Profile
from helpers.training import TrainConfig

# Public pre-training figures (cited in the notebook; FLOPs use the ~6 x params x tokens rule).
PRETRAINING = {
    "all-MiniLM-L6-v2": {
        "params": 22.7e6,
        "what": "MiniLM-L6-H384 (distilled from a larger pre-trained model), then contrastive training on "
        "1B+ sentence pairs: 100k steps x 1,024 pairs on a TPU v3-8 (model card)",
        "examples": 100_000 * 1024,  # sentence pairs seen in the contrastive stage
        "tokens": 100_000 * 1024 * 2 * 128,  # upper bound: two texts per pair, at most 128 tokens each
        "source": "sentence-transformers/all-MiniLM-L6-v2 model card (bundled README)",
    },
    "SmolLM2-135M": {
        "params": 135e6,
        "what": "pre-trained on ~2 trillion tokens (web, code, maths), then instruction-tuned",
        "examples": None,
        "tokens": 2e12,
        "source": "Allal et al. 2025, SmolLM2: When Smol Goes Big",
    },
}


@dataclass(frozen=True)
class LMSettings:
    """Knobs of the generative race; both models get the same wall-clock budget on the same text."""

    n_train_texts: int  # banking77 training queries used as domain text
    n_heldout_texts: int  # held-out queries: validation (from banking77 train) in the race, test at the end
    seconds: float  # training wall time per model
    batch_size: int
    lr_scratch: float
    lr_lora: float
    max_length: int


def lm_settings(p: Profile) -> LMSettings:
    """The generative race for profile ``p``."""
    return LMSettings(
        n_train_texts=p.pick(smoke=1000, workshop=4000, full=10003),
        n_heldout_texts=p.pick(smoke=100, workshop=300, full=1000),
        seconds=p.pick(smoke=20.0, workshop=45.0, full=120.0),
        batch_size=16,
        lr_scratch=3e-3,
        lr_lora=1e-3,
        max_length=48,
    )


def domain_texts(n_train: int, n_heldout: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """(training, validation) banking-support text: disjoint banking77 train queries."""
    texts = data.load_banking77("train", seed=seed).shuffle(seed=seed)["text"]
    return list(texts[:n_train]), list(texts[n_train : n_train + n_heldout])


def test_texts(n: int, seed: int = 0) -> list[str]:
    """``n`` banking77 test queries, for the final held-out perplexity (scored once, at the end)."""
    return list(data.load_banking77("test", seed=seed).shuffle(seed=seed)["text"][:n])


def tiny_llama(
    tokenizer, hidden: int = 192, layers: int = 4, heads: int = 4, max_positions: int = 256, seed: int = 0
) -> LlamaForCausalLM:
    """A randomly initialised small Llama that uses ``tokenizer``'s vocabulary (tied input/output embeddings)."""
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 8 // 3,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def seconds_per_step(model: torch.nn.Module, dataset, collate_fn, batch_size: int, probes: int = 3) -> float:
    """Median seconds of one forward+backward pass on a batch, in the precision training will use ("auto")."""
    batch = collate_fn([dataset[i] for i in range(min(batch_size, len(dataset)))])
    model.train()
    device = next(model.parameters()).device.type
    bf16 = precision.resolve("auto", device, model, batch).mode == "bf16"  # as train() will choose for this run
    times = []
    for _ in range(probes + 1):  # the first pass warms up kernels and allocators
        start = time.perf_counter()
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch).loss
        loss.backward()
        times.append(time.perf_counter() - start)
    model.zero_grad(set_to_none=True)
    return float(sorted(times[1:])[len(times[1:]) // 2])


MIN_RACE_STEPS = 10  # enough steps to leave the uniform-guess perplexity far behind, whatever the timing probe says


def train_for_seconds(
    model,
    train_set,
    tokenizer,
    seconds: float,
    learning_rate: float,
    batch_size: int,
    seed: int = 0,
    progress: bool = True,
    method: str = "full",
) -> History:
    """Fine-tune ``model`` (``method`` 'full', or 'lora' for a peft model) for about ``seconds`` of wall time.

    The number of steps comes from a timing probe of one training step.
    """
    per_step = seconds_per_step(model, train_set, lm.lm_collator(tokenizer), batch_size) * 1.15  # + optimiser step
    steps = max(MIN_RACE_STEPS, int(seconds / per_step))  # a floor, so a slow timing probe cannot starve a run
    config = TrainConfig(
        learning_rate=learning_rate,
        max_steps=steps,
        batch_size=batch_size,
        warmup_ratio=0.05,
        seed=seed,
        progress=progress,
    )
    return fine_tune_chat(train_set, config, method=method, model=model, tokenizer=tokenizer).history


def race(s: LMSettings, seed: int = 0, progress: bool = True) -> tuple[dict, dict]:
    """Train the from-scratch LM and SmolLM2+LoRA for the same time; return (results, trained models).

    Perplexity in the results is on validation queries (held out from banking77's training split).
    """
    chat, tok = models.load_chat_model()
    train_texts, heldout_texts = domain_texts(s.n_train_texts, s.n_heldout_texts, seed)
    train_set = lm.text_examples(train_texts, tok, s.max_length)
    heldout = lm.text_examples(heldout_texts, tok, s.max_length)
    results = {"base SmolLM2 (no tuning)": _row(chat, None, lm.perplexity(chat, heldout, tok), train_set)}
    built = {"from scratch": tiny_llama(tok, seed=seed), "SmolLM2 + LoRA": adapters.add_lora(chat, rank=8)}
    plans = {"from scratch": ("full", s.lr_scratch), "SmolLM2 + LoRA": ("lora", s.lr_lora)}
    for name, model in built.items():
        print(f"{name}: training for ~{s.seconds:.0f} s")
        method, lr = plans[name]
        history = train_for_seconds(model, train_set, tok, s.seconds, lr, s.batch_size, seed, progress, method)
        results[name] = _row(model, history, lm.perplexity(model, heldout, tok), train_set)
    return results, {**built, "tokenizer": tok, "heldout_texts": heldout_texts}


def _row(model, history, ppl: float, train_set) -> dict:
    trainable, total = adapters.count_parameters(model)
    tokens_per_example = sum(len(ids) for ids in train_set["input_ids"]) / len(train_set)
    seen = history.examples_seen if history else 0
    return {
        "perplexity": ppl,
        "params_trained": trainable if history else 0,
        "params_total": total,
        "steps": history.steps if history else 0,
        "examples_seen": seen,
        "tokens_seen": round(seen * tokens_per_example),
        "seconds": history.train_seconds if history else 0.0,
    }


@torch.no_grad()
def complete(
    model, tokenizer, prefixes: list[str], max_new_tokens: int = 16, temperature: float = 0.7, seed: int = 0
) -> list[str]:
    """Sampled plain-text continuations of each prefix (no chat template: both models learned raw text)."""
    model.eval()
    outs = []
    for prefix in prefixes:
        torch.manual_seed(seed)  # same randomness for every model, so differences come from the weights
        enc = tokenizer(prefix, return_tensors="pt").to(next(model.parameters()).device)
        out = model.generate(
            **enc,
            max_new_tokens=max_new_tokens,
            do_sample=True,
            temperature=temperature,
            top_p=0.95,
            pad_token_id=tokenizer.pad_token_id,
        )
        outs.append(tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True).strip())
    return outs


def train_flops(params_total: float, params_trained: float, tokens: float) -> float:
    """Rough training FLOPs: forward 2N + backward 2N per token, plus 2 x trained params for weight gradients.

    Full training gives the familiar ~6 x params x tokens; a frozen or LoRA model saves the weight-gradient part.
    """
    return tokens * (4 * params_total + 2 * params_trained)


def cost_table(rows: dict[str, dict]) -> pd.DataFrame:
    """Runs and the cited pre-training figures side by side: params trained, examples, tokens, time, FLOPs."""
    table = []
    for name, r in rows.items():
        table.append(
            {
                "run": name,
                "params trained": r["params_trained"],
                "examples seen": r["examples_seen"],
                "tokens seen": r["tokens_seen"],
                "wall time (s)": round(r["seconds"], 1),
                "est. FLOPs": train_flops(r["params_total"], r["params_trained"], r["tokens_seen"]),
            }
        )
    for name, f in PRETRAINING.items():
        table.append(
            {
                "run": f"pre-training {name} (cited)",
                "params trained": f["params"],
                "examples seen": f["examples"],
                "tokens seen": f["tokens"],
                "wall time (s)": None,
                "est. FLOPs": 6 * f["params"] * f["tokens"],
            }
        )
    return pd.DataFrame(table).set_index("run")
