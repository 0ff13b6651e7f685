"""Datasets: banking77 from ``data/``, a user's own CSV/JSONL, splits, tokenisation and evaluation loaders."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch
from datasets import ClassLabel, Dataset, Features, Value
from torch.utils.data import DataLoader

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
BANKING77_DIR = DATA_DIR / "banking77"


def banking77_intents() -> list[str]:
    """All 77 banking77 intent names, in the dataset's canonical order."""
    return json.loads((BANKING77_DIR / "categories.json").read_text())


def load_banking77(split: str, per_class: int | None = None, intents: Sequence[str] | None = None,
                   seed: int = 0) -> Dataset:
    """banking77 ``split`` ('train' or 'test') with ``text`` and a ClassLabel ``label``.

    ``intents`` keeps only those intents (labels renumbered in that order);
    ``per_class`` samples at most that many examples of each, reproducibly by ``seed``.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}.")
    path = BANKING77_DIR / f"{split}.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing; restore the data/ folder from the repository (git checkout data/).")
    frame = pd.read_csv(path).rename(columns={"category": "label"})
    names = list(intents) if intents is not None else banking77_intents()
    unknown = sorted(set(names) - set(banking77_intents()))
    if unknown:
        raise ValueError(f"Unknown banking77 intents {unknown}; see helpers.data.banking77_intents() for the 77 names.")
    frame = frame[frame["label"].isin(names)]
    return _to_dataset(frame, names, per_class, seed)


def load_text_classification(path: str | Path, text_column: str = "text", label_column: str = "label",
                             label_names: Sequence[str] | None = None, per_class: int | None = None,
                             seed: int = 0) -> Dataset:
    """A user's CSV or JSONL file as a Dataset with ``text`` and a ClassLabel ``label``.

    ``label_names`` fixes the label order (pass the training set's names when
    loading its test set); otherwise labels are sorted alphabetically.
    """
    path = Path(path)
    frame = _read_table(path)
    for role, column in (("text_column", text_column), ("label_column", label_column)):
        if column not in frame.columns:
            raise ValueError(f"column {column!r} not found in {path.name}; columns are: "
                             f"{', '.join(map(str, frame.columns))}. Pass {role}='<one of those>'.")
    frame = frame[[text_column, label_column]].rename(columns={text_column: "text", label_column: "label"})
    empty = frame["text"].isna() | (frame["text"].astype(str).str.strip() == "")
    nested = frame["text"].map(lambda v: isinstance(v, (list, dict)))  # JSONL lists/objects are not text
    first_line = 2 if path.suffix.lower() == ".csv" else 1  # a CSV's line 1 is its header
    for bad, what in ((empty, f"empty texts in column {text_column!r}"),
                      (nested, f"lists or objects instead of text in column {text_column!r}"),
                      (frame["label"].isna(), f"empty labels in column {label_column!r}")):
        if bad.any():
            rows = [int(i) + first_line for i in frame.index[bad][:5]]
            raise ValueError(f"{path.name} has {int(bad.sum())} {what} (first at lines {rows}); "
                             "remove or fill them.")
    frame["text"] = frame["text"].astype(str)
    frame["label"] = frame["label"].astype(str)
    names = list(label_names) if label_names is not None else sorted(frame["label"].unique())
    unseen = sorted(set(frame["label"]) - set(names))
    if unseen:
        raise ValueError(f"{path.name} has labels not in label_names: {unseen[:10]}; "
                         "add them to the training data or drop those rows.")
    return _to_dataset(frame, names, per_class, seed)


def _read_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; check the path (relative paths start at {Path.cwd()}).")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".json"):
        raise ValueError(f"{path.name}: use a .csv or .jsonl file (one example per row).")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty; it needs a header row and at least one example.")
    try:
        frame = pd.read_csv(path) if suffix == ".csv" else pd.read_json(path, lines=True)
    except UnicodeDecodeError as err:
        raise ValueError(f"{path.name} is not UTF-8 text (byte {err.start}); re-save it as UTF-8.") from err
    if frame.empty:
        raise ValueError(f"{path.name} has a header but no rows; add examples.")
    return frame


def _to_dataset(frame: pd.DataFrame, names: list[str], per_class: int | None, seed: int) -> Dataset:
    frame = frame.sample(frac=1.0, random_state=seed)  # shuffle, so head() below is a random sample
    if per_class is not None:
        frame = frame.groupby("label", sort=False).head(per_class)
    frame = frame.reset_index(drop=True)
    features = Features({"text": Value("string"), "label": ClassLabel(names=names)})
    return Dataset.from_dict({"text": frame["text"].tolist(), "label": frame["label"].tolist()}, features=features)


def stratified_split(dataset: Dataset, test_size: float = 0.2, seed: int = 0) -> tuple[Dataset, Dataset]:
    """Split into (train, held-out) keeping each label's share the same in both."""
    parts = dataset.train_test_split(test_size=test_size, seed=seed, stratify_by_column="label")
    return parts["train"], parts["test"]


def tokenize(dataset: Dataset, tokenizer, max_length: int) -> Dataset:
    """Token ids for a text-classification Dataset: columns input_ids, attention_mask, labels.

    Padding happens per batch in the collator, so short texts cost short compute.
    """
    def encode(batch):
        encoded = tokenizer(batch["text"], truncation=True, max_length=max_length)
        encoded["labels"] = batch["label"]
        return encoded

    keep = [c for c in dataset.column_names if c not in ("text", "label")]
    return dataset.map(encode, batched=True, remove_columns=["text", "label"] + keep,
                       desc="Tokenizing", load_from_cache_file=False)


def count_truncated(texts: Sequence[str], tokenizer, max_length: int) -> int:
    """How many ``texts`` are longer than ``max_length`` tokens (special tokens included), i.e. get cut."""
    lengths = tokenizer(list(texts), truncation=False, verbose=False)["input_ids"]
    return sum(len(ids) > max_length for ids in lengths)


def eval_loader(dataset, batch_size: int, collate_fn) -> DataLoader:
    """An in-order DataLoader for evaluation that leaves the global RNG, and so any training run, untouched.

    Starting a DataLoader iterator draws a base seed from the global RNG unless the loader has its own generator;
    without one, evaluating more often would change the dropout masks of the training that follows.
    """
    return DataLoader(dataset, batch_size=batch_size, collate_fn=collate_fn, generator=torch.Generator())
