"""The LoRA teaching layer: identity at init, only adapters train, parity with peft, bad rank raises."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from transformers import BertForSequenceClassification

from helpers.adapters import add_lora, count_parameters
from helpers.lora import LoRALinear, copy_lora_weights, inject_lora, lora_state, merge_lora
from tests.tiny import tiny_classifier

TARGETS = ["query", "value"]


def tiny_bert(seed: int = 0) -> BertForSequenceClassification:
    return tiny_classifier(n_labels=3, seed=seed, vocab_size=100, max_positions=32).eval()


def batch(seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "input_ids": torch.randint(0, 100, (4, 10), generator=g),
        "attention_mask": torch.ones(4, 10, dtype=torch.long),
    }


def test_layer_equals_base_at_init():
    torch.manual_seed(0)
    base = nn.Linear(8, 5)
    layer = LoRALinear(base, r=2, alpha=4)
    x = torch.randn(3, 8)
    assert torch.equal(layer(x), base(x))
    assert torch.count_nonzero(layer.lora_B.weight) == 0
    assert layer.scaling == 2.0 and layer.lora_A.weight.shape == (2, 8) and layer.lora_B.weight.shape == (5, 2)


@pytest.mark.parametrize("r", [0, -1])
def test_bad_rank_raises(r):
    with pytest.raises(ValueError, match="positive integer"):
        LoRALinear(nn.Linear(4, 4), r=r)


def test_only_adapters_train():
    model = tiny_bert()
    before = copy.deepcopy(model.state_dict())
    names = inject_lora(model, TARGETS, r=4, alpha=8)
    assert len(names) == 4  # query and value in 2 layers
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    assert count_parameters(model)[0] == 4 * 4 * (32 + 32)  # 4 layers x r x (in + out)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model(**batch(), labels=torch.tensor([0, 1, 2, 0])).loss.backward()
    opt.step()
    after = {k.replace(".base_layer", ""): v for k, v in model.state_dict().items() if "lora_" not in k}
    assert all(torch.equal(after[k], v) for k, v in before.items())  # the base is untouched
    assert any(torch.count_nonzero(b) for _, b in lora_state(model).values())  # B moved off zero


def test_trainable_head_option():
    model = tiny_bert()
    inject_lora(model, TARGETS, r=2, trainable=["classifier"])
    assert {n for n, p in model.named_parameters() if p.requires_grad and "lora_" not in n} == {
        "classifier.weight",
        "classifier.bias",
    }


def test_unknown_target_names_the_choices():
    with pytest.raises(ValueError, match="query"):
        inject_lora(tiny_bert(), ["q_proj"])


def _pair():
    """Our LoRA and peft's on the same base weights, with the same random (non-zero) A and B."""
    ours, theirs = tiny_bert(), tiny_bert()
    inject_lora(ours, TARGETS, r=4, alpha=8)
    theirs = add_lora(theirs, rank=4, alpha=8, target_modules=TARGETS, train_head=False)
    torch.manual_seed(3)
    for a, b in lora_state(ours).values():
        with torch.no_grad():
            a.normal_()
            b.normal_(std=0.1)
    assert copy_lora_weights(ours, theirs) == 4
    return ours, theirs.eval()


def test_parity_with_peft_outputs_and_delta():
    ours, theirs = _pair()
    with torch.no_grad():
        assert torch.allclose(ours(**batch()).logits, theirs(**batch()).logits, atol=1e-6)
    layer = ours.bert.encoder.layer[0].attention.self.query
    peft_layer = theirs.base_model.model.bert.encoder.layer[0].attention.self.query
    assert torch.allclose(layer.delta_weight(), peft_layer.get_delta_weight("default"), atol=1e-6)


def test_copy_back_from_peft():
    ours, theirs = _pair()
    fresh = tiny_bert()
    inject_lora(fresh, TARGETS, r=4, alpha=8)
    copy_lora_weights(theirs, fresh)
    with torch.no_grad():
        assert torch.allclose(fresh(**batch()).logits, ours(**batch()).logits, atol=1e-6)


def test_merge_keeps_outputs():
    ours, theirs = _pair()
    with torch.no_grad():
        expected = ours(**batch()).logits
        assert merge_lora(ours) == 4
        assert not any(isinstance(m, LoRALinear) for m in ours.modules())
        assert torch.allclose(ours(**batch()).logits, expected, atol=1e-5)
        merged_peft = theirs.merge_and_unload()
        assert torch.allclose(merged_peft(**batch()).logits, expected, atol=1e-5)
