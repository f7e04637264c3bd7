"""The task store: the one owner of the Redis keys of tasks.

It keeps each task's record (``hookline.task_record``), the tenant's index
and the set of unfinished tasks (``hookline.keys``). Every change of state is
a Lua script (``hookline/lua/task_*.lua``), so a task reaches a terminal
state exactly once whatever is redelivered or retried, and the webhook
delivery of that state is queued in the same step. docs/architecture.md
tells why the record is laid out as it is.
"""
from __future__ import annotations

import builtins
import dataclasses
import time
from collections.abc import Mapping, Sequence
from typing import Any

import redis

from hookline import keys, scripts
from hookline.cursors import decode_cursor, encode_cursor
from hookline.task_deliveries import TaskDeliveries
from hookline.task_record import (
    FORMAT_VERSION,
    PAYLOAD_FIELD,
    PENDING,
    RECORD_FIELDS,
    VERSION_FIELD,
    Task,
    decode_present,
    present_fields,
)
from hookline.task_runs import TaskRuns

#: Fraction of submissions that also trim expired ids from a tenant's index.
INDEX_TRIM_CHANCE = 0.01


@dataclasses.dataclass(frozen=True)
class QueuedMessage:
    """A broker message ready to be written beside a state change.

    ``list_key`` is the broker's Redis list for the queue, so the message and
    the task record land in one atomic step.
    """

    message_id: str
    data: bytes
    list_key: str


class TaskStore(TaskRuns, TaskDeliveries):
    """Reads and changes task records; every change of state is atomic."""

    def __init__(self, client: redis.Redis, *, result_ttl: int, heartbeats_key: str) -> None:
        self.redis = client
        self.result_ttl = result_ttl
        self.heartbeats_key = heartbeats_key
        self._submit = scripts.register(client, "hookline", "task_submit")
        self._finish = scripts.register(client, "hookline", "task_finish")
        self._handoff = scripts.register(client, "hookline", "task_handoff")
        self._attempt = scripts.register(client, "hookline", "task_attempt")
        self._cancel = scripts.register(client, "hookline", "task_cancel")
        self._start = scripts.register(client, "hookline", "task_start")
        self._requeue = scripts.register(client, "hookline", "task_requeue")
        self._retry = scripts.register(client, "hookline", "task_retry")

    # -- writes from the API -------------------------------------------------

    def submit(
        self,
        *,
        task_id: str,
        tenant: str,
        vectors: bytes,
        count: int,
        dimension: int,
        metadata_json: bytes,
        collection: str,
        callback: tuple[str, str] | None,
        message: QueuedMessage,
        extra: Sequence[tuple[str, bytes, int]] = (),
        now: float | None = None,
    ) -> float:
        """Write the record, payload, index entry and broker message atomically.

        ``extra`` holds further ``SET key value EX ttl`` writes that belong to
        the same request (the idempotency record). Returns the creation time.
        """
        now = time.time() if now is None else now
        record: dict[str, Any] = {
            "tenant": tenant,
            "status": PENDING,
            "created": repr(now),
            "total": count,
            "dim": dimension,
            "meta": metadata_json,
            VERSION_FIELD: FORMAT_VERSION,
            PAYLOAD_FIELD: vectors,
        }
        if collection != "default":
            record["coll"] = collection
        if callback:
            record["cb"], record["cburl"] = callback
            record["delivery"] = "pending"
        pairs = [item for field in record.items() for item in field]
        trim = ""
        if hash(task_id) % int(1 / INDEX_TRIM_CHANCE) == 0:
            trim = repr(now - self.result_ttl - 86400)
        # One script, so the record and its message exist together or not at
        # all; the idempotency record, when there is one, joins a transaction.
        script_keys = [keys.task(task_id), keys.task_index(tenant), keys.ACTIVE, message.list_key]
        args = [task_id, repr(now), message.data, trim, *pairs]
        if not extra:
            # Called directly: a script in a pipeline costs a SCRIPT EXISTS per call.
            self._submit(keys=script_keys, args=args)
            return now
        pipe = self.redis.pipeline(transaction=True)
        self._submit(keys=script_keys, args=args, client=pipe)
        for key, value, ttl in extra:
            pipe.set(key, value, ex=ttl)
        pipe.execute()
        return now

    def write_message(self, message: QueuedMessage) -> None:
        """Put ``message`` on its queue (outside any state change)."""
        self.redis.lpush(message.list_key, message.data)

    def cancel(
        self, tenant: str, task_id: str, delivery: QueuedMessage | None
    ) -> tuple[str, str]:
        """Cancel a task of ``tenant``.

        Returns ``(outcome, previous status)``: outcome ``revoked`` (it will
        never run), ``stopping`` (it stops at its next progress point),
        ``finished`` (already terminal) or ``missing`` (unknown or foreign).
        """
        script_keys, args = self._settle_args(task_id, delivery)
        changed, previous = self._cancel(keys=script_keys, args=[*args, tenant, repr(time.time())])
        previous = previous.decode() if isinstance(previous, bytes) else previous
        if changed == 1:
            return "revoked", previous
        if changed == 2:
            return "stopping", previous
        return ("finished" if previous else "missing"), previous

    # -- reads ---------------------------------------------------------------

    def get(self, task_id: str, tenant: str | None = None) -> Task | None:
        """The task, or ``None`` if unknown, expired or another tenant's."""
        raw = present_fields(self.redis.hmget(keys.task(task_id), RECORD_FIELDS))
        # Another tenant's record is not found before it is read, so that
        # no tenant learns of another's unreadable record.
        if tenant is not None and raw.get(b"tenant") != tenant.encode():
            return None
        return decode_present(task_id, raw)

    def list(
        self, tenant: str, *, limit: int, cursor: str | None, status: str | None
    ) -> tuple[builtins.list[Task], str | None]:
        """A page of the tenant's tasks, newest first.

        Raises:
            ValueError: ``cursor`` was not made by this store.
        """
        key = keys.task_index(tenant)
        max_score: float | str = "+inf"
        after: str | None = None
        if cursor:
            max_score, after = decode_cursor(cursor)
        found: builtins.list[Task] = []
        offset = 0
        batch = max(limit * 2, 50)
        while len(found) < limit:
            rows = self.redis.zrevrangebyscore(
                key, max_score, "-inf", start=offset, num=batch, withscores=True
            )
            if not rows:
                return found, None
            offset += len(rows)
            ids = []
            for member, score in rows:  # type: ignore[str-unpack]
                task_id = member.decode()
                if after is not None:
                    if score == max_score and task_id >= after:
                        continue
                    after = None
                ids.append((task_id, score))
            pipe = self.redis.pipeline(transaction=False)
            for task_id, _ in ids:
                pipe.hmget(keys.task(task_id), RECORD_FIELDS)
            for (task_id, score), values in zip(ids, pipe.execute()):
                task = decode_present(task_id, present_fields(values))
                if task is None:
                    continue
                if status and task.status != status:
                    continue
                found.append(task)
                if len(found) == limit:
                    return found, encode_cursor(score, task_id)
        return found, None

    @staticmethod
    def decode(task_id: str, raw: Mapping[bytes, bytes]) -> Task | None:
        """The task in ``raw`` (its record as ``HGETALL`` returns it), or ``None``."""
        return decode_present(task_id, raw)

