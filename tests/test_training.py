import math
import sys
from types import SimpleNamespace

import pytest
import torch
from transformers import BertForSequenceClassification

from helpers import adapters, data, evaluation, lm, training
from helpers.history import History
from tests.tiny import tiny_causal_lm, tiny_classifier, tokenizer, two_class_dataset


def _run(config: training.TrainConfig, seed: int = 0, model=None):
    tok = tokenizer()
    ds = data.tokenize(two_class_dataset(), tok, 16)
    model = model or tiny_classifier(seed=seed)
    return model, training.train(model, ds, config, eval_dataset=ds, tokenizer=tok)


def test_loss_falls_and_history_records_every_step():
    cfg = training.TrainConfig(learning_rate=1e-2, epochs=6, batch_size=8, eval_at_start=True, progress=False)
    _, h = _run(cfg)
    assert h.steps == 24 and [r["step"] for r in h.train] == list(range(1, 25))  # 32 examples / 8 per step * 6
    assert [r["step"] for r in h.evals] == [0, 4, 8, 12, 16, 20, 24]  # before training, then every epoch
    # Untrained, two balanced classes: about ln 2 = 0.69. Measured: 0.093 after 6 epochs.
    assert h.evals[0]["eval_loss"] == pytest.approx(math.log(2), abs=0.05)
    assert h.evals[-1]["eval_loss"] < 0.3 * h.evals[0]["eval_loss"]
    assert h.examples_seen == 32 * 6


def test_same_seed_same_history():
    # train() seeds dropout and shuffling itself: whatever the global RNG holds beforehand, a seed gives one History.
    def losses(seed, global_seed):
        model = tiny_classifier(seed=0)
        torch.manual_seed(global_seed)
        cfg = training.TrainConfig(learning_rate=1e-3, epochs=2, batch_size=8, progress=False, seed=seed)
        return [r["loss"] for r in _run(cfg, model=model)[1].train]

    a = losses(7, global_seed=1)
    assert losses(7, global_seed=2) == a
    assert losses(8, global_seed=1) != a


def test_evaluating_does_not_change_training():
    # Dropout draws from the global RNG; an evaluation (a new loader iterator) must not move it.
    def losses(eval_every, extra_eval):
        tok = tokenizer()
        ds = data.tokenize(two_class_dataset(), tok, 16)
        cfg = training.TrainConfig(
            learning_rate=1e-3, epochs=2, batch_size=8, progress=False, seed=3, eval_every_steps=eval_every
        )
        metrics = None
        if extra_eval:
            metrics = lambda m: {"accuracy": evaluation.evaluate_classifier(m, ds, tok)["accuracy"]}  # noqa: E731
        h = training.train(tiny_classifier(), ds, cfg, eval_dataset=ds, tokenizer=tok, evaluate_fn=metrics)
        return [r["loss"] for r in h.train]

    assert losses(None, False) == losses(1, True)


def test_max_steps_wins_over_epochs():
    _, h = _run(training.TrainConfig(epochs=10, max_steps=5, batch_size=8, progress=False))
    assert h.steps == 5


def test_only_trainable_parameters_change():
    model = adapters.freeze_all_but_head(tiny_classifier())
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    _run(training.TrainConfig(learning_rate=1e-2, epochs=1, batch_size=8, progress=False), model=model)
    for name, p in model.named_parameters():
        changed = not torch.equal(before[name], p.detach())
        assert changed == name.startswith("classifier"), name


def test_nothing_trainable_raises():
    model = tiny_classifier()
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match="requires grad"):
        _run(training.TrainConfig(progress=False), model=model)


@pytest.mark.parametrize(
    "kwargs",
    [{"learning_rate": -1.0}, {"batch_size": 0}, {"epochs": 0}, {"mixed_precision": "fp8"}, {"warmup_ratio": 1.5}],
)
def test_bad_config_raises_one_sentence(kwargs):
    with pytest.raises(ValueError, match="TrainConfig"):
        training.TrainConfig(**kwargs)


def test_early_stopping_restores_best_weights():
    # Adam's first steps move every weight by about the learning rate, so at 0.5 the model diverges: measured eval
    # losses 1.2, 8.8, 10.9 after steps 1, 2, 3. With patience 2 the run must stop at step 3 of 80, ending with
    # the weights of step 1 (the best eval), not the last ones.
    snapshots = []

    def snapshot(model):
        snapshots.append({n: p.detach().clone() for n, p in model.named_parameters()})
        return {}

    tok = tokenizer()
    ds = data.tokenize(two_class_dataset(), tok, 16)
    cfg = training.TrainConfig(
        learning_rate=0.5,
        epochs=20,
        batch_size=8,
        eval_every_steps=1,
        early_stopping_patience=2,
        warmup_ratio=0.0,
        progress=False,
    )
    model = tiny_classifier()
    h = training.train(model, ds, cfg, eval_dataset=ds, tokenizer=tok, evaluate_fn=snapshot)
    assert h.stopped_early and h.total_steps == 80 and h.steps == 3
    assert [r["step"] for r in h.evals] == [1, 2, 3] and h.best()["step"] == 1
    assert h.best_step == h.restored_step == 1
    assert h.evals[1]["eval_loss"] > 2 * h.evals[0]["eval_loss"]  # the divergence the test relies on
    params = dict(model.named_parameters())
    assert all(torch.equal(params[n], w) for n, w in snapshots[0].items())  # step 1's weights...
    assert not all(torch.equal(params[n], w) for n, w in snapshots[-1].items())  # ...not the last step's
    logits, labels = evaluation.predict_logits(model, ds, tok)  # and they reproduce the best eval loss
    loss = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(labels)).item()
    assert loss == pytest.approx(h.evals[0]["eval_loss"], rel=1e-4)


# Resuming a killed run is tested end to end in test_resume.py.


def test_causal_lm_trains_with_lm_collator():
    tok = tokenizer()
    texts = ["the card arrives in three working days"] * 8
    ds = lm.text_examples(texts, tok, max_length=16)
    model = tiny_causal_lm(tok.vocab_size)
    ppl_before = lm.perplexity(model, ds, tok)
    training.train(
        model,
        ds,
        training.TrainConfig(learning_rate=1e-2, epochs=5, batch_size=4, progress=False),
        collate_fn=lm.lm_collator(tok),
    )
    assert lm.perplexity(model, ds, tok) < ppl_before / 10


def test_history_round_trips_through_json(tmp_path):
    h = History(
        config={"learning_rate": 1e-3},
        total_steps=2,
        best_step=1,
        restored_step=1,
        stopped_early=True,
        train_seconds=3.5,
    )  # no field left at its default, so a dropped field shows
    h.log_train(1, 0, 1.5, 1e-3, 8)
    h.log_eval(1, {"eval_loss": 1.2, "accuracy": 0.5})
    h.save(tmp_path / "h.json")
    again = History.load(tmp_path / "h.json")
    assert again == h and again != History() and again.final_loss == 1.5 and again.best()["eval_loss"] == 1.2


def test_evaluate_fn_without_eval_dataset_logs_metrics():
    tok = tokenizer()
    ds = data.tokenize(two_class_dataset(), tok, 16)
    calls = []
    h = training.train(
        tiny_classifier(),
        ds,
        training.TrainConfig(epochs=2, batch_size=8, progress=False),
        tokenizer=tok,
        evaluate_fn=lambda m: calls.append(1) or {"accuracy": 0.5},
    )
    assert len(calls) == 2 and [r["step"] for r in h.evals] == [4, 8]  # end of each epoch
    assert all(r["accuracy"] == 0.5 and "eval_loss" not in r for r in h.evals)


def test_compute_metrics_reads_the_eval_loss_pass_once_in_dataset_order():
    tok = tokenizer()
    ds = data.tokenize(two_class_dataset(), tok, 16)
    model, seen, forwards = tiny_classifier(), [], []
    forward = model.forward
    model.forward = lambda **kw: forwards.append(model.training) or forward(**kw)

    def metrics(logits, labels):
        seen.append((logits.shape, labels.tolist()))
        return evaluation.logits_metrics(logits, labels)

    config = training.TrainConfig(epochs=2, batch_size=8, restore_best=False, progress=False)
    h = training.train(model, ds, config, eval_dataset=ds, tokenizer=tok, compute_metrics=metrics)
    assert [r["step"] for r in h.evals] == [4, 8]
    assert seen == [((32, 2), ds["labels"])] * 2  # every eval row, in dataset order
    assert forwards.count(False) == 2 * 4  # one pass of 4 eval batches per evaluation, not two
    assert h.evals[-1]["accuracy"] == evaluation.evaluate_classifier(model, ds, tok)["accuracy"]


def test_an_empty_training_set_is_refused():
    tok = tokenizer()
    empty = data.tokenize(two_class_dataset(), tok, 16).select([])
    with pytest.raises(ValueError, match="training set is empty"):
        training.train(tiny_classifier(), empty, training.TrainConfig(progress=False), tokenizer=tok)


# --- out of memory: the micro-batch halves, in a loop, until a step fits ------------------------------------
def _fails_above(model, limit: int, depths: list[int], after: int = 0):
    """Make ``model`` raise CUDA's out-of-memory error on training micro-batches over ``limit`` examples (once
    ``after`` forwards went through), and record how deep the call stack is at every training forward."""
    forward = model.forward

    def guarded(*args, **kwargs):
        if model.training:
            frame, depth = sys._getframe(), 0
            while frame is not None:
                frame, depth = frame.f_back, depth + 1
            depths.append(depth)
            if len(depths) > after and len(kwargs["input_ids"]) > limit:
                raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return forward(*args, **kwargs)

    model.forward = guarded
    return model


def _without_dropout(seed: int = 0) -> BertForSequenceClassification:
    # Dropout would draw other masks for smaller micro-batches; without it the split steps match to float noise.
    config = tiny_classifier().config
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = 0.0
    torch.manual_seed(seed)
    return BertForSequenceClassification(config)


def test_out_of_memory_halves_the_micro_batch_until_the_step_fits(capsys):
    cfg = training.TrainConfig(learning_rate=1e-2, epochs=2, batch_size=8, progress=False)
    plain_model, plain = _run(cfg, model=_without_dropout())
    depths = []  # from the 6th forward (step 6, the second of epoch 2) on, only 2 examples fit
    model, h = _run(cfg, model=_fails_above(_without_dropout(), 2, depths, after=5))
    said = capsys.readouterr().out
    assert said.count("Out of memory") == 2  # 8 -> 4 -> 2, both while trying step 6
    assert "Out of memory at step 6: micro-batch 8 -> 4, gradient accumulation 1 -> 2; training continues." in said
    assert "Out of memory at step 6: micro-batch 4 -> 2, gradient accumulation 2 -> 4; training continues." in said
    assert h.config["extra"]["oom_micro_batch"] == 2 and plain.config["extra"] == {}
    assert h.steps == plain.steps == 8  # the same optimiser steps...
    assert [r["examples"] for r in h.train] == [r["examples"] for r in plain.train] == [8] * 8  # ...on as much data
    assert h.train[:5] == plain.train[:5]  # identical before the error
    for a, b in zip(h.train[5:], plain.train[5:]):  # then each step's 8 examples, the same ones, in four pieces
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5) and a["lr"] == b["lr"]
    for (name, p), q in zip(model.named_parameters(), plain_model.parameters()):
        assert torch.allclose(p, q, atol=1e-5), name
    assert len(depths) == 5 + 2 + 3 * 4 and len(set(depths)) == 1  # a loop: the call stack does not grow at a retry


def test_out_of_memory_inside_an_accumulated_step_drops_its_earlier_gradients():
    # Step 1 is three micro-batches of 4; the second fails, so the step is redone as six of 2. The gradients of the
    # first micro-batch must not count twice: the run equals one that used micro-batches of 2 from the start.
    cfg = training.TrainConfig(learning_rate=1e-2, epochs=1, batch_size=4, grad_accum_steps=3, progress=False)
    plain_model, plain = _run(
        training.TrainConfig(learning_rate=1e-2, epochs=1, batch_size=2, grad_accum_steps=6, progress=False),
        model=_without_dropout(),
    )
    model, h = _run(cfg, model=_fails_above(_without_dropout(), 2, [], after=1))
    assert h.steps == plain.steps == 2 and h.config["extra"]["oom_micro_batch"] == 2
    for a, b in zip(h.train, plain.train):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5)
    for (name, p), q in zip(model.named_parameters(), plain_model.parameters()):
        assert torch.allclose(p, q, atol=1e-5), name


def test_out_of_memory_at_a_micro_batch_of_one_says_what_to_try():
    cfg = training.TrainConfig(epochs=1, batch_size=4, progress=False)
    with pytest.raises(torch.OutOfMemoryError, match=r"^Out of memory with a micro-batch of 1: use a shorter"):
        _run(cfg, model=_fails_above(tiny_classifier(), 0, []))


# --- when to evaluate: decided in one place -----------------------------------------------------------------
def _evaluates(config, moment: str, step: int, total: int = 10, evaluated=(), can_evaluate: bool = True) -> bool:
    history = History()
    for done in evaluated:
        history.log_eval(done, {})
    run = SimpleNamespace(history=history, step=step, total_steps=total, can_evaluate=can_evaluate)
    return training._evaluate_now(run, config, moment)


def test_when_to_evaluate():
    per_epoch = training.TrainConfig()
    every_3 = training.TrainConfig(eval_every_steps=3)
    at_start = training.TrainConfig(eval_at_start=True)
    # eval_every_steps=None: at every epoch end, and at the last step (which ends the run, not always an epoch)
    assert [s for s in range(1, 11) if _evaluates(per_epoch, "step", s)] == [10]
    assert _evaluates(per_epoch, "epoch end", 4) and not _evaluates(every_3, "epoch end", 6)
    # every eval_every_steps, and the last step too
    assert [s for s in range(1, 11) if _evaluates(every_3, "step", s)] == [3, 6, 9, 10]
    # never twice at one step (an epoch end reached again after resuming there)
    assert not _evaluates(per_epoch, "epoch end", 4, evaluated=[0, 4])
    # the last step only if there is something to evaluate; a scheduled point is kept (it checkpoints)
    assert not _evaluates(per_epoch, "step", 10, can_evaluate=False)
    assert _evaluates(every_3, "step", 9, can_evaluate=False)
    assert _evaluates(per_epoch, "epoch end", 4, can_evaluate=False)
    # at the start: with eval_at_start, before the first step only (not when a run resumes)
    assert _evaluates(at_start, "start", 0)
    assert not _evaluates(at_start, "start", 5) and not _evaluates(per_epoch, "start", 0)


@pytest.mark.parametrize(
    "settings, steps",
    [
        (dict(eval_every_steps=3), [3, 6, 8]),  # every 3 steps, and the last
        (dict(max_steps=6), [4, 6]),  # each epoch end, and the last step mid-epoch
        (dict(eval_every_steps=4, eval_at_start=True), [0, 4, 8]),  # the last step is on the schedule: once
    ],
)
def test_evaluations_land_on_their_steps(settings, steps):
    _, h = _run(training.TrainConfig(epochs=2, batch_size=8, progress=False, **settings))
    assert [r["step"] for r in h.evals] == steps
