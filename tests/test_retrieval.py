"""Retrieval: chunking, search and recall@k, with a tiny fake embedder plus one check on the bundled MiniLM."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import knowledge, retrieval
from helpers.models import load_embedder


class BagOfWords:
    """A stand-in embedder: counts of a fixed vocabulary, enough to test the search logic exactly."""

    vocab = ["card", "fee", "transfer", "pin", "cash"]

    def encode(self, texts, normalize_embeddings=True, convert_to_numpy=True, batch_size=32):
        rows = np.array([[t.lower().count(w) for w in self.vocab] for t in texts], dtype=np.float32) + 1e-3
        return rows / np.linalg.norm(rows, axis=1, keepdims=True) if normalize_embeddings else rows


ARTICLES = [
    {"id": "A", "title": "Cards", "intents": [], "text": "card card card"},
    {"id": "B", "title": "Fees", "intents": [], "text": "fee fee fee"},
    {"id": "C", "title": "Transfers", "intents": [], "text": "transfer " * 30},
]


def test_chunk_words():
    text = " ".join(str(i) for i in range(25))
    chunks = retrieval.chunk_words(text, max_words=10, overlap=2)
    assert chunks[0].split() == [str(i) for i in range(10)]
    assert chunks[1].split()[:2] == ["8", "9"]  # consecutive chunks share the overlap
    assert chunks[-1].split()[-1] == "24"
    assert retrieval.chunk_words("short text", max_words=10, overlap=2) == ["short text"]
    with pytest.raises(ValueError, match="overlap < max_words"):
        retrieval.chunk_words(text, max_words=5, overlap=5)


def test_long_articles_are_chunked_and_counted_once():
    index = retrieval.build_index(ARTICLES, BagOfWords(), max_words=10, overlap=2)
    assert index.article_ids.count("C") > 1 and len(index) == len(index.chunks)
    hits = retrieval.search(index, ["a transfer"], k=3)[0]
    assert hits[0][0] == "C" and sorted(h[0] for h in hits) == ["A", "B", "C"]  # distinct articles


def test_search_ranks_by_cosine():
    index = retrieval.build_index(ARTICLES, BagOfWords())
    results = retrieval.search(index, ["what fee", "my card"], k=2)
    assert [r[0][0] for r in results] == ["B", "A"]
    assert results[0][0][1] >= results[0][1][1]
    with pytest.raises(ValueError, match="k must be at least 1"):
        retrieval.search(index, ["x"], k=0)


def test_recall_at_k():
    results = [[("A", 1.0, ""), ("B", 0.5, "")], [("B", 1.0, ""), ("C", 0.5, "")]]
    assert retrieval.recall_at_k(results, ["A", "C"], 1) == 0.5
    assert retrieval.recall_at_k(results, ["A", "C"], 2) == 1.0
    assert retrieval.recall_curve(results, ["A", "C"], [1, 2]) == {1: 0.5, 2: 1.0}
    with pytest.raises(ValueError, match="one per query"):
        retrieval.recall_at_k(results, ["A"], 1)


def test_minilm_finds_the_lost_card_article():
    articles = knowledge.load_articles()
    index = retrieval.build_index(articles, load_embedder(device="cpu"))
    hits = retrieval.search(index, ["My card was stolen, who do I call?"], k=3)[0]
    assert "A03" in [h[0] for h in hits]
