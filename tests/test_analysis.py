"""Error analysis and business metrics on small hand-made predictions."""

from __future__ import annotations

import time

import numpy as np
import pytest

from helpers import analysis

NAMES = ["a", "b", "c"]


def test_per_class_f1_sorted_worst_first():
    refs = [0, 0, 1, 1, 2, 2]
    preds = [0, 0, 1, 2, 1, 1]
    frame = analysis.per_class_f1(preds, refs, NAMES)
    assert frame["intent"].tolist()[0] == "c" and frame["f1"].is_monotonic_increasing
    assert frame.set_index("intent").loc["a", "f1"] == 1.0


def test_most_confused_pairs_and_submatrix():
    m = np.array([[5, 0, 0], [0, 4, 3], [0, 1, 6]])
    pairs = analysis.most_confused_pairs(m, NAMES, top=5)
    assert pairs[["true", "predicted", "count"]].values.tolist() == [["b", "c", 3], ["c", "b", 1]]
    assert pairs.iloc[0]["share_of_true"] == pytest.approx(3 / 7)
    sub, names = analysis.confused_submatrix(m, NAMES, top=1)
    assert names == ["b", "c"] and sub.tolist() == [[4, 3], [1, 6]]


def test_error_table_groups_by_pair():
    texts = ["t0", "t1", "t2", "t3", "t4"]
    refs = [1, 1, 1, 2, 0]
    preds = [2, 2, 1, 1, 0]
    conf = [0.4, 0.9, 0.8, 0.5, 0.99]
    table = analysis.error_table(texts, preds, refs, conf, NAMES)
    assert table.index.tolist() == [("b", "c"), ("b", "c"), ("c", "b")]
    assert table["text"].tolist() == ["t1", "t0", "t3"]  # most confident error first within a pair
    assert table["pair_count"].tolist() == [2, 2, 1]


def test_latency_and_cost():
    calls = []

    def predict(batch):  # at least 5 ms per batch
        calls.append(list(batch))
        time.sleep(0.005)

    texts = [f"t{i}" for i in range(10)]
    stats = analysis.measure_latency(predict, texts, batch_size=4)
    assert calls == [texts[:4]] * 2 + [texts[:4], texts[4:8], texts[8:]]  # 2 warm-up calls, then every text once
    assert stats["queries"] == 10 and stats["batch_size"] == 4
    assert stats["ms_per_query"] >= 3 * 5 / 10 and stats["p50_batch_ms"] >= 5  # 3 timed batches of >= 5 ms
    assert stats["queries_per_s"] == pytest.approx(1000 / stats["ms_per_query"])
    # $3.60 per hour = $0.001 per second; at 1 query/s a thousand queries cost $1.
    assert analysis.cost_per_1k(1.0, 3.60) == pytest.approx(1.0)
    assert analysis.cost_per_1k(2.0, 3.60) == pytest.approx(0.5)  # twice the throughput, half the cost
    with pytest.raises(ValueError, match="queries_per_second must be > 0"):
        analysis.cost_per_1k(0, 1.0)
