"""helpers.lessons.from_scratch, from_scratch_lm and from_scratch_plots: learning rates chosen on validation, sweep
bookkeeping, the tiny from-scratch LM, perplexity with intervals, FLOPs and costs, the charts."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.container import ErrorbarContainer

from helpers import adapters, data, intervals, lm, runtime
from helpers.lessons import from_scratch, from_scratch_lm, from_scratch_plots, from_scratch_scores, from_scratch_seeds

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


def test_sweep_settings_follow_the_profile():
    assert from_scratch.sweep_settings(runtime.profile("smoke")).sizes == (5, 16)
    assert from_scratch.sweep_settings(runtime.profile("full")).sizes[-1] is None  # the full training set
    for name in ("smoke", "workshop", "full"):
        s = from_scratch.sweep_settings(runtime.profile(name))
        grid = s.lr_grid
        assert set(grid) == set(from_scratch.STARTS) and s.tune_size in s.sizes  # the grid's winners are reused
        assert max(grid["random init"]) > max(grid["pre-trained"]) and s.curve_size in s.sizes
    smoke = from_scratch.sweep_settings(runtime.profile("smoke")).lr_grid
    assert all(2 <= len(rates) <= 3 for rates in smoke.values())  # smoke: a real choice, at a few runs' cost


def _fake_trainer(calls, scores):
    """Stands in for train_classifier: validation accuracy from ``scores`` by (pretrained, learning rate)."""

    def train(train_set, validation, p, pretrained, learning_rate, steps, seed=0, evals=3):
        calls.append((pretrained, learning_rate, len(train_set), steps, seed))
        start = "pre-trained" if pretrained else "random init"
        record = {"start": start, "head_only": False, "learning_rate": learning_rate, "steps": steps}
        record.update(val_accuracy=scores[pretrained, learning_rate], val_macro_f1=0.0, per_class=0)
        return record, f"model {start} {learning_rate:g} {len(train_set)}"

    return train


def test_learning_rates_are_chosen_on_validation_and_the_winners_are_reused(monkeypatch):
    p = runtime.profile("smoke")
    s = from_scratch.sweep_settings(p)
    s = type(s)(**{**s.__dict__, "lr_grid": {"pre-trained": (1e-4, 3e-4), "random init": (5e-4, 1e-3, 3e-3)}})
    pool, validation = from_scratch.train_validation(p, s)
    scores = {(True, 1e-4): 0.9, (True, 3e-4): 0.9, (False, 5e-4): 0.2, (False, 1e-3): 0.5, (False, 3e-3): 0.1}
    calls = []
    monkeypatch.setattr(from_scratch, "train_classifier", _fake_trainer(calls, scores))
    grid, chosen = from_scratch.choose_learning_rates(p, s, pool, validation)
    assert {k: c.learning_rate for k, c in chosen.items()} == {"pre-trained": 1e-4, "random init": 1e-3}  # tie: first
    table = from_scratch.grid_frame(grid)
    assert len(table) == 5 and table["chosen"].sum() == 2
    assert table.loc[table["chosen"], "val_accuracy"].tolist() == [0.9, 0.5]
    n_tune = s.tune_size * p.n_intents
    assert all(n == n_tune for _, _, n, _, _ in calls)  # the grid trains at the tuning size only
    calls.clear()
    runs, trained = from_scratch.run_sweep(p, s, pool, validation, chosen)
    assert [(pre, lr) for pre, lr, *_ in calls] == [(True, 1e-4), (False, 1e-3)]  # only the other size trains
    assert trained["random init", s.tune_size] == chosen["random init"].run  # the grid's winner, not a rerun
    assert [r["learning_rate"] for r in runs] == [1e-4, 1e-3, 1e-4, 1e-3]
    assert all("chosen" not in r for r in runs) and {r["size"] for r in runs} == set(s.sizes)


def test_extra_seeds_follow_the_profile():
    extra = {name: from_scratch_seeds.extra_seeds(runtime.profile(name)) for name in ("smoke", "workshop", "full")}
    assert extra["smoke"] == [] and len(extra["workshop"]) >= 1 and len(extra["full"]) == 2  # 1, >= 2, 3 in all
    assert all(0 not in seeds and len(set(seeds)) == len(seeds) for seeds in extra.values())  # 0 is the sweep's


def test_rerun_seeds_trains_both_starts_per_seed_at_the_chosen_rates(monkeypatch):
    p = runtime.profile("smoke")
    s = from_scratch.sweep_settings(p)
    pool, validation = from_scratch.train_validation(p, s)
    chosen = {"pre-trained": from_scratch.Choice(1e-4, {}, None), "random init": from_scratch.Choice(1e-3, {}, None)}
    calls = []
    monkeypatch.setattr(
        from_scratch_seeds, "train_classifier", _fake_trainer(calls, {(True, 1e-4): 0.9, (False, 1e-3): 0.4})
    )
    records, trained = from_scratch_seeds.rerun_seeds(p, s, pool, validation, chosen, [1, 2], 16)
    steps = from_scratch.budget_steps(16 * p.n_intents, p, s.min_steps)
    assert calls == [
        (pre, lr, 16 * p.n_intents, steps, seed) for seed in (1, 2) for pre, lr in ((True, 1e-4), (False, 1e-3))
    ]
    assert [(r["seed"], r["start"], r["size"]) for r in records] == [
        (seed, start, 16) for seed in (1, 2) for start in ("pre-trained", "random init")
    ]
    assert list(trained) == [1, 2] and set(trained[2]) == {("pre-trained", 16), ("random init", 16)}
    calls.clear()
    records, _ = from_scratch_seeds.rerun_seeds(p, s, pool, validation, chosen, [1], "all")
    assert {n for _, _, n, _, _ in calls} == {len(pool)} and records[0]["size"] == "all"  # "all": every example
    assert from_scratch_seeds.rerun_seeds(p, s, pool, validation, chosen, [], 16) == ([], {})  # smoke: no extra seeds


def test_the_seed_draws_the_starting_weights(monkeypatch):
    p = runtime.profile("smoke")
    s = from_scratch.sweep_settings(p)
    pool, validation = from_scratch.train_validation(p, s)
    seen = []

    class Stop(Exception):
        pass

    def capture(train_set, config, model, **kwargs):
        seen.append((config.seed, next(model.parameters()).detach().clone()))
        raise Stop

    monkeypatch.setattr(from_scratch, "fine_tune_classifier", capture)
    for seed, before in ((0, 100), (0, 200), (1, 100)):
        torch.manual_seed(before)  # whatever the global RNG holds, the run's seed decides
        with pytest.raises(Stop):
            from_scratch.train_classifier(pool, validation, p, False, 1e-3, steps=1, seed=seed)
    (s0, w0), (s0b, w0b), (s1, w1) = seen
    assert (s0, s0b, s1) == (0, 0, 1) and torch.equal(w0, w0b) and not torch.equal(w0, w1)


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
    scores = {"a": {"perplexity": 10.0, "low": 8.0, "high": 12.0}, "b": {"perplexity": 300.0, "low": 250, "high": 350}}
    ax = from_scratch_plots.plot_perplexity(scores, "test perplexity", "t")
    assert ax.get_xscale() == "log" and [c.has_xerr for c in ax.containers] == [True, True]  # intervals drawn
    ax = from_scratch_plots.plot_perplexity({k: {"perplexity": v["perplexity"]} for k, v in scores.items()}, "x", "t")
    assert [c.has_xerr for c in ax.containers] == [False, False]  # no interval, no error bars


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


def error_bar_ends(ax) -> list[tuple[float, float]]:
    """(low, high) of every error bar on ``ax``, in drawing order (by start, then by group)."""
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    return [tuple(segment[:, 1].round(6)) for c in bars for segment in c.lines[2][0].get_segments()]


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
    gap = from_scratch_scores.final_gap(FINAL, 5)
    assert gap.estimate == pytest.approx(0.6) and gap.low < 0.6 < gap.high
    with pytest.raises(ValueError, match="No pre-trained and random-init pair"):
        from_scratch_scores.final_gap(FINAL, 16)
    ax = from_scratch_plots.plot_test(FINAL)
    assert error_bar_ends(ax) == [(0.7, 0.9), (0.1, 0.4)]  # each start's bootstrap interval


def test_tiny_llama_shares_the_tokenizer_and_learns(chat_tok):
    model = from_scratch_lm.tiny_llama(chat_tok, hidden=32, layers=1, heads=2)
    assert model.config.vocab_size == len(chat_tok) and model.config.tie_word_embeddings
    texts = ["I lost my card yesterday", "my card has not arrived"] * 8
    data = lm.text_examples(texts, chat_tok, max_length=16)
    before = lm.perplexity(model, data, chat_tok)
    assert before == pytest.approx(len(chat_tok), rel=0.5)  # random weights: close to uniform over the vocab
    history = from_scratch_lm.train_for_seconds(
        model, data, chat_tok, seconds=2.0, learning_rate=3e-3, batch_size=8, progress=False
    )
    assert history.steps >= 2 and lm.perplexity(model, data, chat_tok) < 0.9 * before


def test_seconds_per_step_leaves_no_gradients(chat_tok):
    model = from_scratch_lm.tiny_llama(chat_tok, hidden=32, layers=1, heads=2)
    data = lm.text_examples(["hello there"] * 4, chat_tok, max_length=8)
    assert from_scratch_lm.seconds_per_step(model, data, lm.lm_collator(chat_tok), batch_size=4, probes=1) > 0
    assert all(p.grad is None for p in model.parameters())


def test_complete_is_repeatable(chat_tok):
    model = from_scratch_lm.tiny_llama(chat_tok, hidden=32, layers=1, heads=2)
    a = from_scratch_lm.complete(model, chat_tok, ["My card"], max_new_tokens=4, seed=3)
    torch.manual_seed(123)  # whatever the global RNG holds, the seed decides the sample
    assert from_scratch_lm.complete(model, chat_tok, ["My card"], max_new_tokens=4, seed=3) == a
    # Each prefix restarts from the seed, so a repeated prefix repeats its sample; another seed samples differently
    # (random weights: close to uniform over 49k tokens).
    assert from_scratch_lm.complete(model, chat_tok, ["My card", "My card"], max_new_tokens=4, seed=3) == a * 2
    assert from_scratch_lm.complete(model, chat_tok, ["My card"], max_new_tokens=4, seed=4) != a


def test_final_perplexity_scores_each_model_with_an_interval(chat_tok):
    s = from_scratch_lm.lm_settings(runtime.profile("smoke"))
    base = from_scratch_lm.tiny_llama(chat_tok, hidden=32, layers=1, heads=2, seed=1)
    trained = {
        "tokenizer": chat_tok,
        "SmolLM2 + LoRA": adapters.add_lora(base, rank=2),
        "from scratch": from_scratch_lm.tiny_llama(chat_tok, hidden=32, layers=1, heads=2),
    }
    texts = ["my card has not arrived", "how do I top up", "I was charged twice", "where is my refund"] * 3
    scores = from_scratch_scores.final_perplexity(trained, texts, s)
    assert list(scores) == ["base SmolLM2 (no tuning)", "from scratch", "SmolLM2 + LoRA"]
    assert all(r["low"] <= r["perplexity"] <= r["high"] and len(r["nll"]) == len(texts) for r in scores.values())
    lora, untuned = scores["SmolLM2 + LoRA"], scores["base SmolLM2 (no tuning)"]
    assert lora["perplexity"] == pytest.approx(untuned["perplexity"], rel=1e-5)  # LoRA starts as the identity


def test_score_on_test_is_one_scored_row_per_run(monkeypatch):
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0], [0.0, 2.0]])  # predicts 0, 1, 0, 1
    labels = np.array([0, 1, 1, 1])
    monkeypatch.setattr(from_scratch_scores, "predict_logits", lambda model, tokenised, tok: (logits, labels))
    monkeypatch.setattr(from_scratch_scores.data, "tokenize", lambda dataset, tok, max_length: dataset)
    run = SimpleNamespace(model=None, tokenizer=None, max_length=8, train_data=[0] * 10, labels=["a", "b"])
    (row,) = from_scratch_scores.score_on_test({("pre-trained", 5): run}, test_set=None)
    expected = intervals.scored([0, 1, 0, 1], labels)
    assert row == {
        "start": "pre-trained",
        "size": 5,
        "per_class": 5.0,
        "test_accuracy": 0.75,
        **{k: v for k, v in expected.items() if k != "accuracy"},
    }
    assert row["right"] == [1, 1, 0, 1] and row["low"] < 0.75 <= row["high"]


def test_score_seeds_keeps_seed_0_and_scores_the_extra_seeds(monkeypatch):
    scored = []

    def fake_score(trained, test_set):
        scored.append(trained)
        return [
            {"start": start, "size": size, "per_class": 5.0, "test_accuracy": acc}
            for (start, size), acc in trained.items()
        ]

    monkeypatch.setattr(from_scratch_scores, "score_on_test", fake_score)
    seed_trained = {
        1: {("pre-trained", 5): 0.9, ("random init", 5): 0.5},
        2: {("pre-trained", 5): 0.7, ("random init", 5): 0.6},
    }
    frame = from_scratch_scores.score_seeds(FINAL, seed_trained, test_set=None, size=5)
    assert scored == [seed_trained[1], seed_trained[2]]  # seed 0 is not scored again
    assert frame["seed"].tolist() == [0, 0, 1, 1, 2, 2]
    table = from_scratch_scores.per_seed(frame)
    assert table["gap"].round(6).tolist() == [0.6, 0.4, 0.1]
    assert from_scratch_scores.score_seeds(FINAL, {}, None, 5)["seed"].tolist() == [0, 0]  # one seed still renders
    with pytest.raises(ValueError, match="No final scores at size 16"):
        from_scratch_scores.score_seeds(FINAL, seed_trained, None, 16)
    ax = from_scratch_plots.plot_test(FINAL, seed_scores=frame)
    # seed 0's bootstrap intervals, then each start's mean over seeds with its lowest and highest seed
    assert error_bar_ends(ax) == [(0.7, 0.9), (0.7, 0.9), (0.1, 0.4), (0.2, 0.6)]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["5", "5\nmean of 3 seeds"]
    assert len(error_bar_ends(from_scratch_plots.plot_test(FINAL, seed_scores=frame[frame.seed == 0]))) == 2


def test_random_init_warms_up_longer_than_the_pre_trained_start(monkeypatch):
    p = runtime.profile("smoke")
    s = from_scratch.sweep_settings(p)
    pool, validation = from_scratch.train_validation(p, s)
    warmups = {}

    class Stop(Exception):
        pass

    def capture(train_set, config, model, **kwargs):
        warmups[config.warmup_ratio] = True
        raise Stop

    monkeypatch.setattr(from_scratch, "fine_tune_classifier", capture)
    for pretrained in (True, False):
        with pytest.raises(Stop):
            from_scratch.train_classifier(pool, validation, p, pretrained, 1e-3, steps=1)
    assert list(warmups) == [from_scratch.WARMUP["pre-trained"], from_scratch.WARMUP["random init"]]
    assert from_scratch.WARMUP["random init"] > from_scratch.WARMUP["pre-trained"]
