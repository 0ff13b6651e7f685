"""helpers.lessons.from_scratch and helpers.lessons.from_scratch_lm: sweep bookkeeping, the tiny from-scratch LM,
FLOPs and costs."""

from __future__ import annotations

from collections import Counter

import matplotlib
import pytest
import torch
from transformers import AutoTokenizer

from helpers import data, lm, models, runtime
from helpers.lessons import from_scratch, from_scratch_lm, from_scratch_plots

matplotlib.use("Agg")


def _run(start, size, acc, per_class=None, head_only=False):
    return {
        "start": start,
        "size": size,
        "val_accuracy": acc,
        "per_class": per_class or size,
        "head_only": head_only,
        "learning_rate": 1e-4,
        "losses": [2.0, 1.5, 1.0],
    }


RUNS = [
    _run("pre-trained", 5, 0.8),
    _run("random init", 5, 0.3),
    _run("pre-trained", 16, 0.95),
    _run("random init", 16, 0.85),
    _run("pre-trained", 5, 0.6, head_only=True),
]


@pytest.fixture(scope="module")
def tok():
    if not (models.chat_cache_dir() / "tokenizer.json").exists():
        models.load_chat_model()  # builds the de-quantized cache once
    return AutoTokenizer.from_pretrained(models.chat_cache_dir())


def test_sweep_settings_follow_the_profile():
    assert from_scratch.sweep_settings(runtime.profile("smoke")).sizes == (5, 16)
    assert from_scratch.sweep_settings(runtime.profile("full")).sizes[-1] is None  # the full training set
    s = from_scratch.sweep_settings(runtime.profile("workshop"))
    assert s.lr_random > s.lr_pretrained and s.curve_size == min(s.sizes)


def test_budget_steps_has_a_floor_and_scales_with_data():
    p = runtime.profile("smoke")  # 3 epochs, batch 16
    assert from_scratch.budget_steps(50, p, min_steps=30) == 30
    assert from_scratch.budget_steps(320, p, min_steps=30) == 60


def test_gap_and_smallest_size():
    assert from_scratch.gap_at(RUNS, 5) == pytest.approx(0.5)  # head-only run is ignored
    assert from_scratch.smallest_size_reaching(RUNS, "random init", 0.8) == 16
    assert from_scratch.smallest_size_reaching(RUNS, "random init", 0.99) is None
    with pytest.raises(ValueError, match="sizes run"):
        from_scratch.gap_at(RUNS, 30)


def test_plots_return_axes():
    ax = from_scratch_plots.plot_sweep(RUNS)
    assert ax.get_xscale() == "log" and len(ax.get_legend().get_texts()) >= 4  # 2 curves + 2 anchors
    assert len(from_scratch_plots.plot_curves(RUNS, 5).get_lines()) == 2


def test_train_flops_is_six_n_d_for_full_training():
    assert from_scratch_lm.train_flops(1e6, 1e6, 1e3) == 6e9
    assert from_scratch_lm.train_flops(1e6, 0, 1e3) == 4e9  # frozen: no weight gradients


def test_cost_table_includes_cited_pretraining():
    row = {"params_trained": 10, "params_total": 10, "examples_seen": 4, "tokens_seen": 40, "seconds": 1.234}
    table = from_scratch_lm.cost_table({"run a": row})
    assert table.loc["run a", "est. FLOPs"] == 6 * 10 * 40
    smol = table.loc["pre-training SmolLM2-135M (cited)", "est. FLOPs"]
    assert smol == pytest.approx(6 * 135e6 * 2e12)


def test_domain_texts_are_disjoint_and_keep_the_test_split_for_the_end():
    train, heldout = from_scratch_lm.domain_texts(200, 50)
    assert len(train) == 200 and len(heldout) == 50 and not set(train) & set(heldout)
    training_split = set(data.load_banking77("train")["text"])
    assert set(heldout) <= training_split  # validation: held out from training, not the test split
    test = from_scratch_lm.test_texts(30)
    assert len(test) == 30 and set(test) <= set(data.load_banking77("test")["text"])


def test_validation_is_stratified_from_training_and_slices_take_per_class():
    p = runtime.profile("smoke")
    s = from_scratch.sweep_settings(p)
    pool, validation = from_scratch.train_validation(p, s)
    assert len(validation) == s.val_per_class * p.n_intents and validation.split != "test"
    assert not set(pool["text"]) & set(validation["text"])
    small = from_scratch.per_class_slice(pool, 3)
    assert sorted(Counter(small["label"]).values()) == [3] * p.n_intents
    assert from_scratch.per_class_slice(pool, None) is pool
    with pytest.raises(ValueError, match="test split"):  # the sweep's monitoring refuses the test split
        from_scratch.train_classifier(
            pool, data.load_banking77("test", per_class=1, intents=p.intents), p, True, 1e-4, steps=1
        )


FINAL = [
    {
        "start": "pre-trained",
        "size": 5,
        "per_class": 5,
        "test_accuracy": 0.8,
        "low": 0.7,
        "high": 0.9,
        "right": [1] * 8 + [0] * 2,
    },
    {
        "start": "random init",
        "size": 5,
        "per_class": 5,
        "test_accuracy": 0.2,
        "low": 0.1,
        "high": 0.4,
        "right": [0] * 8 + [1] * 2,
    },
]


def test_final_gap_is_paired_and_the_chart_has_error_bars():
    gap = from_scratch.final_gap(FINAL, 5)
    assert gap.estimate == pytest.approx(0.6) and gap.low < 0.6 < gap.high
    with pytest.raises(ValueError, match="No pre-trained and random-init pair"):
        from_scratch.final_gap(FINAL, 16)
    ax = from_scratch_plots.plot_test(FINAL)
    assert len(ax.containers) == 2  # one errorbar container per starting point


def test_tiny_llama_shares_the_tokenizer_and_learns(tok):
    model = from_scratch_lm.tiny_llama(tok, hidden=32, layers=1, heads=2)
    assert model.config.vocab_size == len(tok) and model.config.tie_word_embeddings
    texts = ["I lost my card yesterday", "my card has not arrived"] * 8
    data = lm.text_examples(texts, tok, max_length=16)
    before = lm.perplexity(model, data, tok)
    assert before == pytest.approx(len(tok), rel=0.5)  # random weights: close to uniform over the vocab
    history = from_scratch_lm.train_for_seconds(
        model, data, tok, seconds=2.0, learning_rate=3e-3, batch_size=8, progress=False
    )
    assert history.steps >= 2 and lm.perplexity(model, data, tok) < 0.9 * before


def test_seconds_per_step_leaves_no_gradients(tok):
    model = from_scratch_lm.tiny_llama(tok, hidden=32, layers=1, heads=2)
    data = lm.text_examples(["hello there"] * 4, tok, max_length=8)
    assert from_scratch_lm.seconds_per_step(model, data, lm.lm_collator(tok), batch_size=4, probes=1) > 0
    assert all(p.grad is None for p in model.parameters())


def test_complete_is_repeatable(tok):
    model = from_scratch_lm.tiny_llama(tok, hidden=32, layers=1, heads=2)
    a = from_scratch_lm.complete(model, tok, ["My card"], max_new_tokens=4, seed=3)
    torch.manual_seed(123)  # whatever the global RNG holds, the seed decides the sample
    assert from_scratch_lm.complete(model, tok, ["My card"], max_new_tokens=4, seed=3) == a
    # Each prefix restarts from the seed, so a repeated prefix repeats its sample; another seed samples differently
    # (random weights: close to uniform over 49k tokens).
    assert from_scratch_lm.complete(model, tok, ["My card", "My card"], max_new_tokens=4, seed=3) == a * 2
    assert from_scratch_lm.complete(model, tok, ["My card"], max_new_tokens=4, seed=4) != a
