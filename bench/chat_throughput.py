"""SmolLM2-135M throughput: training tokens/s (LoRA and full) and generation tokens/s.

python -m bench.chat_throughput [--steps 3] [--lengths 64 128]
"""

from __future__ import annotations

import argparse
import time

import torch

from bench.common import save
from helpers import generation, lm, models, runtime
from helpers.chat import fine_tune_chat
from helpers.training import TrainConfig


def train_tokens_per_s(method: str, length: int, batch: int, steps: int) -> float:
    """Training throughput in tokens/s for ``method`` ('lora' or 'full') at ``length`` tokens per example."""
    model, tok = models.load_chat_model()
    text = "Your replacement card will arrive within five working days of your request. " * 40
    ds = lm.text_examples([text] * (batch * (steps + 1)), tok, max_length=length)
    config = TrainConfig(learning_rate=1e-4, max_steps=steps + 1, batch_size=batch, progress=False)
    history = fine_tune_chat(ds, config, method=method, model=model, tokenizer=tok, rank=8).history
    # The first (warm-up) step is included, so the figure is slightly conservative.
    return (steps + 1) * batch * length / history.train_seconds


def generate_tokens_per_s(new_tokens: int, batch: int) -> float:
    """Greedy generation throughput in new tokens/s for a batch of short prompts."""
    model, tok = models.load_chat_model()
    prompts = [generation.user_message(f"Question {i}: how do I order a new card?") for i in range(batch)]
    generation.generate(model, tok, prompts[:1], max_new_tokens=4)  # warm-up
    start = time.perf_counter()
    replies = generation.generate(model, tok, prompts, max_new_tokens=new_tokens, batch_size=batch)
    seconds = time.perf_counter() - start
    produced = sum(len(tok(r, add_special_tokens=False)["input_ids"]) for r in replies)
    return produced / seconds


def main() -> None:
    """Measure and write bench/results/chat_throughput.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 128])
    args = parser.parse_args()
    runtime.setup_notebook()
    rows = []
    for length in args.lengths:
        for method in ("lora", "full"):
            tps = train_tokens_per_s(method, length, args.batch, args.steps)
            rows.append(
                {
                    "what": f"train {method}",
                    "tokens_per_example": length,
                    "batch": args.batch,
                    "tokens_per_s": round(tps, 1),
                }
            )
            print(rows[-1], flush=True)
    for batch in (1, 8):
        tps = generate_tokens_per_s(48, batch)
        rows.append(
            {"what": "generate greedy", "tokens_per_example": 48, "batch": batch, "tokens_per_s": round(tps, 1)}
        )
        print(rows[-1], flush=True)
    save("chat_throughput", {"rows": rows, "threads": torch.get_num_threads()})


if __name__ == "__main__":
    main()
