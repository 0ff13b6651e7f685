"""helpers.classifier: the one classifier recipe (full, head-only, LoRA), its evaluation, class weights, seeding."""

from __future__ import annotations

import pytest
import torch
from datasets import ClassLabel

from helpers import classifier, data
from helpers.training import TrainConfig
from tests.test_resume import LABELS, make_tiny_model
from tests.tiny import tiny_classifier, tokenizer, two_class_dataset

QUICK = TrainConfig(learning_rate=5e-3, max_steps=2, batch_size=8, progress=False)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """A saved tiny BERT classifier for the 4 LABELS, without dropout (so runs compare exactly)."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model", dropout=0.0)


@pytest.fixture(scope="module")
def four_labels():
    """The two-intent texts, labelled with the tiny model's 4 label names."""
    return two_class_dataset().cast_column("label", ClassLabel(names=LABELS))


def trained_names(method: str, **options) -> tuple[set[str], set[str], set[str]]:
    """(parameters that require grad, those that changed in training, all) for ``method`` on a tiny classifier."""
    model = tiny_classifier()
    run = classifier.fine_tune_classifier(
        two_class_dataset(), QUICK, method=method, model=model, tokenizer=tokenizer(), max_length=16, **options
    )
    named = dict(run.model.named_parameters())
    before = {n: p.detach().clone() for n, p in tiny_classifier().named_parameters()}  # same seed, same weights
    base = {n: n.replace("base_model.model.", "").replace(".base_layer", "") for n in named}
    changed = {n for n, p in named.items() if base[n] in before and not torch.equal(p, before[base[n]])}
    changed |= {n for n, p in named.items() if "lora_B" in n and torch.count_nonzero(p)}  # B starts at zero
    assert run.trainable == sum(p.numel() for p in named.values() if p.requires_grad)
    return {n for n, p in named.items() if p.requires_grad}, changed, set(named)


def test_full_trains_every_weight():
    grad, changed, every = trained_names("full")
    assert grad == every
    assert {"classifier.weight", "bert.embeddings.word_embeddings.weight"} <= changed
    frozen = classifier.prepare_classifier(tiny_classifier(), "head-only")  # a model whose encoder was frozen
    assert all(p.requires_grad for p in classifier.prepare_classifier(frozen, "full").parameters())


def test_head_only_trains_only_the_head():
    grad, changed, _ = trained_names("head-only")
    assert grad == {"classifier.weight", "classifier.bias"}
    assert changed == grad  # the frozen encoder did not move


def test_lora_trains_adapters_and_the_head_only_when_asked():
    grad, changed, _ = trained_names("lora", rank=2)
    assert grad and all("lora_" in n or "classifier" in n for n in grad)
    assert any("classifier" in n for n in grad) and any("lora_A" in n for n in grad)
    assert changed <= grad and any("lora_B" in n for n in changed)
    no_head, changed, _ = trained_names("lora", rank=2, train_head=False)
    assert no_head and all("lora_" in n for n in no_head) and changed <= no_head
    targeted, _, _ = trained_names("lora", rank=2, target_modules=["query"], train_head=False)
    assert targeted and all(".query." in n for n in targeted)


def test_bad_method_is_one_clear_sentence():
    with pytest.raises(ValueError, match=r"^method must be one of 'full', 'head-only', 'lora', not 'prefix'\.$"):
        classifier.fine_tune_classifier(two_class_dataset(), QUICK, method="prefix")


def test_learns_scores_every_evaluation_and_repeats(tiny_folder, four_labels):
    config = TrainConfig(learning_rate=5e-3, epochs=15, batch_size=8, progress=False, restore_best=False)
    run = classifier.fine_tune_classifier(four_labels, config, eval_data=four_labels, model=tiny_folder, max_length=16)
    last = run.history.evals[-1]
    assert len(run.history.evals) == 15 and all(
        {"eval_loss", "accuracy", "macro_f1"} <= set(r) for r in run.history.evals
    )
    assert last["accuracy"] > 0.9 and last["eval_loss"] < run.history.evals[0]["eval_loss"]
    assert run.labels == LABELS and classifier.evaluate(run, four_labels) == {
        "accuracy": last["accuracy"],
        "macro_f1": last["macro_f1"],
    }
    again = classifier.fine_tune_classifier(  # same settings, same run
        four_labels, config, eval_data=four_labels, model=tiny_folder, max_length=16
    )
    assert [r["loss"] for r in again.history.train] == [r["loss"] for r in run.history.train]
    quiet = classifier.fine_tune_classifier(four_labels, QUICK, eval_data=four_labels, model=tiny_folder, metrics=False)
    assert "eval_loss" in quiet.history.evals[-1] and "accuracy" not in quiet.history.evals[-1]


def test_a_loaded_model_gets_its_new_head_from_config_seed(tmp_path, four_labels):
    encoder = tmp_path / "encoder"  # a pre-trained encoder without a classification head, as the bundled MiniLM
    tiny_classifier().bert.save_pretrained(encoder, safe_serialization=True)
    tokenizer().save_pretrained(encoder)
    losses = []
    for seed in (1, 2):
        torch.manual_seed(seed)  # whatever the RNG held, the recipe seeds with config.seed before drawing the head
        run = classifier.fine_tune_classifier(four_labels, QUICK, model=encoder, max_length=16)
        losses.append([r["loss"] for r in run.history.train])
    assert losses[0] == losses[1]


def test_class_weights_change_the_loss(tiny_folder, four_labels):
    def losses(weights):
        run = classifier.fine_tune_classifier(
            four_labels, QUICK, model=tiny_folder, max_length=16, class_weights=weights
        )
        return run, [r["loss"] for r in run.history.train]

    _, plain = losses(None)
    weighted, heavy = losses(torch.tensor([1.0, 3.0, 1.0, 1.0]))
    assert isinstance(weighted.model, classifier.WeightedLossClassifier)
    assert losses(torch.ones(4))[1] == pytest.approx(plain, abs=1e-6)  # equal weights: the plain loss
    assert heavy != pytest.approx(plain, abs=1e-3)


def test_a_built_model_is_used_as_it_is():
    model, tok = tiny_classifier(), tokenizer()
    tokenised = data.tokenize(two_class_dataset(), tok, 16)
    run = classifier.fine_tune_classifier(tokenised, QUICK, model=model, tokenizer=tok)
    assert run.model is model and run.train_data is tokenised and run.labels is None
    # Not seeded by the recipe: LoRA's matrices come from the RNG as the caller left it.
    starts = []
    for seed in (1, 2, 1):
        fresh = tiny_classifier()  # seeds itself, so the RNG is set after it
        torch.manual_seed(seed)
        lora = classifier.fine_tune_classifier(tokenised, QUICK, method="lora", model=fresh, tokenizer=tok)
        starts.append(next(p for n, p in lora.model.named_parameters() if "lora_A" in n).detach().clone())
    assert torch.equal(starts[0], starts[2]) and not torch.equal(starts[0], starts[1])
    with pytest.raises(ValueError, match="tokenizer="):
        classifier.fine_tune_classifier(tokenised, QUICK, model=model)


def test_a_tokenised_dataset_needs_label_names_to_load_a_model():
    tokenised = data.tokenize(two_class_dataset(), tokenizer(), 16)
    with pytest.raises(ValueError, match="labels="):
        classifier.fine_tune_classifier(tokenised, QUICK)


def test_weighted_loss_wrapper_equals_plain_loss_with_unit_weights():
    model = tiny_classifier(n_labels=3).eval()
    batch = {
        "input_ids": torch.randint(0, 50, (4, 7)),
        "attention_mask": torch.ones(4, 7, dtype=torch.long),
        "labels": torch.tensor([0, 1, 2, 1]),
    }
    plain = model(**batch)
    wrapped = classifier.WeightedLossClassifier(model, torch.ones(3))(**batch)
    assert torch.allclose(plain.loss, wrapped.loss, atol=1e-6) and torch.equal(plain.logits, wrapped.logits)
    heavy = classifier.WeightedLossClassifier(model, torch.tensor([1.0, 1.0, 10.0]))(**batch)
    losses = torch.nn.functional.cross_entropy(plain.logits, batch["labels"], reduction="none")
    expected = (losses * torch.tensor([1.0, 1, 10, 1])).sum() / 13
    assert torch.allclose(heavy.loss, expected, atol=1e-6)
    assert classifier.WeightedLossClassifier(model, torch.ones(3))(input_ids=batch["input_ids"]).loss is None
