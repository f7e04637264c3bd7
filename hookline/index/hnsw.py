"""One HNSW graph (usearch) over the vectors of one collection and dimension.

The graph holds a copy that is cheaper than the source of truth: ``i8`` for
``cosine`` (the vectors are unit length, which is what usearch's ``i8``
expects), ``f16`` for ``ip`` and ``l2`` (their vectors are not). Searches
ask it for candidates, which the caller re-ranks exactly against the stored
vectors. Searches share the graph; the one writer takes it alone, in short
batches, so a large job never holds searches up for long.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from usearch.index import Index

#: usearch's metric and stored type per collection metric.
KINDS = {"cosine": ("cos", "i8"), "ip": ("ip", "f16"), "l2": ("l2sq", "f16")}
#: Graph degree (usearch's ``connectivity``): the recall and memory trade-off.
CONNECTIVITY = 16
#: Candidates examined while adding and while searching. Adding with 64
#: instead of 128 gave the same recall@10 re-ranked from 50 candidates (30,000
#: clustered vectors of dimension 384) and added about a third faster.
EXPANSION_ADD = 64
EXPANSION_SEARCH = 128
#: Below this many vectors a search scans them all (usearch's exact search
#: over the graph's copy) instead of walking the graph: as fast at this size,
#: and its candidates do not depend on how the graph was built, so a graph
#: rebuilt after a crash answers exactly as before.
SCAN_BELOW = 10_000
#: Vectors added under one hold of the write lock (searches wait that long).
WRITE_BATCH = 128
#: Threads that add one batch: a job's vectors must be searchable within a
#: second of its end, and one thread adds about 2,000 a second at d=384.
ADD_THREADS = 2
EMPTY = -1


class ReadWriteLock:
    """Many readers or one writer; a waiting writer keeps new readers out."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writing or self._waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            while self._writing or self._readers:
                self._cond.wait()
            self._waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


class Hnsw:
    """An approximate index of 63-bit keys to vectors of one dimension."""

    def __init__(self, dimension: int, metric: str, index: Index | None = None) -> None:
        kind, dtype = KINDS[metric]
        self.dimension = dimension
        self.metric = metric
        self.index = index or Index(
            ndim=dimension, metric=kind, dtype=dtype, connectivity=CONNECTIVITY,
            expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH,
        )
        self.lock = ReadWriteLock()
        #: Vectors removed since the graph was built: their slots are waste.
        self.removed = 0

    def __len__(self) -> int:
        return len(self.index)

    def upsert(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Add ``vectors`` under ``keys`` (uint64), replacing any there."""
        for start in range(0, len(keys), WRITE_BATCH):
            part = keys[start:start + WRITE_BATCH]
            with self.lock.write():
                self._remove(part)
                self.index.add(part, vectors[start:start + WRITE_BATCH], threads=ADD_THREADS)

    def remove(self, keys: np.ndarray) -> int:
        with self.lock.write():
            return self._remove(keys)

    def _remove(self, keys: np.ndarray) -> int:
        present = np.asarray(self.index.contains(keys), dtype=bool).reshape(-1)
        if not present.any():
            return 0
        self.index.remove(keys[present])
        count = int(present.sum())
        self.removed += count
        return count

    def search(self, queries: np.ndarray, count: int) -> np.ndarray:
        """Keys of the ``count`` nearest per query row, as int64; ``EMPTY`` pads."""
        out = np.full((len(queries), count), EMPTY, dtype=np.int64)
        with self.lock.read():
            if len(self.index) == 0:
                return out
            found = self.index.search(queries, count, threads=1,
                                      exact=len(self.index) < SCAN_BELOW)
        if hasattr(found, "counts"):  # a batch
            keys = np.asarray(found.keys).reshape(len(queries), -1)
            counts = np.asarray(found.counts).reshape(-1)
        else:  # one query: only the keys found
            keys = np.asarray(found.keys).reshape(1, -1)
            counts = np.array([keys.shape[1]])
        for row, n in enumerate(counts):
            out[row, :n] = keys[row, :n].astype(np.int64)
        return out

    def save(self, path: Path) -> None:
        with self.lock.read():
            self.index.save(str(path))

    @classmethod
    def load(cls, path: Path, dimension: int, metric: str) -> "Hnsw":
        """Raises ValueError when the file does not hold a usable index."""
        index = Index.restore(str(path))
        if index is None or index.ndim != dimension:
            raise ValueError(f"{path} does not hold an index of dimension {dimension}")
        return cls(dimension, metric, index)
