"""Retrieval for RAG: embed policy articles (in chunks), search by meaning, measure recall@k.

The embedder is any sentence-transformers model; the workbook uses the bundled
all-MiniLM-L6-v2 (``helpers.models.load_embedder()``), which reads at most 256
word pieces, so long articles are split into overlapping chunks first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from helpers.knowledge import Article, article_text


def chunk_words(text: str, max_words: int = 120, overlap: int = 20) -> list[str]:
    """Split ``text`` into pieces of at most ``max_words`` words, consecutive pieces sharing ``overlap`` words."""
    if max_words <= 0 or not 0 <= overlap < max_words:
        raise ValueError(f"Need max_words > 0 and 0 <= overlap < max_words, got {max_words} and {overlap}.")
    words = text.split()
    if len(words) <= max_words:
        return [text]
    step = max_words - overlap
    return [" ".join(words[i : i + max_words]) for i in range(0, len(words) - overlap, step)]


@dataclass
class Index:
    """Chunk embeddings (N, D), unit length, with the article each chunk came from."""

    embedder: object
    article_ids: list[str]
    chunks: list[str]
    vectors: np.ndarray  # (N, D), rows normalised so a dot product is the cosine similarity

    def __len__(self) -> int:
        return len(self.chunks)


def build_index(
    articles: Sequence[Article], embedder, max_words: int = 120, overlap: int = 20, batch_size: int = 32
) -> Index:
    """Embed every article (title + text), chunked to ``max_words``, into a searchable Index."""
    ids, chunks = [], []
    for article in articles:
        for piece in chunk_words(article_text(article), max_words, overlap):
            ids.append(article["id"])
            chunks.append(piece)
    vectors = embedder.encode(chunks, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    return Index(embedder, ids, chunks, np.asarray(vectors, dtype=np.float32))


def search(index: Index, queries: Sequence[str], k: int = 3) -> list[list[tuple[str, float, str]]]:
    """For each query, the top ``k`` distinct articles as (article_id, cosine score, best chunk), best first."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}.")
    q = index.embedder.encode(list(queries), normalize_embeddings=True, convert_to_numpy=True)
    scores = np.asarray(q, dtype=np.float32) @ index.vectors.T  # (Q, N) cosine similarities
    results = []
    for row in scores:
        hits, seen = [], set()
        for j in np.argsort(-row):
            if index.article_ids[j] in seen:
                continue  # several chunks of one article count once
            seen.add(index.article_ids[j])
            hits.append((index.article_ids[j], float(row[j]), index.chunks[j]))
            if len(hits) == k:
                break
        results.append(hits)
    return results


def recall_at_k(results: Sequence[Sequence[tuple]], gold_ids: Sequence[str], k: int) -> float:
    """Share of queries whose gold article is among their first ``k`` results (0..1)."""
    if len(results) != len(gold_ids):
        raise ValueError(f"{len(results)} result lists but {len(gold_ids)} gold ids; pass one per query.")
    if not gold_ids:
        return 0.0
    hits = sum(gold in [r[0] for r in hits[:k]] for hits, gold in zip(results, gold_ids))
    return hits / len(gold_ids)


def recall_curve(results: Sequence[Sequence[tuple]], gold_ids: Sequence[str], ks: Sequence[int]) -> dict[int, float]:
    """recall@k for each k in ``ks`` (results must hold at least max(ks) hits per query)."""
    return {k: recall_at_k(results, gold_ids, k) for k in ks}
