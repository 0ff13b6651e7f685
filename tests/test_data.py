import pytest
import torch
from transformers import DataCollatorWithPadding

from helpers import data, training
from helpers.training import TrainConfig
from tests.tiny import tiny_classifier, tokenizer


def test_banking77_full_sizes():
    assert len(data.load_banking77("train")) == 10003
    assert len(data.load_banking77("test")) == 3080
    assert len(data.banking77_intents()) == 77


def test_banking77_subset_is_balanced_and_renumbered():
    intents = ["card_arrival", "pin_blocked", "exchange_rate"]
    ds = data.load_banking77("train", per_class=7, intents=intents, seed=1)
    assert ds.features["label"].names == intents
    assert sorted(ds["label"]) == sorted([0] * 7 + [1] * 7 + [2] * 7)


def test_banking77_sampling_is_seeded():
    a = data.load_banking77("train", per_class=3, seed=5)["text"]
    b = data.load_banking77("train", per_class=3, seed=5)["text"]
    c = data.load_banking77("train", per_class=3, seed=6)["text"]
    assert list(a) == list(b) and list(a) != list(c)


def test_banking77_rejects_unknown_intent_and_split():
    with pytest.raises(ValueError, match="Unknown banking77 intents"):
        data.load_banking77("train", intents=["card_arival"])
    with pytest.raises(ValueError, match="'train' or 'test'"):
        data.load_banking77("validation")


def test_user_csv_loads_with_named_columns(tmp_path):
    path = tmp_path / "tickets.csv"
    path.write_text("message,intent\nwhere is my card,card\nwhy a fee,fee\nanother fee,fee\n")
    ds = data.load_text_classification(path, text_column="message", label_column="intent")
    assert ds.features["label"].names == ["card", "fee"]
    assert sorted(ds["text"]) == sorted(["where is my card", "why a fee", "another fee"])


def test_user_jsonl_loads(tmp_path):
    path = tmp_path / "tickets.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": "y"}\n')
    ds = data.load_text_classification(path)
    names = ds.features["label"].names
    assert names == ["x", "y"] and sorted(zip(ds["text"], (names[i] for i in ds["label"]))) == [("a", "x"), ("b", "y")]


def test_wrong_column_lists_columns_and_argument(tmp_path):
    path = tmp_path / "my_tickets.csv"
    path.write_text("text,intent\nhello,greet\n")
    with pytest.raises(
        ValueError,
        match=r"column 'label' not found in my_tickets.csv; columns are: text, intent. "
        r"Pass label_column=",
    ):
        data.load_text_classification(path)


@pytest.mark.parametrize(
    "content,match", [("", "is empty"), ("text,label\n", "no rows"), ("text,label\n,a\nfine,b\n", "empty texts")]
)
def test_bad_files_get_clear_errors(tmp_path, content, match):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=match):
        data.load_text_classification(path)


def test_missing_file_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load_text_classification(tmp_path / "nope.csv")


def test_unseen_test_labels_are_reported(tmp_path):
    path = tmp_path / "test.csv"
    path.write_text("text,label\nhi,a\nyo,z\n")
    with pytest.raises(ValueError, match="not in label_names"):
        data.load_text_classification(path, label_names=["a", "b"])


def test_stratified_split_keeps_label_shares():
    ds = data.load_banking77("train", per_class=10, intents=["card_arrival", "pin_blocked"])
    train, held = data.stratified_split(ds, test_size=0.2, seed=0)
    assert sorted(held["label"]) == [0, 0, 1, 1]
    assert len(train) == 16


def test_tokenize_gives_model_columns_and_truncates():
    ds = data.load_banking77("test", per_class=2, intents=["card_arrival"])
    tok = data.tokenize(ds, tokenizer(), max_length=8)
    assert set(tok.column_names) == {"input_ids", "token_type_ids", "attention_mask", "labels"}
    assert max(len(ids) for ids in tok["input_ids"]) <= 8


def test_eval_loader_keeps_order_and_leaves_global_rng_alone():
    tok = tokenizer()
    ds = data.tokenize(data.load_banking77("test", per_class=3, intents=["card_arrival", "pin_blocked"]), tok, 16)
    torch.manual_seed(0)
    before = torch.get_rng_state()
    labels = [int(x) for b in data.eval_loader(ds, 4, DataCollatorWithPadding(tok)) for x in b["labels"]]
    assert torch.equal(torch.get_rng_state(), before)
    assert labels == list(ds["labels"])


def test_read_jsonl_reads_objects_and_names_a_broken_line(tmp_path):
    good = tmp_path / "rows.jsonl"
    good.write_text('{"a": 1}\n\n{"a": 2}\n', encoding="utf-8")
    assert data.read_jsonl(good) == [{"a": 1}, {"a": 2}]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"a": 1}\n{"a": \n', encoding="utf-8")
    with pytest.raises(ValueError, match="bad.jsonl line 2 is not valid JSON"):
        data.read_jsonl(bad)
    with pytest.raises(FileNotFoundError, match="missing.jsonl is missing"):
        data.read_jsonl(tmp_path / "missing.jsonl")


def test_the_test_split_cannot_monitor_training():
    test = data.load_banking77("test", per_class=2, intents=["card_arrival", "pin_blocked"])
    train, validation = data.stratified_split(
        data.load_banking77("train", per_class=10, intents=["card_arrival", "pin_blocked"]), 0.2
    )
    tok = tokenizer()
    with pytest.raises(ValueError, match="This is the test split: monitor training on a validation split"):
        data.refuse_test_split(data.tokenize(test.select([0, 1]), tok, 16))  # the name survives select and map
    data.refuse_test_split(validation)  # held back from the training data: fine
    data.refuse_test_split(None)
    config = TrainConfig(max_steps=1, batch_size=4, progress=False)
    with pytest.raises(ValueError, match="test split"):
        training.train(
            tiny_classifier(), data.tokenize(train, tok, 16), config, data.tokenize(test, tok, 16), tokenizer=tok
        )
