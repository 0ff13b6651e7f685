"""Datasets: banking77 from ``data/``, a user's own CSV/JSONL, splits, tokenisation and evaluation loaders."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from datasets import ClassLabel, Dataset, Features, Value
from torch.utils.data import DataLoader

from helpers.paths import DATA_DIR
from helpers.tables import jsonl_rows, read_table

BANKING77_DIR = DATA_DIR / "banking77"


def banking77_intents() -> list[str]:
    """All 77 banking77 intent names, in the dataset's canonical order."""
    return json.loads((BANKING77_DIR / "categories.json").read_text())


def load_banking77(
    split: str, per_class: int | None = None, intents: Sequence[str] | None = None, seed: int = 0
) -> Dataset:
    """banking77 ``split`` ('train' or 'test') with ``text`` and a ClassLabel ``label``.

    ``intents`` keeps only those intents (labels renumbered in that order);
    ``per_class`` samples at most that many examples of each, reproducibly by ``seed``.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}.")
    path = BANKING77_DIR / f"{split}.csv"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing; restore the data/ folder from the repository (git checkout data/)."
        )
    frame = pd.read_csv(path).rename(columns={"category": "label"})
    names = list(intents) if intents is not None else banking77_intents()
    unknown = sorted(set(names) - set(banking77_intents()))
    if unknown:
        raise ValueError(f"Unknown banking77 intents {unknown}; see helpers.data.banking77_intents() for the 77 names.")
    frame = frame[frame["label"].isin(names)]
    return _to_dataset(frame, names, per_class, seed, split=split)


def load_text_classification(
    path: str | Path,
    text_column: str = "text",
    label_column: str = "label",
    label_names: Sequence[str] | None = None,
    per_class: int | None = None,
    seed: int = 0,
    skip_labels: Sequence[str] = (),
) -> Dataset:
    """A user's CSV, JSONL or JSON file as a Dataset with ``text`` and a ClassLabel ``label``.

    Texts and labels are kept as the strings written ("007" and "7" are two labels; "NA" is a label);
    rows whose label is in ``skip_labels`` are left out. ``label_names`` fixes the label order (pass
    the training set's names when loading its test set); otherwise labels are sorted alphabetically.
    """
    if text_column == label_column:
        raise ValueError(
            f"{text_column!r} is given as both the text and the label column; pass "
            "text_column='<column with the texts>' and label_column='<column with the labels>'."
        )
    path = Path(path)
    frame = read_table(path)
    for role, column in (("text_column", text_column), ("label_column", label_column)):
        if column not in frame.columns:
            raise ValueError(
                f"column {column!r} not found in {path.name}; columns are: "
                f"{', '.join(map(str, frame.columns))}. Pass {role}='<one of those>'."
            )
    frame = frame[[text_column, label_column]].rename(columns={text_column: "text", label_column: "label"})
    frame = frame[~frame["label"].isin(list(skip_labels))]
    if frame.empty:
        raise ValueError(f"{path.name} has no rows left once labels {list(skip_labels)} are skipped; add examples.")
    _check_cells(frame, path, text_column, label_column)
    names = list(label_names) if label_names is not None else sorted(frame["label"].unique())
    unseen = sorted(set(frame["label"]) - set(names))
    if unseen:
        raise ValueError(
            f"{path.name} has labels not in label_names: {unseen[:10]}; "
            "add them to the training data or drop those rows."
        )
    return _to_dataset(frame, names, per_class, seed)


def _check_cells(frame: pd.DataFrame, path: Path, text_column: str, label_column: str) -> None:
    """Every text and label must be a non-blank string (JSON lists/objects are not)."""
    blank, nested = (lambda v: isinstance(v, str) and not v.strip()), (lambda v: not isinstance(v, str))
    word = "examples" if path.suffix.lower() == ".json" else "lines"  # index: line (or example) numbers
    for column, bad, what in (
        ("text", blank, f"empty texts in column {text_column!r}"),
        ("text", nested, f"lists or objects instead of text in column {text_column!r}"),
        ("label", blank, f"empty labels in column {label_column!r}"),
        ("label", nested, f"lists or objects instead of a label in column {label_column!r}"),
    ):
        rows = frame.index[frame[column].map(bad)]
        if len(rows):
            raise ValueError(
                f"{path.name} has {len(rows)} {what} (first at {word} {[int(i) for i in rows[:5]]}); "
                "remove or fill them."
            )


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The JSON objects of a JSON Lines file, one per non-blank line; a broken line is named by number."""
    path = Path(path)
    if not path.exists():
        hint = " (git checkout data/)" if DATA_DIR in path.resolve().parents else ""
        raise FileNotFoundError(f"{path} is missing; restore it{hint} or pass the right path.")
    return [row for _, row in jsonl_rows(path.read_text(encoding="utf-8-sig"), path)]


def _to_dataset(
    frame: pd.DataFrame, names: list[str], per_class: int | None, seed: int, split: str | None = None
) -> Dataset:
    frame = frame.sample(frac=1.0, random_state=seed)  # shuffle, so head() below is a random sample
    if per_class is not None:
        frame = frame.groupby("label", sort=False).head(per_class)
    frame = frame.reset_index(drop=True)
    features = Features({"text": Value("string"), "label": ClassLabel(names=names)})
    rows = {"text": frame["text"].tolist(), "label": frame["label"].tolist()}
    return Dataset.from_dict(rows, features=features, split=split)  # the split name follows every select and map


def refuse_test_split(dataset) -> None:
    """Raise if ``dataset`` is a test split: monitoring training, and every choice, belong to a validation split."""
    if dataset is not None and str(getattr(dataset, "split", None)) == "test":
        raise ValueError(
            "This is the test split: monitor training on a validation split instead (for example "
            "helpers.data.stratified_split(train_set, 0.2)) and score the test set once, at the end."
        )


def stratified_split(dataset: Dataset, test_size: float = 0.2, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Split into (train, held-out) keeping each label's share the same in both."""
    parts = dataset.train_test_split(test_size=test_size, seed=seed, stratify_by_column="label")
    return parts["train"], parts["test"]


def tokenize(dataset: Dataset, tokenizer, max_length: int) -> Dataset:
    """Token ids for a text-classification Dataset: columns input_ids, attention_mask, labels.

    Padding happens per batch in the collator, so short texts cost short compute.
    """
    return tokenize_and_count(dataset, tokenizer, max_length)[0]


def tokenize_and_count(dataset: Dataset, tokenizer, max_length: int) -> tuple[Dataset, int]:
    """``tokenize(...)`` and how many texts were longer than ``max_length`` tokens (cut), from one tokenisation."""

    def encode(batch):
        encoded = tokenizer(batch["text"], truncation=True, max_length=max_length)
        if encoded.encodings is not None:  # a fast tokenizer keeps what truncation cut off in .overflowing
            encoded["truncated"] = [bool(e.overflowing) for e in encoded.encodings]
        else:  # a slow tokenizer: measure the uncut length (a second pass, only for these)
            lengths = tokenizer(batch["text"], truncation=False, verbose=False)["input_ids"]
            encoded["truncated"] = [len(ids) > max_length for ids in lengths]
        encoded["labels"] = batch["label"]
        return encoded

    keep = [c for c in dataset.column_names if c not in ("text", "label")]
    encoded = dataset.map(
        encode, batched=True, remove_columns=["text", "label"] + keep, desc="Tokenizing", load_from_cache_file=False
    )
    return encoded.remove_columns("truncated"), int(sum(encoded["truncated"]))


def eval_loader(dataset, batch_size: int, collate_fn) -> DataLoader:
    """An in-order DataLoader for evaluation that leaves the global RNG, and so any training run, untouched.

    Starting a DataLoader iterator draws a base seed from the global RNG unless the loader has its own generator;
    without one, evaluating more often would change the dropout masks of the training that follows.
    """
    return DataLoader(dataset, batch_size=batch_size, collate_fn=collate_fn, generator=torch.Generator())
