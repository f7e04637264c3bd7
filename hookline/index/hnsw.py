"""The index of one collection and dimension: exact while small, then an HNSW graph (usearch).

Every vector first goes into ``pending``, a ``hookline.index.flat.Flat``
scanned exactly, which costs nothing to add to: it is searchable the moment
the index has read it from the change stream. While the collection holds up
to ``flat.FLAT_MAX_VALUES`` values that is all there is. Past that a graph
is made, and a thread of its own (the drainer) moves pending vectors into it
in short batches, so that adding to the graph (about 0.1 ms of CPU per
vector at d=384) never stands between a job's end and a search that finds
its vectors; a search scans what is still pending and walks the graph for
the rest. A key is in one of the two, never both.

The graph holds a copy that is cheaper than the source of truth: ``i8`` for
``cosine`` (the vectors are unit length, which is what usearch's ``i8``
expects), ``f16`` for ``ip`` and ``l2`` (their vectors are not). Searches
ask it for candidates, which the caller re-ranks exactly against the stored
vectors. Searches share the index; a change takes it alone, briefly.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
from usearch.index import Index

from hookline.index.flat import FLAT_MAX_VALUES, Flat
from hookline.index.priority import lower_priority
from hookline.index.rwlock import ReadWriteLock

#: usearch's metric and stored type per collection metric.
KINDS = {"cosine": ("cos", "i8"), "ip": ("ip", "f16"), "l2": ("l2sq", "f16")}
#: Graph degree (usearch's ``connectivity``) and candidates examined while
#: adding: the recall, memory and adding-cost trade-off. Measured on 60,000
#: clustered vectors of dimension 384 (``i8``, one thread, recall@10 re-ranked
#: from 50 candidates): 16 and 64 cost 154-173 us of CPU per vector added,
#: 848 B per vector, recall 1.000; 12 and 48 cost 87 us, 568 B, recall 0.999;
#: 12 and 32 cost 64 us but recall falls to 0.971. Adding is the index's
#: heavy work, and what decides how long a vector waits to reach the graph.
CONNECTIVITY = 12
EXPANSION_ADD = 48
#: Candidates examined per search. On 100,000 clustered vectors of d=384
#: (50 candidates re-ranked, one thread): 128 took 259 us and recall@10 was
#: 0.990; 96 took 189 us and 0.984; 64 took 149 us and fell to 0.962.
EXPANSION_SEARCH = 96
#: Below this many vectors a search scans them all (usearch's exact search
#: over the graph's copy) instead of walking the graph: as fast at this size,
#: and its candidates do not depend on how the graph was built, so a graph
#: rebuilt after a crash answers exactly as before.
SCAN_BELOW = 10_000
#: Values (vectors x dimension) moved into the graph under one hold of the
#: write lock, which searches and new changes wait for: 128 vectors at d=64,
#: 21 at d=384 (about 2 ms of CPU), never fewer than 8.
DRAIN_BATCH_VALUES = 8192
#: Pending values past which a second drainer, at the follower's priority,
#: helps with two threads: one background thread leaves the host's other
#: core to jobs and searches while it keeps up (a graph's first batch, a
#: whole small collection, goes in at its pace).
DRAIN_FAST_VALUES = 3 * FLAT_MAX_VALUES // 2
#: Pending values past which a new change waits for the drainer (and
#: searches score what the index has not read themselves): memory stays
#: bounded, and so does an exact scan (about 10 ms at the limit). Jobs of
#: 1,000 vectors of dimension 384 came in at about 5,500 vectors/s and went
#: into the graph at about 4,000: twice ``FLAT_MAX_VALUES`` held the
#: changes up for seconds within a run of 100,000.
PENDING_MAX_VALUES = 4 * FLAT_MAX_VALUES
#: Added to the drainer's nice value. What it does can wait (the vectors are
#: searchable already), so it yields the CPU, to the job worker too (the
#: Procfile runs that at nice 5): at nice 0 it took a core from the jobs
#: while a collection's first graph took its 8 million values, and an open
#: loop of 300 jobs/s saw p99 257 ms from submit to webhook (p50 3.7 ms).
DRAIN_NICE = 10
EMPTY = -1
#: Suffix of the file beside a saved graph that holds its pending vectors.
PENDING_SUFFIX = ".pending"


class Hnsw:
    """An index of 63-bit keys to vectors of one dimension: exact, then approximate."""

    def __init__(self, dimension: int, metric: str, index: Index | None = None,
                 pending: Flat | None = None) -> None:
        self.dimension = dimension
        self.metric = metric
        #: The graph, once the collection has grown past ``FLAT_MAX_VALUES``.
        self.index = index
        #: Vectors not in the graph (all of them until there is one).
        self.pending = pending if pending is not None else Flat(dimension, metric)
        self.lock = ReadWriteLock()
        #: Vectors removed since the graph was made: their slots are waste.
        self.removed = 0
        #: Wakes the drainer, and whoever waits for it to make room or finish.
        self._drained = threading.Condition()
        self._drainer: threading.Thread | None = None
        self._closed = False
        if index is not None and len(self.pending):
            self._remove_from_graph(self.pending.contents()[0])
            self._start_drainer()

    def _new_index(self) -> Index:
        kind, dtype = KINDS[self.metric]
        return Index(ndim=self.dimension, metric=kind, dtype=dtype, connectivity=CONNECTIVITY,
                     expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH)

    @property
    def exact(self) -> bool:
        """Whether every vector is scanned exactly (no graph yet)."""
        return self.index is None

    def __len__(self) -> int:
        with self.lock.read():  # the drainer moves vectors from one part to the other
            return len(self.pending) + (len(self.index) if self.index is not None else 0)

    def upsert(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Add ``vectors`` under ``keys`` (uint64), replacing any there.

        Waits while the drainer is far behind (``PENDING_MAX_VALUES``).
        """
        if self.index is not None:
            with self._drained:
                self._drained.wait_for(lambda: self._closed or len(self.pending)
                                       * self.dimension < PENDING_MAX_VALUES)
        with self.lock.write():
            if self.index is not None:
                self._remove_from_graph(keys)
            self.pending.upsert(keys, vectors)
            if self.index is None and len(self.pending) * self.dimension > FLAT_MAX_VALUES:
                self.index = self._new_index()
        if self.index is not None:
            self._start_drainer()
            with self._drained:
                self._drained.notify_all()

    def remove(self, keys: np.ndarray) -> int:
        with self.lock.write():
            removed = self.pending.remove(keys)
            if self.index is not None:
                removed += self._remove_from_graph(keys)
            return removed

    def _remove_from_graph(self, keys: np.ndarray) -> int:
        """Called with the write lock held (or before anyone else sees the graph)."""
        assert self.index is not None
        if not len(keys) or not len(self.index):
            return 0
        present = np.asarray(self.index.contains(keys), dtype=bool).reshape(-1)
        if not present.any():
            return 0
        self.index.remove(keys[present])
        count = int(present.sum())
        self.removed += count
        return count

    # -- the drainer ---------------------------------------------------------

    def _start_drainer(self) -> None:
        """Start the two drainers: one in the background, one for when it is
        far behind. Called from the follower, whose priority they inherit."""
        if self._drainer is None and not self._closed:
            self._drainer = threading.Thread(target=self._drain, args=(False,),
                                             name="graph-drain", daemon=True)
            self._drainer.start()
            threading.Thread(target=self._drain, args=(True,), name="graph-drain-behind",
                             daemon=True).start()

    def _behind(self) -> bool:
        return len(self.pending) * self.dimension > DRAIN_FAST_VALUES

    def _drain(self, behind: bool) -> None:
        """Move pending vectors into the graph, a batch per hold of the write lock.

        The background drainer lowers its priority (``DRAIN_NICE``) and adds
        with one thread; the other works only while the buffer is far behind
        (``DRAIN_FAST_VALUES``), at the follower's priority, with two threads
        on batches four times as large, so that a burst of jobs is not left to
        a thread that yields the CPU to them. (A thread that lowered its
        priority cannot raise it again without privileges.)
        """
        if not behind:
            lower_priority(DRAIN_NICE, "graph-drain")
        threads = 2 if behind else 1
        batch = max(8, (4 if behind else 1) * DRAIN_BATCH_VALUES // self.dimension)
        while True:
            with self._drained:
                self._drained.wait_for(lambda: self._closed or (
                    self._behind() if behind else len(self.pending) > 0))
                if self._closed:
                    return
            with self.lock.write(polite=True):
                assert self.index is not None
                keys, vectors = self.pending.head(batch)
                if len(keys):
                    self.index.add(keys, vectors, threads=threads)
                    self.pending.remove(keys)
            with self._drained:
                self._drained.notify_all()

    def settle(self) -> None:
        """Wait until every pending vector is in the graph, if there is one
        (rebuilds, saves at shutdown and tests wait for it)."""
        if self.index is None:
            return
        with self._drained:
            self._drained.wait_for(lambda: self._closed or not len(self.pending))

    def close(self) -> None:
        """Stop the drainer: the index is no longer used."""
        with self._drained:
            self._closed = True
            self._drained.notify_all()

    # -- searches ------------------------------------------------------------

    def search(self, queries: np.ndarray, count: int) -> np.ndarray:
        """Candidate keys per query row, as int64, best first within each part.

        ``count`` from the pending vectors, then (with a graph) ``count`` from
        it; ``EMPTY`` pads.
        """
        width = count if self.index is None else 2 * count
        out = np.full((len(queries), width), EMPTY, dtype=np.int64)
        with self.lock.read():
            self.pending.search(queries, count, out[:, :count])
            if self.index is None or len(self.index) == 0:
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
            out[row, count:count + n] = keys[row, :n].astype(np.int64)
        return out

    # -- files ---------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write the index to ``path``, and a graph's pending vectors beside it
        (``pending_path``; removed when there are none).

        The graph goes to its file under the read lock (changes wait for the
        write: about 0.1 s per 100,000 vectors); a copy in memory first would
        double its memory while saving (measured: +500 B per vector at
        d=384, the index's whole graph). The pending vectors, at most
        ``PENDING_MAX_VALUES``, are copied and written after.
        """
        side = pending_path(path)
        with self.lock.read():
            graph = self.index
            if graph is not None:
                graph.save(str(path))
            pending = self.pending.to_bytes() if graph is None or len(self.pending) else None
        if graph is None:
            assert pending is not None
            path.write_bytes(pending)
            side.unlink(missing_ok=True)
        elif pending is not None:
            side.write_bytes(pending)
        else:
            side.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: Path, dimension: int, metric: str) -> "Hnsw":
        """Raises ValueError when the file does not hold a usable index."""
        with open(path, "rb") as handle:
            saved_flat = handle.read(2) == b"PK"  # numpy's .npz, a zip file
        if saved_flat:
            return cls(dimension, metric,
                       pending=Flat.from_bytes(path.read_bytes(), dimension, metric))
        index = Index.restore(str(path))
        if index is None or index.ndim != dimension:
            raise ValueError(f"{path} does not hold an index of dimension {dimension}")
        side = pending_path(path)
        pending = (Flat.from_bytes(side.read_bytes(), dimension, metric)
                   if side.exists() else None)
        return cls(dimension, metric, index, pending)


def pending_path(path: Path) -> Path:
    return path.with_name(path.name + PENDING_SUFFIX)
