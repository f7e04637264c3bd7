"""The vectors of a small collection, scanned exactly instead of through a graph.

Adding a vector to an HNSW graph costs about 0.1 ms of CPU (it searches the
graph for the vector's neighbours); scanning ``n`` vectors of dimension ``d``
exactly costs about ``n * d`` multiply-adds per query, which numpy does at a
few thousand million a second. Below ``FLAT_MAX_VALUES`` values (20,000
vectors at d=384, 125,000 at d=64) a query scans in 2-3 ms on one core, and
the vectors cost nothing to add; a graph (``hookline.index.hnsw``) is built
from them once a collection grows past it, and vectors wait here, still
scanned exactly, until they are in the graph.

Vectors are kept as float32 rows, with the key of each row and a map from
key to row; a removed row is filled with the last one, so no space is lost.
"""
from __future__ import annotations

import io

import numpy as np

#: Values (vectors x dimension) up to which a collection is scanned exactly.
FLAT_MAX_VALUES = 8_000_000
#: Rows allocated at first; the arrays double when full.
INITIAL_ROWS = 1024


class Flat:
    """Keys (uint64) and float32 vectors of one dimension, searched exactly."""

    def __init__(self, dimension: int, metric: str) -> None:
        self.dimension = dimension
        self.metric = metric
        self.keys = np.zeros(0, dtype=np.uint64)
        self.vectors = np.zeros((0, dimension), dtype=np.float32)
        self.size = 0
        self.rows: dict[int, int] = {}

    def __len__(self) -> int:
        return self.size

    def upsert(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Add ``vectors`` under ``keys``, replacing any there (the last of a repeated key wins).

        The rows are written with one numpy assignment: a Python step per
        vector was the index process's largest cost per job (16 vectors).
        """
        numbers = keys.tolist()
        vectors = np.asarray(vectors, dtype=np.float32)
        last = dict(zip(numbers, range(len(numbers))))
        if len(last) != len(numbers):
            order = sorted(last.values())
            numbers, vectors = [numbers[i] for i in order], vectors[order]
        rows = self.rows
        new = [key for key in numbers if key not in rows]
        if new:
            self._append(new)
        self.vectors[np.fromiter(map(rows.__getitem__, numbers), dtype=np.int64,
                                 count=len(numbers))] = vectors

    def _append(self, keys: list[int]) -> None:
        """Rows for ``keys`` (none of them here yet), after the last."""
        end = self.size + len(keys)
        if end > len(self.keys):
            capacity = max(INITIAL_ROWS, 2 * self.size)
            while capacity < end:
                capacity *= 2
            self._resize(capacity)
        self.keys[self.size:end] = keys
        self.rows.update(zip(keys, range(self.size, end)))
        self.size = end

    def remove(self, keys: np.ndarray) -> int:
        removed = 0
        for key in keys.tolist():
            row = self.rows.pop(key, None)
            if row is None:
                continue
            last = self.size - 1
            if row != last:
                moved = int(self.keys[last])
                self.keys[row] = moved
                self.vectors[row] = self.vectors[last]
                self.rows[moved] = row
            self.size -= 1
            removed += 1
        if len(self.keys) > INITIAL_ROWS and self.size < len(self.keys) // 4:
            # Emptied (a graph took the vectors, or they were deleted): the
            # arrays give back what they no longer need.
            self._resize(max(INITIAL_ROWS, 2 * self.size))
        return removed

    def _resize(self, capacity: int) -> None:
        keys = np.zeros(capacity, dtype=np.uint64)
        vectors = np.zeros((capacity, self.dimension), dtype=np.float32)
        keys[:self.size] = self.keys[:self.size]
        vectors[:self.size] = self.vectors[:self.size]
        self.keys, self.vectors = keys, vectors

    def head(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the first ``count`` keys and their vectors."""
        taken = min(count, self.size)
        return self.keys[:taken].copy(), self.vectors[:taken].copy()

    def contents(self) -> tuple[np.ndarray, np.ndarray]:
        """The keys and vectors held (views, valid until the next change)."""
        return self.keys[:self.size], self.vectors[:self.size]

    def search(self, queries: np.ndarray, count: int, out: np.ndarray) -> None:
        """Write the keys of the ``count`` best rows per query into ``out`` (int64)."""
        keys, vectors = self.contents()
        if not len(keys):
            return
        if self.metric == "l2":
            scores = (2 * (queries @ vectors.T)
                      - np.einsum("ij,ij->i", vectors, vectors)[None, :])
        else:
            scores = queries @ vectors.T
        take = min(count, len(keys))
        for row, values in enumerate(scores):
            best = np.argpartition(-values, take - 1)[:take] if take < len(keys) \
                else np.arange(len(keys))
            best = best[np.argsort(-values[best], kind="stable")]
            out[row, :take] = keys[best].astype(np.int64)

    def to_bytes(self) -> bytes:
        keys, vectors = self.contents()
        buffer = io.BytesIO()
        np.savez(buffer, keys=keys, vectors=vectors)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, raw: bytes, dimension: int, metric: str) -> "Flat":
        """Raises ValueError when ``raw`` does not hold vectors of ``dimension``."""
        with np.load(io.BytesIO(raw), allow_pickle=False) as saved:
            keys, vectors = saved["keys"], saved["vectors"]
        if vectors.ndim != 2 or vectors.shape[1] != dimension or len(keys) != len(vectors):
            raise ValueError(f"saved vectors are not of dimension {dimension}")
        flat = cls(dimension, metric)
        flat.upsert(keys.astype(np.uint64), vectors)
        return flat
