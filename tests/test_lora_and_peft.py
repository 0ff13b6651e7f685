"""helpers.lessons.lora_and_peft: sizes on disk, adapters saved and reloaded, the intent-reply format."""

from __future__ import annotations

import importlib.util

import torch
from datasets import ClassLabel, Dataset, Features, Value
from peft import PeftModel
from transformers import BertForSequenceClassification

from helpers.adapters import add_lora, peft_wrapping
from helpers.lessons import lora_and_peft as pt
from tests.tiny import tiny_classifier


def tiny_bert() -> BertForSequenceClassification:
    return tiny_classifier(n_labels=2, vocab_size=100, max_positions=32).eval()


def test_saved_adapter_is_small_and_reloads(tmp_path):
    model = add_lora(tiny_bert(), rank=2, target_modules=["query", "value"])
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_()
    lora_mb = pt.save_trained(model, tmp_path / "lora")
    full_mb = pt.save_trained(tiny_bert(), tmp_path / "full")  # every parameter trains
    assert 0 < lora_mb < full_mb / 5
    ids = torch.randint(0, 100, (3, 8))
    with peft_wrapping():
        reloaded = PeftModel.from_pretrained(tiny_bert(), str(tmp_path / "lora")).eval()
    with torch.no_grad():
        assert torch.allclose(reloaded(input_ids=ids).logits, model.eval()(input_ids=ids).logits, atol=1e-6)


def test_intent_format_scoring():
    ds = Dataset.from_dict(
        {"text": ["where is my card", "pin blocked"], "label": [0, 1]},
        features=Features({"text": Value("string"), "label": ClassLabel(names=["card_arrival", "pin_blocked"])}),
    )
    chats = pt.intent_conversations(ds)
    assert chats[0][-1] == {"role": "assistant", "content": "intent: card_arrival"}
    assert pt.intent_conversations(ds, with_reply=False)[1][-1]["role"] == "user"
    assert pt.score_intent_replies(["intent: card_arrival", "It is blocked."], ds) == {"format": 0.5, "accuracy": 0.5}


def test_qlora_status_explains_itself(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    ok, why = pt.qlora_status()
    assert not ok and "no CUDA GPU" in why
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real_find_spec(name, *a)
    )
    ok, why = pt.qlora_status()
    assert not ok and "bitsandbytes is not installed" in why
