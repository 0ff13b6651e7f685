import math

import pytest
import torch

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
