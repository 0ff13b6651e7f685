"""helpers.lessons.lora_and_peft and peft_merge: sizes on disk, saved runs reloaded and scored, merges, formats."""

from __future__ import annotations

import copy
import importlib.util
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Dataset, Features, Value
from peft import PeftModel
from transformers import BertForSequenceClassification

from helpers.adapters import add_lora, peft_wrapping
from helpers.lessons import lora_and_peft as pt
from helpers.lessons import peft_merge
from helpers.runtime import profile
from tests import tiny
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


@pytest.mark.parametrize("method, rank", [("head-only", None), ("lora", 2), ("full", None)])
def test_a_variant_is_saved_and_reloads_with_its_validation_predictions(monkeypatch, tmp_path, method, rank):
    from helpers import data  # noqa: PLC0415
    from helpers.training import TrainConfig  # noqa: PLC0415

    tok = tiny.tokenizer()
    monkeypatch.setattr(pt.models, "load_classifier", lambda labels: (tiny.tiny_classifier(), tok))
    tokenised = data.tokenize(tiny.two_class_dataset(repeat=5), tok, 16)
    train, val = tokenised.select(range(32)), tokenised.select(range(32, 40))
    config = TrainConfig(max_steps=3, batch_size=8, restore_best=False, progress=False, mixed_precision="no")
    row = pt.run_variant(method, train, val, ["card", "fee"], config, tmp_path, rank)
    assert len(row["val_predictions"]) == len(val) and Path(row["folder"]).is_dir()
    reloaded = peft_merge.logits_on(peft_merge.load_trained(row, ["card", "fee"]), val, tok)
    untrained = peft_merge.logits_on(tiny.tiny_classifier().eval(), val, tok)
    assert np.abs(reloaded - np.array(row["val_first_logits"])).max() < 1e-5  # the files hold the finished model
    assert np.abs(untrained - np.array(row["val_first_logits"])).max() > 1e-4  # and training moved it
    (scored,) = peft_merge.score_saved([row], val, ["card", "fee"], tok)
    assert scored["variant"] == row["variant"] and scored["accuracy"] == pytest.approx(row["val_accuracy"])
    assert scored["right"] == [int(p == y) for p, y in zip(row["val_predictions"], val["labels"])]
    assert scored["low"] <= scored["accuracy"] <= scored["high"] and scored["seed"] == row["seed"]


def test_load_trained_refuses_weights_of_another_model(monkeypatch, tmp_path):
    monkeypatch.setattr(pt.models, "load_classifier", lambda labels: (tiny_bert(), None))
    pt.save_trained(torch.nn.Linear(2, 2), tmp_path)  # weights named 'weight' and 'bias': not a BERT's
    with pytest.raises(ValueError, match="holds weights this model does not have"):
        peft_merge.load_trained({"method": "full", "folder": str(tmp_path)}, ["a", "b"])


def test_train_validation_keeps_the_training_split_and_holds_back_a_stratified_fifth():
    from helpers import data  # noqa: PLC0415
    from helpers.runtime import profile  # noqa: PLC0415

    p = profile("smoke")
    train, val = pt.train_validation(p)
    assert train["text"] == data.load_banking77("train", per_class=p.train_per_class, intents=p.intents)["text"]
    counts = Counter(val["label"])
    assert len(counts) == len(p.intents) and set(counts.values()) == {p.train_per_class // 4}
    assert not set(train["text"]) & set(val["text"])


def test_extra_seeds_keep_one_more_in_smoke():
    extra = [pt.extra_seeds(profile(name)) for name in ("smoke", "workshop", "full")]
    assert extra == [[1], [1], [1, 2]]  # seed 0 is the sweep's; smoke keeps a second seed, unlike the usual policy


def test_seed_runs_train_lora_and_full_again_under_their_own_folders(monkeypatch, tmp_path):
    from helpers import data  # noqa: PLC0415
    from helpers.training import TrainConfig  # noqa: PLC0415

    tok = tiny.tokenizer()
    monkeypatch.setattr(pt.models, "load_classifier", lambda labels: (tiny.tiny_classifier(), tok))
    tokenised = data.tokenize(tiny.two_class_dataset(repeat=5), tok, 16)
    train, val = tokenised.select(range(32)), tokenised.select(range(32, 40))
    config = TrainConfig(max_steps=2, batch_size=8, restore_best=False, progress=False, mixed_precision="no")
    rows = pt.seed_runs([1, 2], train, val, ["card", "fee"], config, tmp_path)
    assert [(r["method"], r["seed"]) for r in rows] == [("lora", 1), ("full", 1), ("lora", 2), ("full", 2)]
    assert len({r["folder"] for r in rows}) == 4 and all(Path(r["folder"]).is_dir() for r in rows)
    logits = {r["seed"]: np.array(r["val_first_logits"]) for r in rows if r["method"] == "full"}
    assert np.abs(logits[1] - logits[2]).max() > 1e-4  # another seed, another head: the runs differ
