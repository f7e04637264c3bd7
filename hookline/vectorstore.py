"""Where vectors live: the source of truth, in Redis, one record per vector id.

A collection's vectors are one hash, ``hl:cvec:<tenant>:<name>``: the field
is the vector's 8-byte key (``vectorrecords.vector_key`` of its id), the
value its record (task id, id, vector in the storage type). Each vector is
kept once; the same id again replaces it. ``hl:ctask:...`` lists each task's
ids (``hookline.task_entries``), so that a task's vectors can be found
(``filter``, delete by task).

Every change appends an entry to the stream ``hl:vlog`` (the keys changed)
and counts ``hl:vseq`` up in the same script; the index process follows the
stream, and a search waits until the index has applied the number it read.
The scripts are ``hookline/lua/*.lua``.
"""
from __future__ import annotations

import dataclasses
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import redis

from hookline import keys, scripts
from hookline import vector_collections as colls
from hookline.task_entries import count_entry, entry_keys, names_entry
from hookline.vector_collections import Collection, new_collection
from hookline.vectorrecords import Record, decode, default_id, encode, key_bytes, vector_key

#: Seconds of changes the stream keeps; an index further behind rebuilds.
LOG_RETENTION_SECONDS = 3600
#: Seconds a job's ids wait beside its task for the job (longer than any run).
JOB_IDS_TTL = 8 * 86400
#: Rows encoded at a time (bounds the float32 copies that quantising makes).
ENCODE_ROWS = 1024
#: Vectors a chunk of a large job writes per command: a few hundred KB (a
#: chunk of 10,000 in one command held 4 to 15 MB in the query buffer of
#: each connection that sent one, 42.6 MB in all at 1,000,000 vectors).
PIECE_VECTORS = ENCODE_ROWS


#: Where a job's ``ids`` (JSON) were kept until it ended, before they moved into
#: the task record (``task_record.IDS_FIELD``); still read for such records.
job_ids_key = keys.job_ids


def load_script(client: redis.Redis, name: str) -> Any:
    return scripts.register(client, "hookline", name)


def log_cutoff(now: float | None = None) -> str:
    """The stream id before which entries may be trimmed."""
    now = time.time() if now is None else now
    return str(int((now - LOG_RETENTION_SECONDS) * 1000))


def write_keys(collection: Collection, task_id: str) -> list[str]:
    """The keys ``vectors_write.lua`` writes a job's vectors with."""
    tenant, name = collection.tenant, collection.name
    return [colls.records_key(tenant, name), colls.stats_key(tenant, name),
            colls.tasks_key(tenant, name), colls.LOG_KEY, colls.SEQ_KEY,
            colls.collections_key(tenant), colls.REGISTRY_KEY, job_ids_key(task_id)]


def write_args(collection: Collection, task_id: str, dimension: int) -> list[Any]:
    """The arguments ``vectors_write.lua`` writes a job's vectors with."""
    tenant, name = collection.tenant, collection.name
    # The one the vectors were encoded for, made again if it was deleted since
    # (a description read from Redis has its uid; a new one gets one).
    description = collection if collection.uid else new_collection(
        tenant, name, dimension, collection.metric, collection.dtype)
    return [task_id, log_cutoff(), tenant, name, colls.registry_member(tenant, name),
            description.to_json(), dimension, collection.uid]


@dataclass
class JobWrite:
    """A finished job's vectors, encoded, for the step that ends the task
    (``TaskStore.finish(vectors=...)``)."""

    collection: Collection
    task_id: str
    dimension: int
    blob: bytes
    #: One chunk of a job with named ids: they add to the task's ids entry
    #: (default ids need none: the entry is the job's count of vectors).
    partial: bool = False
    #: For a piece of a chunk: how many of the chunk's rows end with it.
    rows_to: int = 0

    @property
    def script_keys(self) -> list[str]:
        return write_keys(self.collection, self.task_id)

    @property
    def script_args(self) -> list[Any]:
        return write_args(self.collection, self.task_id, self.dimension)


class VectorStore:
    """Writes, reads and deletes the vectors of collections."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self.collections = colls.Collections(client)
        self._apply = load_script(client, "vectors_apply")
        self._delete = load_script(client, "vectors_delete")
        self._drop = load_script(client, "collection_drop")

    # -- jobs ----------------------------------------------------------------

    def job_ids(self, task_id: str) -> list[str] | None:
        import orjson  # noqa: PLC0415 - only jobs with ids need it

        raw = self.redis.get(job_ids_key(task_id))
        return orjson.loads(raw) if raw else None  # type: ignore[arg-type]

    def prepare(self, collection: Collection, task_id: str, vectors: np.ndarray,
                ids: list[str] | None, *, first_row: int = 0, total: int | None = None) -> JobWrite:
        """Encode a job's float32 ``vectors`` for ``collection`` (its storage type).

        For one chunk of a job, ``first_row`` is the job's row of
        ``vectors[0]`` and ``total`` the job's number of vectors.
        """
        records: list[bytes] = []
        # A block at a time: quantising makes float32 copies of what it encodes
        # (four of a 10,000-row chunk at once were 60 MB per job thread).
        for start in range(0, len(vectors), ENCODE_ROWS):
            stop = start + ENCODE_ROWS
            records += encode(task_id, None if ids is None else ids[start:stop],
                              vectors[start:stop], collection.dtype, first_row + start)
        if ids is None:
            keys = [vector_key(default_id(task_id, first_row + row)) for row in range(len(records))]
            entry = count_entry(len(records) if total is None else total)
        else:
            keys = [vector_key(name) for name in ids]
            entry = names_entry(ids)
        parts = [struct.pack("<I", len(entry)), entry]
        for key, record in zip(keys, records):
            parts += [key_bytes(key), struct.pack("<I", len(record)), record]
        return JobWrite(collection, task_id, int(vectors.shape[1]), b"".join(parts),
                        partial=total is not None and ids is not None)

    def prepare_pieces(self, collection: Collection, task_id: str, vectors: np.ndarray,
                       ids: list[str] | None, *, first_row: int, total: int,
                       piece: int = PIECE_VECTORS) -> list[JobWrite]:
        """One chunk's vectors encoded as pieces of at most ``piece`` vectors, in order.

        Their bounds are fixed (every ``piece`` rows of the chunk), so a chunk
        run again writes the same pieces.
        """
        pieces = []
        for start in range(0, len(vectors), piece):
            stop = min(start + piece, len(vectors))
            write = self.prepare(collection, task_id, vectors[start:stop],
                                 None if ids is None else ids[start:stop],
                                 first_row=first_row + start, total=total)
            pieces.append(dataclasses.replace(write, rows_to=stop))
        return pieces

    def apply_inbox(self, collection: Collection, task_id: str, dimension: int) -> Any:
        """Move vectors an older worker left in the inbox into ``collection``."""
        return self._apply(keys=[colls.INBOX_KEY, *write_keys(collection, task_id)],
                           args=write_args(collection, task_id, dimension))

    # -- reads ---------------------------------------------------------------

    def fetch_raw(self, collection: Collection, keys: Sequence[int]) -> list[bytes | None]:
        """The stored records under ``keys``, undecoded (``None`` where there is none)."""
        if not keys:
            return []
        return self.redis.hmget(  # type: ignore[return-value]
            colls.records_key(collection.tenant, collection.name), [key_bytes(k) for k in keys])

    def fetch(self, collection: Collection, keys: Sequence[int]) -> list[Record | None]:
        """The records under ``keys`` (``None`` where there is none)."""
        return [decode(r, collection.dtype) if r else None for r in self.fetch_raw(collection, keys)]

    def get(self, collection: Collection, vector_id: str) -> Record | None:
        found = self.fetch(collection, [vector_key(vector_id)])[0]
        return found if found is not None and found.id == vector_id else None

    def task_keys(self, collection: Collection, task_id: str) -> list[int]:
        """Keys of the vectors ``task_id`` wrote (some may belong to later tasks now)."""
        raw = self.redis.hget(colls.tasks_key(collection.tenant, collection.name), task_id)
        return entry_keys(task_id, raw) if raw else []  # type: ignore[arg-type]

    def task_records(self, collection: Collection, task_id: str) -> list[Record]:
        found = self.fetch(collection, self.task_keys(collection, task_id))
        return [r for r in found if r is not None and r.task_id == task_id]

    def written_after(self, collection: Collection, position: str) -> list[int]:
        """Keys of ``collection``'s vectors written after stream ``position``.

        What a search scores exactly when the index has not reached the
        latest change: read-your-writes without waiting for it.
        """
        entries = self.redis.xrange(colls.LOG_KEY, min=f"({position}", max="+")
        tenant, name = collection.tenant.encode(), collection.name.encode()
        keys: list[int] = []
        for _, fields in entries:  # type: ignore[union-attr]
            if fields[b"op"] == b"u" and fields[b"t"] == tenant and fields[b"c"] == name:
                raw = fields[b"k"]
                keys += [int.from_bytes(raw[i:i + 8], "little") for i in range(0, len(raw), 8)]
        return keys

    def seq(self) -> int:
        """The number of the last change: a search waits for the index to reach it."""
        return int(self.redis.get(colls.SEQ_KEY) or 0)  # type: ignore[arg-type]

    # -- deletes -------------------------------------------------------------

    def delete_ids(self, collection: Collection, ids: Sequence[str]) -> int:
        return self._delete_keys(collection, [vector_key(i) for i in ids], "")

    def delete_task(self, collection: Collection, task_id: str) -> int:
        return self._delete_keys(collection, self.task_keys(collection, task_id), task_id,
                                 always=True)

    def _delete_keys(self, collection: Collection, keys: list[int], task_id: str,
                     always: bool = False) -> int:
        if not keys and not always:
            return 0
        tenant, name = collection.tenant, collection.name
        return int(self._delete(
            keys=[colls.records_key(tenant, name), colls.stats_key(tenant, name),
                  colls.tasks_key(tenant, name), colls.LOG_KEY, colls.SEQ_KEY],
            args=[tenant, name, log_cutoff(), task_id, *(key_bytes(k) for k in keys)],
        ))

    def drop(self, tenant: str, name: str) -> bool:
        """Delete a collection and its vectors; ``False`` if there was none."""
        return bool(self._drop(
            keys=[colls.collections_key(tenant), colls.stats_key(tenant, name),
                  colls.records_key(tenant, name), colls.tasks_key(tenant, name),
                  colls.REGISTRY_KEY, colls.LOG_KEY, colls.SEQ_KEY],
            args=[name, colls.registry_member(tenant, name), tenant, log_cutoff()],
        ))
