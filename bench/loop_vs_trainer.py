"""The workbook's training loop against the Hugging Face Trainer: same MiniLM fine-tune, examples per second.

Same data (banking77, profile intents), batch size, steps, learning rate,
precision and dynamic padding; several repetitions of each, interleaved.
    python -m bench.loop_vs_trainer [--steps 60] [--reps 3] [--per-class 4]
On a GPU it also reports model FLOPs utilisation (MFU): 6 x non-embedding parameters x real tokens per second,
over the GPU's dense bf16 peak.
"""

from __future__ import annotations

import argparse
import statistics

import torch

from bench.common import save
from helpers import data, models, runtime
from helpers.classifier import fine_tune_classifier
from helpers.lessons import trainer_parity
from helpers.training import TrainConfig

# Dense bf16 peak TFLOP/s (vendor data sheets, without sparsity), by a name fragment of torch's device name.
PEAK_BF16_TFLOPS = {"H200": 989, "H100": 989, "A100": 312, "L40S": 362, "L4": 121, "A10G": 70, "A10": 125, "T4": 65}


def gpu_peak_flops() -> float | None:
    """The GPU's dense bf16 peak in FLOP/s from PEAK_BF16_TFLOPS, or None (no GPU, or one not in the table)."""
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name(0)
    return next((t * 1e12 for key, t in PEAK_BF16_TFLOPS.items() if key in name), None)


def flops_per_token(labels) -> float:
    """Training FLOPs per token of the MiniLM classifier: 6 x its non-embedding parameters (Kaplan et al. 2020)."""
    model, _ = models.load_classifier(labels)
    embedding = sum(p.numel() for n, p in model.named_parameters() if "embeddings" in n)
    return 6.0 * (sum(p.numel() for p in model.parameters()) - embedding)


def bench_config(steps: int, batch: int) -> TrainConfig:
    """The one recipe both sides run: the same steps, batch, learning rate, warm-up and weight decay."""
    return TrainConfig(
        learning_rate=1e-4, max_steps=steps, batch_size=batch, progress=False, warmup_ratio=0.1, weight_decay=0.01
    )


def workbook_loop(train_tok, labels, steps: int, batch: int) -> float:
    """Seconds for ``steps`` optimiser steps with the workbook's recipe (helpers.classifier, one loop)."""
    return fine_tune_classifier(train_tok, bench_config(steps, batch), labels=labels).history.train_seconds


def hf_trainer(train_tok, labels, steps: int, batch: int) -> float:
    """Seconds for the same steps with transformers.Trainer, set up as notebook 00's parity cell sets it up."""
    return trainer_parity.trainer_fine_tune(train_tok, labels, bench_config(steps, batch), steps)["seconds"]


def main() -> None:
    """Interleave repetitions of both and write bench/results/loop_vs_trainer.json."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--per-class", type=int, default=None, help="training examples per intent (default: all)")
    args = parser.parse_args()
    runtime.setup_notebook()
    train = data.load_banking77("train", per_class=args.per_class, seed=0)
    labels = train.features["label"].names
    _, tok = models.load_classifier(labels)
    train_tok = data.tokenize(train, tok, 64)
    runs = {"workbook loop": [], "HF Trainer": []}
    for _ in range(args.reps):
        runs["workbook loop"].append(workbook_loop(train_tok, labels, args.steps, args.batch))
        runs["HF Trainer"].append(hf_trainer(train_tok, labels, args.steps, args.batch))
        print({k: [round(s, 1) for s in v] for k, v in runs.items()}, flush=True)
    examples = args.steps * args.batch
    summary = {
        name: {
            "examples_per_s": {
                "min": examples / max(s),
                "median": examples / statistics.median(s),
                "max": examples / min(s),
            },
            "seconds": s,
        }
        for name, s in runs.items()
    }
    ratio = summary["workbook loop"]["examples_per_s"]["median"] / summary["HF Trainer"]["examples_per_s"]["median"]
    tokens_per_example = sum(map(len, train_tok["input_ids"])) / len(train_tok)  # real tokens, padding not counted
    peak, per_token = gpu_peak_flops(), flops_per_token(labels)
    for s in summary.values():
        flops = s["examples_per_s"]["median"] * tokens_per_example * per_token
        s["model_tflops"], s["mfu"] = flops / 1e12, (flops / peak if peak else None)
    save(
        "loop_vs_trainer-gpu" if torch.cuda.is_available() else "loop_vs_trainer",  # a GPU's run beside the CPU's
        {
            "steps": args.steps,
            "batch_size": args.batch,
            "reps": args.reps,
            "max_length": 64,
            "runs": summary,
            "ratio_workbook_over_trainer": ratio,
            "tokens_per_example": tokens_per_example,
            "gpu_peak_tflops": peak / 1e12 if peak else None,
        },
    )


if __name__ == "__main__":
    main()
