"""The index of one collection and dimension: exact while small, then an HNSW graph (usearch).

While the collection holds up to ``flat.FLAT_MAX_VALUES`` values its vectors
are scanned exactly (``hookline.index.flat``), which costs nothing to add to;
past that, a graph is built from them in one go and takes every later add.

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

from hookline.index.flat import FLAT_MAX_VALUES, Flat

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
    """An index of 63-bit keys to vectors of one dimension: exact, then approximate."""

    def __init__(self, dimension: int, metric: str, index: Index | None = None,
                 flat: Flat | None = None) -> None:
        self.dimension = dimension
        self.metric = metric
        #: The graph, once built; until then ``flat`` holds the vectors.
        self.index = index
        self.flat: Flat | None = None
        if index is None:
            self.flat = flat if flat is not None else Flat(dimension, metric)
        self.lock = ReadWriteLock()
        #: Vectors removed since the graph was built: their slots are waste.
        self.removed = 0
        #: While a graph is built from the flat copy in the background: the
        #: thread, the keys changed since it began, and the graph once done.
        self._builder: threading.Thread | None = None
        self._changed: set[int] = set()
        self._built: Index | None = None

    def _new_index(self) -> Index:
        kind, dtype = KINDS[self.metric]
        return Index(ndim=self.dimension, metric=kind, dtype=dtype, connectivity=CONNECTIVITY,
                     expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH)

    @property
    def exact(self) -> bool:
        """Whether the vectors are still scanned exactly (no graph yet)."""
        return self.index is None

    def __len__(self) -> int:
        return len(self.index) if self.index is not None else len(self.flat or ())

    def upsert(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Add ``vectors`` under ``keys`` (uint64), replacing any there."""
        if self.flat is not None:
            with self.lock.write():
                self.flat.upsert(keys, vectors)
            if self._builder is not None:
                self._changed.update(keys.tolist())
                self._adopt_if_built()
            elif len(self.flat) * self.dimension > FLAT_MAX_VALUES:
                self._start_build()
            return
        assert self.index is not None
        for start in range(0, len(keys), WRITE_BATCH):
            part = keys[start:start + WRITE_BATCH]
            with self.lock.write():
                self._remove(part)
                self.index.add(part, vectors[start:start + WRITE_BATCH], threads=ADD_THREADS)

    def _start_build(self) -> None:
        """Build a graph of the flat copy's vectors in the background.

        Building a graph of 20,000 vectors of dimension 384 takes seconds;
        done by the writer itself, no change would be applied meanwhile and
        every search would score the backlog itself. The writer goes on
        applying changes to the flat copy, which searches go on scanning,
        and takes the graph up once it is built (``_adopt_if_built``).
        """
        assert self.flat is not None
        keys, vectors = (part.copy() for part in self.flat.contents())
        self._changed = set()

        def build() -> None:
            index = self._new_index()
            index.add(keys, vectors, threads=ADD_THREADS)
            self._built = index

        self._builder = threading.Thread(target=build, name="graph-build", daemon=True)
        self._builder.start()

    def _adopt_if_built(self, wait: bool = False) -> None:
        """Swap the built graph in for the flat copy, with the changes made
        since the build began. Only the writer calls this."""
        if self._builder is None:
            return
        if wait:
            self._builder.join()
        if self._built is None or self.flat is None:
            return
        index, flat = self._built, self.flat
        changed = np.fromiter(self._changed, dtype=np.uint64, count=len(self._changed))
        if len(changed):
            present = np.asarray(index.contains(changed), dtype=bool).reshape(-1)
            if present.any():
                index.remove(changed[present])
                self.removed += int(present.sum())
            still = np.array([k for k in changed.tolist() if k in flat.rows], dtype=np.uint64)
            if len(still):
                index.add(still, flat.vectors[[flat.rows[k] for k in still.tolist()]],
                          threads=ADD_THREADS)
        with self.lock.write():
            self.index, self.flat = index, None
        self._builder, self._built, self._changed = None, None, set()

    def settle(self) -> None:
        """Finish a graph being built, if one is (rebuilds and tests wait for it)."""
        self._adopt_if_built(wait=True)

    def remove(self, keys: np.ndarray) -> int:
        with self.lock.write():
            if self.flat is not None:
                removed = self.flat.remove(keys)
                if self._builder is not None:
                    self._changed.update(keys.tolist())
                return removed
            return self._remove(keys)

    def _remove(self, keys: np.ndarray) -> int:
        assert self.index is not None
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
            if self.flat is not None:
                self.flat.search(queries, count, out)
                return out
            assert self.index is not None
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
            if self.flat is not None:
                path.write_bytes(self.flat.to_bytes())
            else:
                assert self.index is not None
                self.index.save(str(path))

    @classmethod
    def load(cls, path: Path, dimension: int, metric: str) -> "Hnsw":
        """Raises ValueError when the file does not hold a usable index."""
        with open(path, "rb") as handle:
            saved_flat = handle.read(2) == b"PK"  # numpy's .npz, a zip file
        if saved_flat:
            return cls(dimension, metric, flat=Flat.from_bytes(path.read_bytes(), dimension, metric))
        index = Index.restore(str(path))
        if index is None or index.ndim != dimension:
            raise ValueError(f"{path} does not hold an index of dimension {dimension}")
        return cls(dimension, metric, index)
