"""Shipping: save into a new folder, reload here and in a fresh process, classify, write a model card."""

from __future__ import annotations

import re

import numpy as np
import pytest
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from helpers import models, shipping

LABELS = ["card_arrival", "exchange_rate", "pin_blocked"]


@pytest.fixture(scope="module")
def tiny():
    """A tiny random BERT classifier with the bundled tokenizer (fast to save and load)."""
    config = AutoConfig.from_pretrained(
        models.minilm_dir(),
        num_labels=3,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        id2label=dict(enumerate(LABELS)),
        label2id={n: i for i, n in enumerate(LABELS)},
    )
    model = AutoModelForSequenceClassification.from_config(config).eval()
    return model, AutoTokenizer.from_pretrained(models.minilm_dir())


def test_fresh_output_dir_never_reuses_a_full_folder(tmp_path):
    assert shipping.fresh_output_dir(tmp_path / "m") == tmp_path / "m"
    (tmp_path / "m").mkdir()
    assert shipping.fresh_output_dir(tmp_path / "m") == tmp_path / "m"  # empty: fine
    (tmp_path / "m" / "f").write_text("x")
    assert shipping.fresh_output_dir(tmp_path / "m") == tmp_path / "m-2"


def test_save_refuses_non_empty_folder(tiny, tmp_path):
    (tmp_path / "keep.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="already holds files"):
        shipping.save_classifier(*tiny, LABELS, tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "precious"


def test_roundtrip_identical_in_process_and_fresh_process(tiny, tmp_path):
    model, tok = tiny
    texts = ["where is my new card", "what rate do you use", "my pin is blocked"]
    folder = shipping.save_classifier(model, tok, LABELS, tmp_path / "ship", max_length=16)
    before = shipping.predict_proba(model, tok, texts, max_length=16)
    m2, t2, labels, max_length = shipping.load_saved_classifier(folder)
    assert labels == LABELS and max_length == 16
    np.testing.assert_array_equal(shipping.predict_proba(m2, t2, texts, max_length), before)
    fresh = shipping.predict_in_fresh_process(folder, texts)
    np.testing.assert_allclose(fresh, before, atol=1e-6)
    preds = shipping.classify(texts, m2, t2, labels, max_length, threshold=1.1)
    assert [p.intent for p in preds] == [LABELS[i] for i in before.argmax(1)]
    np.testing.assert_allclose([p.confidence for p in preds], before.max(1), atol=1e-6)
    assert not any(p.confident for p in preds)  # nothing clears a threshold above 1
    middle = float(np.sort(before.max(1))[1])  # the 3 confidences differ: at the middle one, 2 of 3 clear it
    assert sum(p.confident for p in shipping.classify(texts, m2, t2, labels, max_length, threshold=middle)) == 2


def test_model_card_uses_the_facts(tmp_path):
    facts = {
        "name": "intents",
        "intended_use": "Route queries.",
        "base_model": "MiniLM",
        "parameters": 1234,
        "size_mib": 90.5,
        "profile": "smoke",
        "train_seconds": 12.0,
        "device": "cpu",
        "data": "banking77",
        "metrics": {"test accuracy": "87.0%"},
        "limits": ["English only"],
        "folder": "build/x",
        "threshold": 0.5,
    }
    path = shipping.write_model_card(tmp_path, facts)
    text = path.read_text()
    assert "| test accuracy | 87.0% |" in text and "- English only" in text and "1,234 parameters" in text
    assert "90.5 MiB on disk" in text
    called = re.findall(r"shipping\.(\w+)\(", text)  # the card's "How to use" code must run as written
    assert called and all(hasattr(shipping, name) for name in called), called


def test_loading_a_folder_not_saved_by_save_classifier_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="saved with shipping.save_classifier"):
        shipping.load_saved_classifier(tmp_path)


REVIEWED = {
    "out_of_scope": "Credit decisions.",
    "lineage": [{"source": "train.csv", "licence": "CC-BY-4.0", "sha256": "ab12", "redaction": "helpers.redaction"}],
    "slices": {"typos": "81.0% (95% CI 75.0% to 86.0%)"},
    "memorisation": "No canary above chance.",
}


def test_a_card_without_the_reviewers_fields_is_reported_and_one_with_them_renders_them():
    basic = {"intended_use": "Route queries.", "limits": ["English only"]}
    assert set(shipping.review_gaps(basic)) == {
        shipping.REVIEW_FIELDS[k] for k in ("out_of_scope", "lineage", "slices", "memorisation")
    }
    assert shipping.review_gaps(basic | REVIEWED) == []
    no_hash = basic | REVIEWED | {"lineage": [{"source": "train.csv", "licence": "CC-BY-4.0", "redaction": "none"}]}
    assert shipping.review_gaps(no_hash) == ["lineage of train.csv: sha256"]
    text = shipping.review_sections(REVIEWED)
    assert "## Out-of-scope use\nCredit decisions." in text and "| train.csv | CC-BY-4.0 | `ab12` |" in text
    assert "| typos | 81.0%" in text and "## Memorisation check\nNo canary above chance." in text
    assert shipping.review_sections({}) == ""  # older facts render as before
