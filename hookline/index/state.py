"""The index process's state: one HNSW per collection and dimension, kept in
step with the change stream ``hl:vlog``.

Only the follower thread changes it (one writer for every collection);
search threads read it. ``applied`` is the number (``hl:vseq``) of the last
change applied: a search that read number n waits until ``applied >= n``.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
import redis

from hookline import vector_collections as colls
from hookline.index.hnsw import Hnsw
from hookline.vector_collections import Collection
from hookline.vectorrecords import by_dimension

log = logging.getLogger("hookline.index")

#: Records read per HSCAN step while rebuilding.
SCAN_BATCH = 1000
#: Fraction of removed slots in a graph at which it is rebuilt to free them.
COMPACT_AT = 0.5
#: Smallest graph worth compacting, in vectors.
COMPACT_MIN = 1000

IndexKey = tuple[str, str, int]


class IndexState:
    """Every HNSW of this host, and how far along the change stream they are."""

    def __init__(self, client: redis.Redis, *, on_change: Any = None) -> None:
        self.redis = client
        self.graphs: dict[IndexKey, Hnsw] = {}
        self.described: dict[tuple[str, str], Collection] = {}
        self.position = "0-0"
        self.applied = 0
        self.ready = False
        self.cond = threading.Condition()
        self.dirty = False
        self._on_change = on_change or (lambda state: None)

    # -- searches ------------------------------------------------------------

    def wait_for(self, seq: int, timeout: float) -> bool:
        """Wait until change ``seq`` is applied; ``False`` after ``timeout`` seconds."""
        with self.cond:
            return self.cond.wait_for(lambda: self.ready and self.applied >= seq, timeout)

    def graph(self, tenant: str, name: str, dimension: int) -> Hnsw | None:
        return self.graphs.get((tenant, name, dimension))

    def vectors(self) -> int:
        return sum(len(g) for g in list(self.graphs.values()))

    def pending(self) -> int:
        """Vectors waiting for a graph (scanned exactly meanwhile)."""
        return sum(len(g.pending) for g in list(self.graphs.values()) if not g.exact)

    # -- the writer ----------------------------------------------------------

    def mark(self, position: str, seq: int) -> None:
        with self.cond:
            self.position = position
            self.applied = max(self.applied, seq)
            self.ready = True
            self.cond.notify_all()

    def describe(self, tenant: str, name: str) -> Collection | None:
        found = self.described.get((tenant, name))
        if found is None:
            found = colls.Collections(self.redis).get(tenant, name)
            if found is not None:
                self.described[(tenant, name)] = found
        return found

    def rebuild(self) -> None:
        """Build every graph afresh from the source of truth.

        The stream's position is read first: every change after it is
        applied again afterwards, which is harmless (upserts and deletes are
        idempotent), so a scan that runs beside writers misses nothing.
        """
        position, seq = last_entry(self.redis)
        started = time.monotonic()
        graphs: dict[IndexKey, Hnsw] = {}
        described: dict[tuple[str, str], Collection] = {}
        for member in sorted(self.redis.smembers(colls.REGISTRY_KEY)):
            tenant, _, name = member.decode().partition("/")
            collection = colls.Collections(self.redis).get(tenant, name)
            if collection is not None:
                described[(tenant, name)] = collection
                graphs.update(self._build(collection, None))
        # Swapped in whole: searches meanwhile use the graphs as they were.
        old, self.graphs, self.described = self.graphs, graphs, described
        for graph in old.values():
            graph.close()
        self.dirty = True
        self.mark(position, seq)
        log.info("index rebuilt from Redis", extra={
            "vectors": self.vectors(), "duration_ms": round((time.monotonic() - started) * 1000)})
        self._on_change(self)

    def rebuild_collection(self, tenant: str, name: str, only: int | None = None) -> None:
        """Build the graphs of one collection (or of one of its dimensions) afresh."""
        collection = colls.Collections(self.redis).get(tenant, name)
        fresh = self._build(collection, only) if collection is not None else {}
        for key in [k for k in self.graphs if k[:2] == (tenant, name)]:
            if only is None or key[2] == only:
                self.graphs.pop(key).close()
        self.graphs.update(fresh)
        if collection is None:
            self.described.pop((tenant, name), None)
        else:
            self.described[(tenant, name)] = collection

    def _build(self, collection: Collection, only: int | None) -> dict[IndexKey, Hnsw]:
        fresh: dict[IndexKey, Hnsw] = {}
        records = colls.records_key(collection.tenant, collection.name)
        cursor = 0
        while True:
            cursor, raw = self.redis.hscan(records, cursor, count=SCAN_BATCH)  # type: ignore[misc]
            if raw:
                self._add(collection, list(raw.keys()), list(raw.values()), fresh, only)
            if cursor == 0:
                for graph in fresh.values():
                    graph.settle()
                return fresh

    def apply_many(self, entries: list[tuple[str, dict[bytes, bytes]]]) -> None:
        """Apply changes from the stream, in order.

        Consecutive upserts are gathered per collection: one read of their
        records and one add to each graph, instead of one per job. Under load
        a read of the stream brings dozens of jobs of a few vectors each, and
        each add to a graph has a fixed cost besides its vectors'.
        """
        pending: dict[tuple[str, str], dict[bytes, None]] = {}
        seq = 0
        for _, fields in entries:
            op = fields[b"op"]
            where = (fields[b"t"].decode(), fields[b"c"].decode())
            raw_keys = fields.get(b"k", b"")
            keys = [raw_keys[i:i + 8] for i in range(0, len(raw_keys), 8)]
            seq = max(seq, int(fields.get(b"s", b"0")))
            if op == b"u":
                gathered = pending.setdefault(where, {})
                for key in keys:
                    gathered.pop(key, None)  # the latest write of a key comes last
                    gathered[key] = None
                continue
            self._upsert_pending(pending)
            if op == b"x":
                for graph_key in [k for k in self.graphs if k[:2] == where]:
                    self.graphs.pop(graph_key).close()
                self.described.pop(where, None)
            elif op == b"d":
                numbers = _numbers(keys)
                for graph_key in [k for k in self.graphs if k[:2] == where]:
                    self.graphs[graph_key].remove(numbers)
                    self._compact_if_wasteful(graph_key)
        self._upsert_pending(pending)
        if entries:
            self.dirty = True
            self.mark(entries[-1][0], seq)
            self._on_change(self)

    def _upsert_pending(self, pending: dict[tuple[str, str], dict[bytes, None]]) -> None:
        """Add the gathered upserts' current records to their graphs; empties ``pending``."""
        for (tenant, name), gathered in pending.items():
            collection = self.describe(tenant, name)
            if collection is None:
                continue
            keys = list(gathered)
            # A piece at a time: a read of the stream after a pause can bring
            # hundreds of thousands of records, and all of them at once would
            # stay in this process's heap as its high-water mark.
            for start in range(0, len(keys), SCAN_BATCH):
                piece = keys[start:start + SCAN_BATCH]
                values = self.redis.hmget(colls.records_key(tenant, name), piece)
                found = [(k, v) for k, v in zip(piece, values) if v is not None]  # type: ignore[arg-type]
                self._add(collection, [k for k, _ in found], [v for _, v in found],
                          self.graphs, None, replace_elsewhere=True)
        pending.clear()

    def _add(self, collection: Collection, keys: list[bytes], values: Iterable[bytes],
             into: dict[IndexKey, Hnsw], only: int | None, replace_elsewhere: bool = False) -> None:
        # Decoded in bulk, ids left alone: one ``decode`` per record was a
        # third of this process's CPU per job.
        numbers = _numbers(keys)
        for dim, (positions, vectors) in by_dimension(list(values), collection.dtype).items():
            if only is not None and dim != only:
                continue
            array = numbers[positions]
            if replace_elsewhere:
                # An id of ``default`` sent again with another dimension moves.
                for other in [k for k in into if k[:2] == (collection.tenant, collection.name)
                              and k[2] != dim]:
                    into[other].remove(array)
            where = (collection.tenant, collection.name, dim)
            graph = into.get(where)
            if graph is None:
                graph = into[where] = Hnsw(dim, collection.metric)
            graph.upsert(array, vectors)

    def _compact_if_wasteful(self, key: IndexKey) -> None:
        graph = self.graphs[key]
        live = len(graph)
        if graph.removed >= COMPACT_MIN and graph.removed > COMPACT_AT * (live + graph.removed):
            # Removed slots keep their memory; a fresh graph of the live ones frees it.
            self.rebuild_collection(key[0], key[1], only=key[2])


def _numbers(keys: list[bytes]) -> np.ndarray:
    """Vector keys as Redis holds them (8 bytes, little-endian) as uint64."""
    return np.frombuffer(b"".join(keys), dtype="<u8").astype(np.uint64)


def last_entry(client: redis.Redis) -> tuple[str, int]:
    """The stream's last entry id and change number (``("0-0", 0)`` when empty)."""
    found = client.xrevrange(colls.LOG_KEY, count=1)
    if not found:
        return "0-0", int(client.get(colls.SEQ_KEY) or 0)  # type: ignore[arg-type]
    entry_id, fields = found[0]
    return entry_id.decode(), int(fields[b"s"])


def trimmed_past(client: redis.Redis, position: str) -> bool:
    """Whether entries after ``position`` were trimmed (an index there missed them)."""
    try:
        info = client.xinfo_stream(colls.LOG_KEY)
    except redis.ResponseError:  # no stream yet: nothing was ever trimmed
        return False
    deleted = info.get("max-deleted-entry-id", b"0-0")
    deleted = deleted.decode() if isinstance(deleted, bytes) else str(deleted)
    return _id(deleted) > _id(position)


def _id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def later(a: str, b: str) -> bool:
    return _id(a) > _id(b)
