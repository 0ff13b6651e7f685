"""Data quality: a report for a dataset, duplicate and leak finding, mislabel finding, class imbalance.

Works on a user's own CSV/JSONL, a pandas DataFrame or a datasets.Dataset with
``text`` and ``label`` columns, so the checks in notebook 02 apply to any data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from datasets import ClassLabel, Dataset

from helpers.data import tokenize
from helpers.evaluation import predict_logits
from helpers.models import load_embedder


# --- the data report ------------------------------------------------------------------------------
def dedup_key(text: str) -> str:
    """What exact-duplicate checks compare: the text lower-cased, runs of whitespace collapsed, punctuation kept."""
    return " ".join(str(text).lower().split())


def as_frame(data, text_column: str = "text", label_column: str = "label") -> pd.DataFrame:
    """A DataFrame with columns text and label from a path (.csv/.jsonl), a DataFrame or a Dataset."""
    if isinstance(data, (str, Path)):
        path = Path(data)
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist; check the path (relative paths start at {Path.cwd()}).")
        data = pd.read_json(path, lines=True) if path.suffix.lower() in (".jsonl", ".json") else pd.read_csv(path)
    if isinstance(data, Dataset):
        frame = data.to_pandas()
        feature = data.features.get(label_column)
        if isinstance(feature, ClassLabel):
            frame[label_column] = [feature.names[i] for i in data[label_column]]
        data = frame
    for role, column in (("text_column", text_column), ("label_column", label_column)):
        if column not in data.columns:
            raise ValueError(
                f"column {column!r} not found; columns are: {', '.join(map(str, data.columns))}. "
                f"Pass {role}='<one of those>'."
            )
    return data[[text_column, label_column]].rename(columns={text_column: "text", label_column: "label"})


@dataclass
class DataReport:
    """What a data check found: sizes, empty/duplicate/conflicting texts, label counts, lengths, leaks."""

    rows: int
    empty_texts: int  # missing or blank
    duplicate_texts: int  # rows whose normalised text already appeared above
    conflicting_texts: int  # distinct texts that carry more than one label
    label_counts: dict[str, int] = field(default_factory=dict)
    length_words: dict[str, float] = field(default_factory=dict)  # min, median, mean, max
    leaked_texts: int | None = None  # distinct texts also present in the other split (None: no other split)

    @property
    def imbalance_ratio(self) -> float:
        """Examples of the most common label per example of the rarest (1.0 = balanced)."""
        counts = list(self.label_counts.values())
        return max(counts) / max(1, min(counts)) if counts else 1.0

    def problems(self, max_imbalance: float = 3.0) -> list[str]:
        """Plain-language list of what to fix; empty when the data passes every check."""
        found = []
        if self.empty_texts:
            found.append(f"{self.empty_texts} empty texts: remove them or fill them in.")
        if self.duplicate_texts:
            found.append(f"{self.duplicate_texts} duplicate texts: keep one copy of each.")
        if self.conflicting_texts:
            found.append(f"{self.conflicting_texts} texts appear with different labels: decide the right label.")
        if self.imbalance_ratio > max_imbalance:
            rare = min(self.label_counts, key=self.label_counts.get)
            found.append(
                f"labels are imbalanced ({self.imbalance_ratio:.1f}x; rarest: {rare!r}): "
                "collect more of the rare labels, resample or weight the loss."
            )
        if self.leaked_texts:
            found.append(f"{self.leaked_texts} texts are in both splits: remove them from the evaluation split.")
        return found

    def table(self) -> pd.DataFrame:
        """The report as a two-column table for display."""
        rows = {
            "rows": self.rows,
            "empty texts": self.empty_texts,
            "duplicate texts": self.duplicate_texts,
            "texts with conflicting labels": self.conflicting_texts,
            "labels": len(self.label_counts),
            "imbalance (largest / smallest label)": round(self.imbalance_ratio, 2),
            **{f"length in words ({k})": v for k, v in self.length_words.items()},
        }
        if self.leaked_texts is not None:
            rows["texts also in the other split"] = self.leaked_texts
        return pd.DataFrame({"check": list(rows), "value": [str(v) for v in rows.values()]})


def data_report(data, other=None, text_column: str = "text", label_column: str = "label") -> DataReport:
    """Check a dataset (path, DataFrame or Dataset); ``other`` is a second split to test for leakage."""
    frame = as_frame(data, text_column, label_column)
    empty = frame["text"].isna() | (frame["text"].astype(str).str.strip() == "")
    kept = frame[~empty].assign(norm=lambda f: f["text"].map(dedup_key))
    words = kept["text"].astype(str).str.split().str.len()
    leaked = None
    if other is not None:
        other_norm = set(as_frame(other, text_column, label_column)["text"].dropna().map(dedup_key))
        leaked = len(set(kept["norm"]) & other_norm)
    return DataReport(
        rows=len(frame),
        empty_texts=int(empty.sum()),
        duplicate_texts=int(kept["norm"].duplicated().sum()),
        conflicting_texts=int((kept.groupby("norm")["label"].nunique() > 1).sum()),
        label_counts={str(k): int(v) for k, v in kept["label"].value_counts().items()},
        length_words={
            k: round(float(getattr(words, k)()), 1) if len(words) else 0.0 for k in ("min", "median", "mean", "max")
        },
        leaked_texts=leaked,
    )


# --- exact and near duplicates --------------------------------------------------------------------
def embed(texts: Sequence[str], embedder=None, batch_size: int = 64) -> np.ndarray:
    """Unit-length sentence embeddings (N, D) from ``embedder`` (default: the bundled MiniLM)."""
    if embedder is None:
        embedder = load_embedder()
    return embedder.encode(
        list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )


def similar_pairs(
    emb_a: np.ndarray, emb_b: np.ndarray | None = None, threshold: float = 0.95, chunk: int = 1024
) -> list[tuple[int, int, float]]:
    """(i, j, cosine) for every pair at or above ``threshold``; within emb_a (i < j) when emb_b is None."""
    other = emb_a if emb_b is None else emb_b
    pairs = []
    for start in range(0, len(emb_a), chunk):  # chunks keep the (N, M) similarity matrix small
        sims = emb_a[start : start + chunk] @ other.T
        for i, j in zip(*np.nonzero(sims >= threshold)):
            if emb_b is None and start + i >= j:
                continue  # each within-set pair once, and not a text with itself
            pairs.append((int(start + i), int(j), float(sims[i, j])))
    return pairs


def find_duplicates(
    texts: Sequence[str],
    other: Sequence[str] | None = None,
    threshold: float = 0.95,
    embedder=None,
    embeddings: tuple[np.ndarray, np.ndarray | None] | None = None,
) -> pd.DataFrame:
    """Exact and near-duplicate pairs within ``texts`` or between ``texts`` and ``other``.

    Columns: i, j (positions), text_a, text_b, similarity (cosine of embeddings)
    and kind ('exact' after lower-casing and whitespace clean-up, else 'near').
    Pass ``embeddings=(emb_texts, emb_other)`` to reuse vectors already computed.
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold is a cosine similarity in (0, 1], got {threshold}.")
    emb_a, emb_b = (
        embeddings
        if embeddings is not None
        else (embed(texts, embedder), None if other is None else embed(other, embedder))
    )
    b_texts = texts if other is None else other
    rows = []
    for i, j, sim in similar_pairs(emb_a, emb_b, threshold):
        exact = dedup_key(texts[i]) == dedup_key(b_texts[j])
        rows.append(
            {
                "i": i,
                "j": j,
                "text_a": texts[i],
                "text_b": b_texts[j],
                "similarity": round(sim, 4),
                "kind": "exact" if exact else "near",
            }
        )
    columns = ["i", "j", "text_a", "text_b", "similarity", "kind"]
    return pd.DataFrame(rows, columns=columns).sort_values("similarity", ascending=False, ignore_index=True)


# --- mislabel finding ------------------------------------------------------------------------------
def per_example_loss(logits: np.ndarray, labels: Sequence[int]) -> np.ndarray:
    """Cross-entropy of each example's given label (N,): high loss = the model disagrees with the label."""
    logits_t, labels_t = torch.as_tensor(logits, dtype=torch.float32), torch.as_tensor(np.asarray(labels))
    return torch.nn.functional.cross_entropy(logits_t, labels_t, reduction="none").numpy()


def confident_disagreements(logits: np.ndarray, labels: Sequence[int], min_confidence: float = 0.5) -> np.ndarray:
    """Indices where the model predicts another label than the given one with probability >= min_confidence."""
    probs = torch.softmax(torch.as_tensor(logits, dtype=torch.float32), -1).numpy()
    pred, labels = probs.argmax(-1), np.asarray(labels)
    return np.nonzero((pred != labels) & (probs.max(-1) >= min_confidence))[0]


# --- class imbalance --------------------------------------------------------------------------------
def oversample(dataset: Dataset, seed: int = 0) -> Dataset:
    """Repeat examples of rarer labels (drawn at random) until every label is as common as the largest."""
    rng = np.random.default_rng(seed)
    labels = np.array(dataset["label"])
    counts = np.bincount(labels)
    extra = []
    for c, n in enumerate(counts):
        if 0 < n < counts.max():
            extra.extend(rng.choice(np.nonzero(labels == c)[0], size=counts.max() - n, replace=True).tolist())
    return dataset.select(list(range(len(labels))) + extra).shuffle(seed=seed)


def class_weights(labels: Sequence[int], n_classes: int) -> torch.Tensor:
    """Inverse-frequency weight per label, scaled to average 1 over the examples (rare labels weigh more)."""
    counts = np.bincount(np.asarray(labels), minlength=n_classes).astype(float)
    weights = np.where(counts > 0, len(labels) / (n_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


def per_class_recall(predictions: Sequence[int], labels: Sequence[int], n_classes: int) -> np.ndarray:
    """Recall of each label (n_classes,): the share of its examples predicted correctly (nan if absent)."""
    preds, labels = np.asarray(predictions), np.asarray(labels)
    return np.array([(preds[labels == c] == c).mean() if (labels == c).any() else np.nan for c in range(n_classes)])


# --- predictions on a text dataset ------------------------------------------------------------------
def predict(model, dataset: Dataset, tokenizer, max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """(logits (N, C), labels (N,)) of ``model`` on a text/label Dataset, in dataset order."""
    return predict_logits(model, tokenize(dataset, tokenizer, max_length), tokenizer)
