"""Notebook 01's final scores: every trained classifier and language model on the test split, once, with
bootstrap intervals (choices were made on validation before; nothing trains after)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
from datasets import Dataset

from helpers import data, intervals, lm, seeds
from helpers.classifier import FineTuned
from helpers.evaluation import predict_logits
from helpers.lessons.from_scratch_lm import LMSettings


def score_on_test(trained: dict[tuple[str, int | str], FineTuned], test_set: Dataset) -> list[dict]:
    """The final score, once: each trained run's test accuracy with its 95% bootstrap interval, and per-example
    right/wrong (for paired differences)."""
    rows = []
    for (start, size), run in trained.items():
        logits, labels = predict_logits(
            run.model, data.tokenize(test_set, run.tokenizer, run.max_length), run.tokenizer
        )
        score = intervals.scored(logits.argmax(-1), labels)
        per_class = len(run.train_data) / len(run.labels)
        rows.append(
            {"start": start, "size": size, "per_class": per_class, "test_accuracy": score.pop("accuracy"), **score}
        )
    return rows


def score_seeds(
    final: Sequence[dict], seed_trained: Mapping[int, dict[tuple[str, int | str], FineTuned]], test_set: Dataset, size
) -> pd.DataFrame:
    """The seed study's test scores at ``size``, a row per seed and start: seed 0's from ``final`` (the sweep's, scored
    already) and each extra seed's runs (``from_scratch_seeds.rerun_seeds``) scored now, once."""
    first = [r for r in final if r["size"] == size]
    if not first:
        raise ValueError(f"No final scores at size {size!r}; sizes scored: {sorted({str(r['size']) for r in final})}.")

    def scores(seed: int) -> list[dict]:
        return first if seed == 0 else score_on_test(seed_trained[seed], test_set)

    return seeds.over_seeds([0, *seed_trained], scores)


def per_seed(scores: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy per seed (rows) and start (columns), with the gap pre-trained minus random init."""
    wide = seeds.by_seed(scores, "test_accuracy", "start", ["pre-trained", "random init"])
    wide["gap"] = wide["pre-trained"] - wide["random init"]
    return wide


def final_gap(final: Sequence[dict], size) -> intervals.Interval:
    """Pre-trained minus random-init test accuracy at ``size``, with a paired bootstrap interval."""
    right = {r["start"]: r["right"] for r in final if r["size"] == size}
    if set(right) != {"pre-trained", "random init"}:
        raise ValueError(f"No pre-trained and random-init pair at size {size!r} in the final scores.")
    return intervals.paired_difference(right["pre-trained"], right["random init"])


def final_perplexity(trained: dict, texts: list[str], s: LMSettings) -> dict[str, dict]:
    """The final score, once: each model's perplexity on ``texts`` (the test queries) with a 95% bootstrap interval
    over the queries, and its per-query losses (for paired comparisons), by the race's names."""
    tok, lora = trained["tokenizer"], trained["SmolLM2 + LoRA"]
    held = lm.text_examples(texts, tok, s.max_length)
    with lora.disable_adapter():  # the adapters were added to the base model in place: switch them off
        losses = {"base SmolLM2 (no tuning)": lm.query_losses(lora, held, tok)}
    losses.update({name: lm.query_losses(trained[name], held, tok) for name in ("from scratch", "SmolLM2 + LoRA")})
    scores = {}
    for name, (nll, tokens) in losses.items():
        ppl = lm.perplexity_interval(nll, tokens)
        scores[name] = {"perplexity": ppl.estimate, "low": ppl.low, "high": ppl.high, "nll": nll, "tokens": tokens}
    return scores
