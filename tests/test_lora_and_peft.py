"""helpers.lessons.lora_and_peft: sizes on disk, adapters saved and reloaded, the intent-reply format."""

from __future__ import annotations

import copy
import importlib.util
from collections import Counter

import torch
from datasets import ClassLabel, Dataset, Features, Value
from peft import PeftModel
from transformers import BertForSequenceClassification

from helpers.adapters import add_lora, peft_wrapping
from helpers.lessons import lora_and_peft as pt
from helpers.lessons import peft_merge
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


def _trained_adapter(seed: int = 1):
    """A tiny BERT with rank-2 LoRA whose B and head moved (as if trained)."""
    model = add_lora(tiny_bert(), rank=2, target_modules=["query", "value"])
    torch.manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n or "modules_to_save" in n:
                p.add_(torch.randn_like(p) * 0.5)
    return model.eval()


def test_hand_merge_equals_peft_merge_and_unload(monkeypatch):
    monkeypatch.setattr(pt.models, "load_classifier", lambda labels: (tiny_bert(), None))
    adapter = _trained_adapter()
    ids = torch.randint(0, 100, (4, 9))
    ours = peft_merge.hand_merged(adapter, ["a", "b"])
    with torch.no_grad():
        with_adapter = adapter(input_ids=ids).logits
        peft_merged = copy.deepcopy(adapter).merge_and_unload()(input_ids=ids).logits
        ours_logits = ours(input_ids=ids).logits
    assert not any("lora_" in n for n, _ in ours.named_parameters())
    assert (ours_logits - peft_merged).abs().max() < 1e-5
    assert (ours_logits - with_adapter).abs().max() < 1e-5
    assert (tiny_bert()(input_ids=ids).logits - with_adapter).abs().max() > 1e-2  # the adapter changed something


def test_logits_gap_and_export_reload(monkeypatch, tmp_path):
    model = tiny_bert()
    tok = _word_tokenizer(tmp_path)
    texts = Dataset.from_dict({"text": ["a b c", "c d", "e f g h"], "label": [0, 1, 0]})
    data = texts.map(lambda b: {**tok(b["text"]), "labels": b["label"]}, batched=True, remove_columns=["text", "label"])
    exported = peft_merge.export_and_reload(model, tok, tmp_path / "build")
    assert exported["class"] == "BertForSequenceClassification" and "model.safetensors" in exported["files"]
    assert not list((tmp_path / "build").iterdir())  # the temporary folder is gone
    same = peft_merge.logits_gap(exported["model"], model, data, tok)
    assert same == {"max_logit_gap": 0.0, "different_predictions": 0}
    other = peft_merge.logits_gap(
        tiny_classifier(n_labels=2, vocab_size=100, max_positions=32, seed=5).eval(), model, data, tok
    )
    assert other["max_logit_gap"] > 1e-3


def _word_tokenizer(folder):
    """A tiny word-level fast tokenizer over letters a-z (ids below 100), saved and loaded like any other."""
    from tokenizers import Tokenizer, models, pre_tokenizers  # noqa: PLC0415
    from transformers import PreTrainedTokenizerFast  # noqa: PLC0415

    vocab = {"[PAD]": 0, "[UNK]": 1, **{chr(97 + i): i + 2 for i in range(26)}}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="[PAD]", unk_token="[UNK]")


def test_kept_eval_is_the_restored_step():
    from helpers.history import History  # noqa: PLC0415

    history = History(config={}, total_steps=4)
    history.train = [{"step": s} for s in (1, 2, 3, 4)]
    history.evals = [{"step": 2, "accuracy": 0.9}, {"step": 4, "accuracy": 0.7}]
    assert pt.kept_eval(history)["accuracy"] == 0.7
    history.restored_step = 2
    assert pt.kept_eval(history)["accuracy"] == 0.9
    history.evals = []
    assert pt.kept_eval(history) == {}


def test_train_validation_keeps_the_training_split_and_holds_back_a_stratified_fifth():
    from helpers import data  # noqa: PLC0415
    from helpers.runtime import profile  # noqa: PLC0415

    p = profile("smoke")
    train, val = pt.train_validation(p)
    assert train["text"] == data.load_banking77("train", per_class=p.train_per_class, intents=p.intents)["text"]
    counts = Counter(val["label"])
    assert len(counts) == len(p.intents) and set(counts.values()) == {p.train_per_class // 4}
    assert not set(train["text"]) & set(val["text"])
