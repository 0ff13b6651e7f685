"""Error analysis and business metrics for a classifier: per-class F1, the most confused pairs,
misclassified examples grouped by pair, latency, throughput and cost per 1,000 queries."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import precision_recall_fscore_support


def per_class_f1(predictions, references, names: Sequence[str]) -> pd.DataFrame:
    """One row per intent (intent, f1, precision, recall, support), worst F1 first."""
    labels = list(range(len(names)))
    p, r, f, s = precision_recall_fscore_support(references, predictions, labels=labels, zero_division=0)
    frame = pd.DataFrame({"intent": list(names), "f1": f, "precision": p, "recall": r, "support": s})
    return frame.sort_values(["f1", "intent"]).reset_index(drop=True)


def most_confused_pairs(matrix: np.ndarray, names: Sequence[str], top: int = 5) -> pd.DataFrame:
    """The ``top`` off-diagonal cells of a confusion matrix: true, predicted, count, share of the true intent."""
    m = np.asarray(matrix)
    off = m.copy()
    np.fill_diagonal(off, 0)
    order = np.argsort(-off, axis=None, kind="stable")[:top]
    rows = []
    for flat in order:
        t, p = np.unravel_index(flat, off.shape)
        if off[t, p] == 0:
            break
        rows.append(
            {
                "true": names[t],
                "predicted": names[p],
                "count": int(off[t, p]),
                "share_of_true": off[t, p] / max(1, m[t].sum()),
            }
        )
    return pd.DataFrame(rows, columns=["true", "predicted", "count", "share_of_true"])


def confused_submatrix(matrix: np.ndarray, names: Sequence[str], top: int = 5) -> tuple[np.ndarray, list[str]]:
    """The confusion matrix restricted to the intents that appear in the ``top`` most confused pairs."""
    pairs = most_confused_pairs(matrix, names, top)
    keep = list(dict.fromkeys(pairs["true"].tolist() + pairs["predicted"].tolist()))
    idx = [list(names).index(n) for n in keep]
    return np.asarray(matrix)[np.ix_(idx, idx)], keep


def error_table(
    texts: Sequence[str],
    predictions,
    references,
    confidence,
    names: Sequence[str],
    top_pairs: int = 5,
    per_pair: int = 3,
) -> pd.DataFrame:
    """Misclassified texts grouped by (true → predicted) pair; most frequent pairs and most confident errors first."""
    preds, refs, conf = np.asarray(predictions), np.asarray(references), np.asarray(confidence)
    wrong = np.flatnonzero(preds != refs)
    frame = pd.DataFrame(
        {
            "true": [names[refs[i]] for i in wrong],
            "predicted": [names[preds[i]] for i in wrong],
            "confidence": conf[wrong].round(3),
            "text": [texts[i] for i in wrong],
        }
    )
    if frame.empty:
        return frame.assign(pair_count=[])
    frame["pair_count"] = frame.groupby(["true", "predicted"])["text"].transform("size")
    frame = frame.sort_values(["pair_count", "true", "predicted", "confidence"], ascending=[False, True, True, False])
    top = frame.drop_duplicates(["true", "predicted"]).head(top_pairs)[["true", "predicted"]]
    frame = frame.merge(top, on=["true", "predicted"]).groupby(["true", "predicted"], sort=False).head(per_pair)
    return frame.set_index(["true", "predicted"])[["pair_count", "confidence", "text"]]


def measure_latency(
    predict_fn: Callable[[list[str]], object], texts: Sequence[str], batch_size: int = 1, warmup: int = 2
) -> dict[str, float]:
    """Time ``predict_fn`` over ``texts`` in batches: ms per query (mean, p50, p95 of batch time) and queries/s."""
    texts = list(texts)
    if not texts:
        raise ValueError("measure_latency needs at least one text.")
    for _ in range(warmup):  # first calls pay one-off costs (memory allocation, kernel selection)
        predict_fn(texts[:batch_size])
    batch_ms = []
    for start in range(0, len(texts), batch_size):
        t0 = time.perf_counter()
        predict_fn(texts[start : start + batch_size])
        batch_ms.append((time.perf_counter() - t0) * 1000)
    total_s = sum(batch_ms) / 1000
    return {
        "batch_size": batch_size,
        "queries": len(texts),
        "ms_per_query": 1000 * total_s / len(texts),
        "p50_batch_ms": float(np.percentile(batch_ms, 50)),
        "p95_batch_ms": float(np.percentile(batch_ms, 95)),
        "queries_per_s": len(texts) / total_s,
    }


def cost_per_1k(queries_per_second: float, hourly_price: float) -> float:
    """Machine cost of 1,000 queries at ``queries_per_second`` on a machine rented at ``hourly_price`` per hour."""
    if queries_per_second <= 0:
        raise ValueError("queries_per_second must be > 0.")
    return hourly_price / 3600 / queries_per_second * 1000
