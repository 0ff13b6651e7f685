"""bench/banking77_search.py: layer-wise learning-rate decay groups and recipe names."""

from __future__ import annotations

from transformers import BertConfig, BertForSequenceClassification

from bench.banking77_search import START, changed, parameter_groups


def tiny_bert() -> BertForSequenceClassification:
    config = BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2, intermediate_size=32, num_labels=4
    )
    return BertForSequenceClassification(config)


def test_llrd_lowers_each_layer_below_the_one_above_and_skips_decay_on_biases_and_norms():
    model = tiny_bert()
    decay = {n for n, _ in model.named_parameters() if "bias" not in n and "LayerNorm" not in n}
    groups = parameter_groups(model, decay, lr=1e-3, llrd=0.5, weight_decay=0.01)
    rate = {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert len(rate) == len(named)  # every parameter in exactly one group
    assert rate[id(named["classifier.weight"])] == (1e-3, 0.01)
    assert rate[id(named["bert.encoder.layer.2.output.dense.weight"])] == (5e-4, 0.01)  # the top layer: one step down
    assert rate[id(named["bert.encoder.layer.0.output.dense.bias"])] == (1.25e-4, 0.0)
    assert rate[id(named["bert.embeddings.word_embeddings.weight"])] == (6.25e-5, 0.01)  # below the lowest layer


def test_llrd_of_one_trains_every_layer_at_the_same_rate():
    model = tiny_bert()
    groups = parameter_groups(model, set(), lr=2e-4, llrd=1.0, weight_decay=0.01)
    assert {g["lr"] for g in groups} == {2e-4}


def test_a_recipe_is_named_by_what_it_changes():
    assert changed(START) == "start"
    assert changed(START | {"epochs": 10, "smoothing": 0.1}) == "epochs 10, smoothing 0.1"
