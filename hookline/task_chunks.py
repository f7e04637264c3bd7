"""Chunks of a large job: which rows and bytes each reads, and the ledger of their ends.

A job from an upload runs as chunks of ``HOOKLINE_CHUNK_VECTORS`` rows on any
job worker (docs/large-jobs.md). ``ChunkPlan`` says where each chunk's bytes
are, so a chunk reads only its own range of the blob. ``ChunkLedger`` keeps,
in the task's record, what the chunks have done: per-chunk progress that a
chunk run twice cannot count twice, and one Lua step per chunk end that
counts each chunk once and answers *last* to exactly one caller, which then
ends the task (so the task ends once, and its webhook goes out once).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import orjson
import redis

from hookline import keys, scripts
from hookline.blobs import BlobStore
from hookline.task_record import UPLOAD_FIELD
from hookline.task_store import QueuedMessage
from hookline.uploads import Upload
from hookline.vectorstore import JobWrite

# Fields of the task's record (``hl:task:{id}``) that the ledger writes:
# ``ch_total``, ``ch_done``, ``ch_failed``, ``ch_revoked``, ``done``,
# ``c:{k}`` (rows chunk k has done), ``s:{k}`` (chunk k's statistics, JSON),
# ``w:{k}`` (rows of chunk k whose named ids are in the task's ids entry),
# ``r:{k}`` (chunk k's runs that met a transient error),
# ``chunk_error`` (the first failure's message), ``cancel``, ``ending`` (when
# the last chunk ended), and ``pe`` / ``pe_at`` / ``pe_n`` (progress events on
# / the last one's time / its number; see ``actors/progress_events.py``).
# ``pe`` is written when the task is accepted.
# -----------------------------------------------------------------------------

SUCCESS, FAILURE, REVOKED = "success", "failure", "revoked"
#: What ``ChunkLedger.write_piece`` answers.
WRITTEN, STOPPED, CANCELLED, REFUSED = "written", "stopped", "cancelled", "refused"
#: The record's field that turns ``task.progress`` webhooks on (``"1"``).
PROGRESS_EVENTS_FIELD = "pe"
OUTCOMES = (SUCCESS, FAILURE, REVOKED)
#: Seconds between two ``task.progress`` events of one task, at least.
PROGRESS_EVENT_INTERVAL = 5.0


class InvalidChunk(ValueError):
    """A chunk's bytes cannot be processed; running it again would not help."""


@dataclass(frozen=True)
class Chunk:
    index: int
    first_row: int
    rows: int
    #: Where its bytes start in the blob, and how many there are.
    start: int
    length: int

    def describe(self) -> str:
        return f"chunk {self.index} (rows {self.first_row}-{self.first_row + self.rows - 1})"


@dataclass(frozen=True)
class ChunkPlan:
    """How a job of ``rows`` vectors splits into chunks of ``chunk_vectors``."""

    rows: int
    dimension: int
    #: ``<f4`` or ``<f8``.
    dtype: str
    #: Bytes before the first value (the ``.npy`` header; 0 for ``f32``).
    data_offset: int
    chunk_vectors: int

    @classmethod
    def for_upload(cls, upload: Upload, chunk_vectors: int) -> "ChunkPlan":
        """The plan for a complete upload.

        Raises:
            ValueError: the upload is not complete, or has no rows.
        """
        if not upload.complete or upload.rows < 1 or upload.dimension < 1:
            raise ValueError("only a complete upload with rows can be planned")
        return cls(rows=upload.rows, dimension=upload.dimension, dtype=upload.dtype,
                   data_offset=upload.data_offset, chunk_vectors=chunk_vectors)

    @property
    def row_bytes(self) -> int:
        return self.dimension * np.dtype(self.dtype).itemsize

    @property
    def count(self) -> int:
        return math.ceil(self.rows / self.chunk_vectors)

    def chunk(self, index: int) -> Chunk:
        """Chunk ``index`` (0-based).

        Raises:
            IndexError: there is no such chunk.
        """
        if not 0 <= index < self.count:
            raise IndexError(f"no chunk {index} in a job of {self.count}")
        first = index * self.chunk_vectors
        rows = min(self.chunk_vectors, self.rows - first)
        return Chunk(index=index, first_row=first, rows=rows,
                     start=self.data_offset + first * self.row_bytes, length=rows * self.row_bytes)

    def __iter__(self) -> Iterator[Chunk]:
        return (self.chunk(index) for index in range(self.count))


def read_chunk(blobs: BlobStore, key: str, plan: ChunkPlan, chunk: Chunk) -> np.ndarray:
    """Chunk's rows as a read-only ``(rows, dimension)`` array, every value finite.

    Only the chunk's own byte range is read.

    Raises:
        InvalidChunk: the blob ends early, or a value is not finite (the
            message names the chunk and the first such row).
        BlobError: the store failed (a transient error: retry).
    """
    data = blobs.read(key, chunk.start, chunk.length)
    if len(data) != chunk.length:
        raise InvalidChunk(f"{chunk.describe()}: the upload ends {chunk.length - len(data)} bytes early")
    values = np.frombuffer(data, dtype=plan.dtype).reshape(chunk.rows, plan.dimension)
    finite = np.isfinite(values).all(axis=1)
    if not finite.all():
        row = chunk.first_row + int(np.argmin(finite))
        raise InvalidChunk(f"{chunk.describe()}: row {row} holds a value that is not a finite number")
    return values


@dataclass(frozen=True)
class ChunkEnd:
    """What ``ChunkLedger.end`` answers."""

    #: This was the chunk's first end (count it in metrics); ``False`` for a repeat.
    first: bool
    #: This end accounted for the task's last chunk: the caller ends the task.
    last: bool
    cancel: bool
    #: The number of the ``task.progress`` event the caller sends; 0 for none.
    emit: int
    #: Nothing changed: the chunk's collection now has another dimension.
    refused: bool = False


@dataclass(frozen=True)
class ChunkOutcome:
    """How a large job's chunks ended, as the end that was last reads it."""

    total: int
    failed: int
    revoked: int
    #: The first failure's message, if a chunk failed.
    reason: str | None


class ChunkLedger:
    """Chunk progress and ends, kept in the task's record, each an atomic step."""

    def __init__(self, client: redis.Redis, *, ended_ttl: int,
                 event_interval: float = PROGRESS_EVENT_INTERVAL) -> None:
        self.redis = client
        self.ended_ttl = ended_ttl
        self.event_interval = event_interval
        self._progress = scripts.register(client, "hookline", "chunk_progress")
        self._end = scripts.register(client, "hookline", "chunk_end")
        self._piece = scripts.register(client, "hookline", "chunk_piece")

    def plan_fields(self, plan: ChunkPlan, *, progress_events: bool) -> dict[str, int | str]:
        """The fields the planner writes into the record with the chunks' messages."""
        fields: dict[str, int | str] = {"ch_total": plan.count, "total": plan.rows, "ch_done": 0,
                                        "ch_failed": 0, "ch_revoked": 0, "done": 0}
        if progress_events:  # otherwise as the submit wrote it
            fields[PROGRESS_EVENTS_FIELD] = "1"
        return fields

    def planned(self, task_id: str) -> bool:
        """Whether the task's plan (its chunk counters) is written already."""
        return bool(self.redis.hexists(keys.task(task_id), "ch_total"))

    def ended(self, task_id: str) -> set[int]:
        """The numbers of the task's chunks that have ended."""
        return {int(k) for k in self.redis.smembers(keys.ended_chunks(task_id))}

    def write_plan(self, task_id: str, plan: ChunkPlan, messages: Iterable[QueuedMessage], *,
                   planned: bool, progress_events: bool = False) -> None:
        """Write the plan's fields (unless ``planned``) and push ``messages``, in one transaction."""
        pipe = self.redis.pipeline(transaction=True)
        if not planned:
            pipe.hset(keys.task(task_id), mapping=self.plan_fields(plan, progress_events=progress_events))
        for message in messages:
            pipe.lpush(message.list_key, message.data)
        pipe.execute()

    def run_state(self, task_id: str) -> tuple[str | None, bool, str | None]:
        """What a chunk reads before it runs, in one round trip.

        Returns the task's status (``None`` if the record is gone), whether
        it is cancelled, and the upload it reads (``None`` if none).
        """
        status, cancel, upload = cast("list[bytes | None]", self.redis.hmget(
            keys.task(task_id), "status", "cancel", UPLOAD_FIELD))
        return (status.decode() if status is not None else None, cancel == b"1",
                upload.decode() if upload else None)

    def failed_run(self, task_id: str, chunk: int) -> int:
        """Count a run of ``chunk`` that met a transient error; how many have, this one included."""
        return int(self.redis.hincrby(keys.task(task_id), f"r:{chunk}", 1))

    def ending_since(self, task_id: str) -> float | None:
        """When the task's last chunk ended (``None``: chunks still run, or no record).

        An ending older than the format's timestamps (``"1"``) reads as long ago.
        """
        raw = self.redis.hget(keys.task(task_id), "ending")
        return float(raw) if raw else None  # type: ignore[arg-type]

    def outcome(self, task_id: str) -> ChunkOutcome:
        """How the task's chunks ended."""
        total, failed, revoked, reason = cast("list[bytes | None]", self.redis.hmget(
            keys.task(task_id), "ch_total", "ch_failed", "ch_revoked", "chunk_error"))
        return ChunkOutcome(total=int(total or 0), failed=int(failed or 0),
                            revoked=int(revoked or 0), reason=reason.decode() if reason else None)

    def stats(self, task_id: str, count: int) -> list[dict[str, Any]]:
        """The statistics that the task's ``count`` chunks recorded when they succeeded."""
        parts = self.redis.hmget(keys.task(task_id), [f"s:{k}" for k in range(count)])
        return [orjson.loads(p) for p in parts if p]

    def progress(self, task_id: str, chunk: int, rows_done: int, now: float) -> tuple[bool, int]:
        """Record that ``chunk`` has done ``rows_done`` rows.

        Returns whether the task is cancelled, and the number of the
        ``task.progress`` event the caller sends (0 for none).
        """
        cancel, event = self._progress(keys=[keys.task(task_id)],
                                       args=[chunk, rows_done, repr(now), self.event_interval])
        return bool(cancel), int(event)

    def write_piece(self, task_id: str, chunk: int, vectors: JobWrite) -> str:
        """Write a piece of a running chunk's vectors, before its end (which takes the last).

        Returns ``WRITTEN``; ``STOPPED`` (nothing written) when the chunk has
        ended or the task is gone or no longer running; ``CANCELLED`` when
        the task is cancelled; ``REFUSED`` when the collection now has
        another dimension or is another one.
        """
        vector_args = vectors.script_args
        answer = int(self._piece(
            keys=[keys.task(task_id), keys.ended_chunks(task_id), *vectors.script_keys],
            args=[chunk, vectors.rows_to, vectors.blob, "1" if vectors.partial else "0",
                  len(vector_args), *vector_args]))
        return {1: WRITTEN, 0: STOPPED, -1: CANCELLED}.get(answer, REFUSED)

    def end(self, task_id: str, chunk: int, outcome: str, *, rows: int = 0, stats: str = "",
            error: str = "", now: float, vectors: JobWrite | None = None) -> ChunkEnd:
        """Account for the end of ``chunk`` (``success``, ``failure`` or ``revoked``).

        A successful chunk's ``vectors`` (its last piece, after ``write_piece``
        wrote the others) are written into their collection in the same step,
        unless the task is cancelled or no longer running.

        Raises:
            ValueError: an unknown outcome.
        """
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown chunk outcome {outcome!r}")
        script_keys = [keys.task(task_id), keys.ended_chunks(task_id)]
        args: list[Any] = [chunk, outcome, rows, stats, error, repr(now), self.event_interval,
                           self.ended_ttl]
        if vectors is not None:
            vector_args = vectors.script_args
            script_keys += vectors.script_keys
            args += [vectors.blob, "1" if vectors.partial else "0", len(vector_args), *vector_args]
        first, last, cancel, event = self._end(keys=script_keys, args=args)
        if first == -2:
            return ChunkEnd(first=False, last=False, cancel=False, emit=0, refused=True)
        return ChunkEnd(first=bool(first), last=bool(last), cancel=bool(cancel), emit=int(event))

    def counts(self, task_id: str) -> dict[str, object]:
        """``progress`` and ``chunks`` as ``GET /tasks/{id}`` shows them."""
        done, total, ch_done, ch_failed, ch_revoked, ch_total = (
            int(v or 0) for v in self.redis.hmget(
                keys.task(task_id), "done", "total", "ch_done", "ch_failed", "ch_revoked", "ch_total"))
        return {"progress": {"done": done, "total": total},
                "chunks": {"done": ch_done, "failed": ch_failed, "revoked": ch_revoked,
                           "total": ch_total}}
