"""Search: candidates from the index, re-ranked exactly against the stored vectors.

The index's graphs hold a cheaper copy (``i8`` or ``f16``); every answer is
scored again here against the source of truth, so a score is exact for the
stored vector and a vector deleted from Redis is never returned, whatever
the index still holds.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hookline.index.protocol import IndexClient, IndexUnavailable
from hookline.vector_collections import Collection
from hookline.vectorrecords import Record, decode, vectors_of
from hookline.vectorstore import VectorStore

#: Candidates asked of the index per query (at least): recall@10 of an
#: ``i8`` graph is about 0.8 alone, and 0.95 or more re-ranked from 50.
RERANK_CANDIDATES = 50
#: Candidates per result asked for a large ``k``.
RERANK_FACTOR = 2
#: Most vectors a search scores itself beside the index's candidates (those
#: written after the index's position); further behind, it answers 503.
MAX_TAIL = 20_000


@dataclass(frozen=True)
class Hit:
    id: str
    score: float
    task_id: str

    def to_public(self) -> dict[str, object]:
        return {"id": self.id, "score": self.score, "task_id": self.task_id}


class QueryError(ValueError):
    """A query cannot be run against this collection (its message says why)."""


def scores_many(metric: str, vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Higher is better (cosine similarity, inner product, or negated squared
    distance) of every row of ``vectors`` (n, d) for every query (q, d): (n, q)."""
    if metric == "l2":
        return (2 * (vectors @ queries.T) - np.einsum("ij,ij->i", vectors, vectors)[:, None]
                - np.einsum("ij,ij->i", queries, queries)[None, :])
    return vectors @ queries.T


def prepare(collection: Collection, queries: np.ndarray) -> np.ndarray:
    """The queries as float32, normalised for ``cosine``.

    Raises:
        QueryError: wrong dimension, or a zero vector for ``cosine``.
    """
    dimension = queries.shape[1]
    if not collection.accepts(dimension):
        raise QueryError(f"The collection has dimension {collection.dimension}; "
                         f"the query has {dimension}.")
    out = queries.astype(np.float32)
    if collection.metric == "cosine":
        norms = np.linalg.norm(out, axis=1)
        if not (norms > 0).all():
            raise QueryError("A zero vector has no direction to compare by cosine.")
        out /= norms[:, None]
    return out


def top(metric: str, records: list[Record], query: np.ndarray, k: int) -> list[Hit]:
    """The ``k`` best of ``records`` for ``query``, best first."""
    if not records:
        return []
    values = scores_many(metric, np.stack([r.vector for r in records]), query[None, :])[:, 0]
    order = np.argsort(-values, kind="stable")[:k]
    return [Hit(records[i].id, float(values[i]), records[i].task_id) for i in order]


class Searcher:
    """Answers searches of one collection at a time."""

    def __init__(self, store: VectorStore, index: IndexClient) -> None:
        self.store = store
        self.index = index

    def search(self, collection: Collection, queries: np.ndarray, k: int,
               task_id: str | None = None, seq: int | None = None) -> list[list[Hit]]:
        """The ``k`` best vectors per query row, best first.

        ``seq`` is the change number read when the search began (read here
        when not given): every change up to it is in the answer.

        Raises:
            QueryError: the queries do not fit the collection.
            IndexUnavailable: the index process cannot answer now.
        """
        queries = prepare(collection, queries)
        dimension = queries.shape[1]
        if task_id is not None:
            # A task's vectors are few enough to compare with every one.
            own = [r for r in self.store.task_records(collection, task_id)
                   if r.dimension == dimension]
            return [top(collection.metric, own, q, k) for q in queries]
        count = max(RERANK_CANDIDATES, RERANK_FACTOR * k)
        seq = self.store.seq() if seq is None else seq
        keys, behind = self.index.search(collection.tenant, collection.name, queries, count, seq)
        # Vectors written after the index's position are candidates for every query.
        tail = self.store.written_after(collection, behind) if behind is not None else []
        if len(tail) > MAX_TAIL:
            raise IndexUnavailable(f"the index is {len(tail)} vectors behind; retry shortly")
        unique = np.unique(np.concatenate([keys[keys >= 0], np.asarray(tail, dtype=np.int64)]))
        raws = self.store.fetch_raw(collection, unique.tolist())
        present = [i for i, raw in enumerate(raws) if raw is not None]
        stored = [raws[i] for i in present]
        matrix, fits = vectors_of(stored, collection.dtype, dimension)  # type: ignore[arg-type]
        # Row of ``matrix`` per key in ``unique`` (-1: deleted, or another
        # dimension), and the record of each row
        rows = np.full(len(unique), -1, dtype=np.int64)
        rows[np.asarray(present, dtype=np.int64)[fits]] = np.arange(len(matrix))
        record_of = np.flatnonzero(fits)
        all_scores = scores_many(collection.metric, matrix, queries)
        tail_rows = rows[np.searchsorted(unique, np.asarray(tail, dtype=np.int64))] if tail else None
        results = []
        for number, row in enumerate(keys):
            mine = rows[np.searchsorted(unique, row[row >= 0])]
            if tail_rows is not None:
                mine = np.concatenate([mine, tail_rows])
            mine = np.unique(mine[mine >= 0])
            best = mine[np.argsort(-all_scores[mine, number], kind="stable")[:k]]
            hits = []
            for at in best.tolist():
                record = decode(stored[int(record_of[at])], collection.dtype)  # type: ignore[arg-type]
                hits.append(Hit(record.id, float(all_scores[at, number]), record.task_id))
            results.append(hits)
        return results
