"""The task store's writes from the job workers and the reconciler (part of ``TaskStore``)."""
from __future__ import annotations

import builtins
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import orjson
import redis
from redis.commands.core import Script

from hookline import keys
from hookline.task_record import (
    FORMAT_VERSION,
    IDS_FIELD,
    PAYLOAD_FIELD,
    PENDING,
    RETRY,
    STARTED,
    TERMINAL,
    Task,
)
from hookline.task_record import decode as decode_record

if TYPE_CHECKING:
    from hookline.task_store import QueuedMessage


class VectorOutput(Protocol):
    """A job's vectors as ``finish`` writes them (``hookline.vectorstore.JobWrite``)."""

    blob: bytes

    @property
    def script_keys(self) -> builtins.list[str]: ...

    @property
    def script_args(self) -> builtins.list[Any]: ...


class VectorsRefused(Exception):
    """The collection a job's vectors were encoded for has another dimension by now."""


class TaskRuns:
    """Claiming, progressing and ending runs; the unfinished set the reconciler reads."""

    redis: redis.Redis
    result_ttl: int
    heartbeats_key: str
    _start: Script
    _finish: Script
    _retry: Script
    _requeue: Script

    def start(
        self, task_id: str, owner: str, heartbeat_cutoff_ms: int, claim: str
    ) -> tuple[str, Task | None, bytes | None]:
        """Claim the task for a run.

        ``claim`` names this run (the broker message's id). Asking again with
        the same claim, because Redis went away before the answer came, gets
        the same run back instead of ``busy``; another worker holding that
        message (given back, or recovered from a dead worker) takes the run
        over. Returns the outcome, and for ``run`` the task and its payload.
        The outcome is ``run`` (claimed: status ``STARTED``), ``terminal`` (it
        has ended: drop the message), ``busy`` (a live worker runs it under
        another claim), ``missing`` (no record: expired or never written) or
        ``foreign`` (a record format newer than this code reads: left
        unclaimed for a worker that can run it).

        Raises:
            RecordError: the record was claimed but cannot be read (a hand edit).
        """
        reply = self._start(
            keys=[keys.task(task_id), self.heartbeats_key, keys.legacy_payload(task_id)],
            args=[repr(time.time()), owner, heartbeat_cutoff_ms, claim, FORMAT_VERSION],
        )
        if isinstance(reply, bytes):
            return reply.decode(), None, None
        _, flat, attempts, started, legacy = reply
        record = dict(zip(flat[0::2], flat[1::2]))
        payload = record.pop(PAYLOAD_FIELD.encode(), None)
        if legacy is not None:
            payload = legacy
        ids = record.pop(IDS_FIELD.encode(), None)
        record.update({b"status": b"STARTED", b"started": started, b"owner": owner.encode(),
                       b"attempts": str(attempts).encode()})
        task = decode_record(task_id, record)
        task.job_ids = ids
        return "run", task, payload

    def progress(self, task_id: str, done: int) -> bool:
        """Record progress; returns whether a cancel was asked for."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(keys.task(task_id), "done", done)
        pipe.hget(keys.task(task_id), "cancel")
        return pipe.execute()[1] == b"1"

    def finish(
        self,
        task_id: str,
        status: str,
        *,
        delivery: QueuedMessage | None,
        result: Mapping[str, Any] | None = None,
        error: str | None = None,
        fields: Mapping[str, Any] | None = None,
        allowed_from: Iterable[str] = (PENDING, STARTED, RETRY),
        vectors: VectorOutput | None = None,
        held: tuple[str, bytes] | None = None,
        finished_at: float | None = None,
        lease_until: float | None = None,
    ) -> bool:
        """Move the task to a terminal ``status``, once.

        ``vectors`` are the job's vectors, written into their collection in
        the same step (``hookline/lua/vectors_write.lua``). ``held`` is
        ``(held list, message)``: the broker message to acknowledge in the
        same step, whatever the outcome. ``finished_at`` defaults to now.
        ``lease_until`` leases the webhook's delivery to the caller, who
        attempts it at once: instead of a ``delivery`` message going on its
        queue (pass none), the schedule holds the task's webhook retry, due
        then, until the attempt is recorded (``record_attempt(leased=True)``).
        Returns ``True`` for the call that made the transition; every other
        call (a redelivery, a race with cancel) gets ``False`` and changes
        nothing.

        Raises:
            VectorsRefused: the vectors' collection has another dimension by
                now (it was deleted and created again); nothing changed.
        """
        assert status in TERMINAL
        pairs: list[Any] = ["finished", repr(time.time() if finished_at is None else finished_at)]
        if result is not None:
            pairs += ["result", orjson.dumps(result)]
        if error is not None:
            pairs += ["error", error]
        for name, value in (fields or {}).items():
            pairs += [name, value]
        script_keys, args = self._settle_args(task_id, delivery)
        script_keys += [held[0] if held else keys.task(task_id), keys.finished_counts(),
                        keys.SCHEDULE]
        allowed = "," + ",".join(allowed_from) + ","
        leased = "" if lease_until is None else repr(lease_until)
        args += [allowed, held[1] if held else b"", status, leased]
        if vectors is None:
            args += [b"", 0]
        else:
            script_keys += vectors.script_keys
            args += [vectors.blob, len(vectors.script_args), *vectors.script_args]
        changed, old = self._finish(keys=script_keys, args=[*args, *pairs])
        if changed == -2:
            raise VectorsRefused(task_id)
        return bool(changed == 1)

    def schedule_retry(
        self, task_id: str, *, owner: str, due: float, error: str, schedule_key: str
    ) -> bool:
        """Mark a running task ``RETRY`` and put it on the schedule for ``due``."""
        changed = self._retry(
            keys=[keys.task(task_id), schedule_key], args=[task_id, repr(due), error, owner]
        )
        return changed == 1

    def requeue(
        self, task_id: str, message: QueuedMessage, *, expect: Iterable[str], status: str
    ) -> bool:
        """Write a new broker message for an unfinished task (retry, reconcile)."""
        changed = self._requeue(
            keys=[keys.task(task_id), keys.ACTIVE, message.list_key],
            args=[
                task_id,
                repr(time.time()),
                message.data,
                "," + ",".join(expect) + ",",
                status,
            ],
        )
        return changed == 1

    # -- the reconciler's view of unfinished tasks ---------------------------

    def unfinished_since(self, cutoff: float, limit: int) -> builtins.list[tuple[str, float]]:
        """Up to ``limit`` unfinished task ids whose last message was written before ``cutoff``.

        Each comes with when that message was written (seconds).
        """
        rows = self.redis.zrangebyscore(
            keys.ACTIVE, "-inf", cutoff, start=0, num=limit, withscores=True)
        return [(member.decode(), float(score)) for member, score in rows]  # type: ignore[str-unpack]

    def run_states(
        self, task_ids: Sequence[str]
    ) -> builtins.list[tuple[str | None, str | None, float | None]]:
        """``(status, owner, ending)`` of each task, ``None`` where absent, in one round trip.

        ``ending`` is when a large job's last chunk ended (``hookline.task_chunks``).
        """
        pipe = self.redis.pipeline(transaction=False)
        for task_id in task_ids:
            pipe.hmget(keys.task(task_id), "status", "owner", "ending")
        return [(status.decode() if status is not None else None,
                 owner.decode() if owner is not None else None,
                 float(ending) if ending is not None else None)
                for status, owner, ending in pipe.execute()]

    def forget_finished(self, task_id: str) -> None:
        """Drop an ended or expired task from the unfinished set."""
        self.redis.zrem(keys.ACTIVE, task_id)

    def still_waiting(self, task_id: str, now: float) -> None:
        """Note that an unfinished task's message is accounted for as of ``now``."""
        self.redis.zadd(keys.ACTIVE, {task_id: now}, xx=True)

    def _settle_args(
        self, task_id: str, delivery: QueuedMessage | None
    ) -> tuple[builtins.list[str], builtins.list[Any]]:
        script_keys = [
            keys.task(task_id),
            keys.ACTIVE,
            delivery.list_key if delivery else keys.task(task_id),
            keys.legacy_payload(task_id),
        ]
        args = [task_id, self.result_ttl, delivery.data if delivery else b""]
        return script_keys, args
