"""bf16 against fp32 on this machine: training step time for MiniLM and SmolLM2 LoRA, greedy generation speed,
and banking77 accuracy (10 intents, all their training data) with bootstrap intervals, trained each way.

    python -m bench.precision_speed [--steps 10] [--name precision_speed-amd-epyc]
Writes bench/results/<name>.json (one file per measured CPU; bench/report.py renders each). On a CPU without
native bf16 the bf16 rows are skipped: emulated bf16 is many times slower there (that is why
``mixed_precision="auto"`` never picks it on such a CPU).
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from datasets import Dataset

from bench.common import RESULTS, save
from helpers import data, evaluation, generation, intervals, knowledge, lm, models, precision, prompting, runtime
from helpers.chat import fine_tune_chat
from helpers.classifier import fine_tune_classifier
from helpers.training import TrainConfig

MODES = {"fp32": "no", "bf16": "bf16"}


def minilm_step_seconds(mode: str, steps: int, batch: int = 32, length: int = 64) -> float:
    """Seconds per optimiser step: MiniLM full fine-tune, ``batch`` examples of ``length`` tokens (warm-up included)."""
    texts = [("my card has not arrived yet and I ordered it two weeks ago, what should I do now? " * 4)] * batch
    ds = data.tokenize(
        Dataset.from_dict({"text": texts * (steps + 1), "label": [0, 1] * (batch // 2 * (steps + 1))}),
        models.load_classifier(["a", "b"])[1],
        length,
    )
    config = TrainConfig(max_steps=steps + 1, batch_size=batch, mixed_precision=MODES[mode], progress=False)
    run = fine_tune_classifier(ds, config, labels=["a", "b"], metrics=False)
    return _per_step(run.history)


def smollm_lora_step_seconds(mode: str, steps: int) -> float:
    """Seconds per optimiser step: SmolLM2-135M LoRA r=8, batch 8, 96 tokens per example (warm-up included)."""
    model, tok = models.load_chat_model()
    text = "Your replacement card will arrive within five working days of your request. " * 20
    ds = lm.text_examples([text] * (8 * (steps + 1)), tok, max_length=96)
    config = TrainConfig(
        learning_rate=1e-4, max_steps=steps + 1, batch_size=8, mixed_precision=MODES[mode], progress=False
    )
    return _per_step(fine_tune_chat(ds, config, model=model, tokenizer=tok, rank=8).history)


def smollm_short_chats_seconds(mode: str, steps: int = 12) -> float:
    """Training seconds of a short LoRA run as the notebooks do it: 24 short Q&A chats, batch 8, dynamic padding."""
    model, tok = models.load_chat_model()
    chats = [prompting.qa_conversation(q) for q in knowledge.load_qa("train")[:24]]
    config = TrainConfig(learning_rate=3e-3, max_steps=steps, batch_size=8, mixed_precision=MODES[mode], progress=False)
    return fine_tune_chat(chats, config, model=model, tokenizer=tok, max_length=96, rank=16).history.train_seconds


def _per_step(history) -> float:
    """Seconds per optimiser step over the whole run (the first, warm-up step included: slightly conservative)."""
    return history.train_seconds / history.steps


def generation_tokens_per_s(mode: str, new_tokens: int = 48, batch: int = 8) -> float:
    """Greedy new tokens per second for 16 short prompts in batches of ``batch``, fp32 or under bf16 autocast."""
    model, tok = models.load_chat_model()
    prompts = [generation.user_message(f"Question {i}: how do I order a new card for my account?") for i in range(16)]
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bf16"):
        generation.generate(model, tok, prompts[:2], max_new_tokens=4)  # warm-up
        start = time.perf_counter()
        replies = generation.generate(model, tok, prompts, max_new_tokens=new_tokens, batch_size=batch)
        seconds = time.perf_counter() - start
    return sum(len(tok(r, add_special_tokens=False)["input_ids"]) for r in replies) / seconds


def banking77_accuracy(mode: str) -> dict:
    """Test accuracy (with its interval) of MiniLM fine-tuned 3 epochs on all training data of 10 intents."""
    intents = list(runtime.CORE_INTENTS)
    train = data.load_banking77("train", intents=intents, seed=0)
    test = data.load_banking77("test", intents=intents, seed=0)
    config = TrainConfig(learning_rate=1e-4, epochs=3, batch_size=32, mixed_precision=MODES[mode], progress=False)
    run = fine_tune_classifier(train, config, max_length=64, metrics=False)
    test_tok = data.tokenize(test, run.tokenizer, 64)
    logits, labels = evaluation.predict_logits(run.model, test_tok, run.tokenizer)
    interval = intervals.accuracy_interval(logits.argmax(-1), labels)
    return {
        "accuracy": interval.estimate,
        "low": interval.low,
        "high": interval.high,
        "train_examples": len(train),
        "test_examples": len(test),
        "train_seconds": run.history.train_seconds,
        "correct": (logits.argmax(-1) == labels).astype(int).tolist(),
    }


def main() -> None:
    """Measure each row in fp32 and (where native) bf16; write bench/results/<--name>.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--name", default="precision_speed", help="results file name: one per CPU kind")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--only", default="", help="measure only the rows whose name holds this text; keep the rest")
    args = parser.parse_args()
    native, what = precision.cpu_has_native_bf16()
    modes = ["fp32", "bf16"] if native else ["fp32"]
    rows = {}
    for name, measure in (
        ("MiniLM step, 32 x 64 tokens (s)", lambda m: minilm_step_seconds(m, args.steps)),
        ("MiniLM step, 16 x 32 tokens, smoke size (s)", lambda m: minilm_step_seconds(m, args.steps, 16, 32)),
        ("SmolLM2 LoRA step, 8 x 96 tokens (s)", lambda m: smollm_lora_step_seconds(m, args.steps)),
        ("SmolLM2 greedy generation (tokens/s)", generation_tokens_per_s),
        ("SmolLM2 LoRA, 12 steps on short chats, dynamic padding (s)", smollm_short_chats_seconds),
    ):
        if args.only and args.only not in name:
            continue
        rows[name] = {m: round(measure(m), 3) for m in modes}
        print(name, rows[name], flush=True)
    result = {"native_bf16": what if native else None, "auto": precision.resolve("auto", "cpu").reason, "rows": rows}
    old = RESULTS / f"{args.name}.json"
    if args.skip_accuracy and old.exists():  # keep what was measured before and not measured now
        kept = json.loads(old.read_text())
        result.update({k: kept[k] for k in ("banking77_10_intents", "bf16_minus_fp32") if k in kept})
        result["rows"] = {**kept["rows"], **rows} if args.only else rows
    if not args.skip_accuracy:
        accuracy = {m: banking77_accuracy(m) for m in modes}
        if native:
            diff = intervals.paired_difference(accuracy["bf16"]["correct"], accuracy["fp32"]["correct"])
            result["bf16_minus_fp32"] = {"estimate": diff.estimate, "low": diff.low, "high": diff.high}
        for a in accuracy.values():
            a.pop("correct")
        result["banking77_10_intents"] = accuracy
        print(result.get("bf16_minus_fp32"), accuracy, flush=True)
    save(args.name, result)


if __name__ == "__main__":
    main()
