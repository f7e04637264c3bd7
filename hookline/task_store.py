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
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple, TypedDict, Unpack

import redis
from redis.commands.core import Script

from hookline import keys, scripts
from hookline.cursors import decode_cursor, encode_cursor
from hookline.redis_client import confirm_replicated
from hookline.task_deliveries import TaskDeliveries
from hookline.task_record import (
    FORMAT_VERSION,
    IDS_FIELD,
    PAYLOAD_FIELD,
    PENDING,
    RECORD_FIELDS,
    UPLOAD_FIELD,
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


def any_record(client: redis.Redis, task_ids: Iterable[str]) -> bool:
    """Whether any of ``task_ids`` still has a record (one ``EXISTS``; ``False`` for none).

    For readers that hold a client but no store, such as the upload
    retention sweep.
    """
    names = [keys.task(task_id) for task_id in task_ids]
    return bool(names) and bool(client.exists(*names))


#: Further ``SET key value EX ttl`` writes made in the submit's transaction.
Extra = Sequence[tuple[str, bytes, int]]


class ClaimedAnswer(NamedTuple):
    """An ``Idempotency-Key``'s answer, written with its task by the request holding the key.

    ``claim`` is the key's value while the request holds it: the task and
    ``answer`` are written only while the key holds that (or nothing).
    """

    key: str
    claim: bytes
    answer: bytes
    ttl: int


class ClaimLost(Exception):
    """Another request holds the ``Idempotency-Key`` by now: nothing was written."""


class NewTask(TypedDict):
    """The keywords that ``submit`` and ``submit_from_upload`` share."""

    task_id: str
    tenant: str
    count: int
    dimension: int
    metadata_json: bytes
    collection: str
    #: The callback's id and URL, or ``None``.
    callback: tuple[str, str] | None
    message: QueuedMessage


class TaskStore(TaskRuns, TaskDeliveries):
    """Reads and changes task records; every change of state is atomic."""

    def __init__(self, client: redis.Redis, *, result_ttl: int, heartbeats_key: str) -> None:
        self.redis = client
        self.result_ttl = result_ttl
        self.heartbeats_key = heartbeats_key
        self._submit = scripts.register(client, "hookline", "task_submit")
        self._submit_upload = scripts.register(client, "hookline", "task_submit_upload")
        self._finish = scripts.register(client, "hookline", "task_finish")
        self._attempt = scripts.register(client, "hookline", "task_attempt")
        self._cancel = scripts.register(client, "hookline", "task_cancel")
        self._start = scripts.register(client, "hookline", "task_start")
        self._requeue = scripts.register(client, "hookline", "task_requeue")
        self._retry = scripts.register(client, "hookline", "task_retry")

    # -- writes from the API -------------------------------------------------

    def submit(self, *, vectors: bytes, ids_json: bytes = b"", extra: Extra = (),
               answer: ClaimedAnswer | None = None, now: float | None = None,
               **task: Unpack[NewTask]) -> float:
        """Write the record, payload, index entry and broker message atomically.

        ``ids_json`` is the job's vector ids as sent (a JSON list; empty when
        it sent none): kept in the record until the task ends. ``answer`` is
        the request's ``Idempotency-Key`` answer, written in the same step;
        ``extra`` holds further ``SET key value EX ttl`` writes that belong to
        the same request. Returns the creation time.

        Raises:
            ClaimLost: another request holds ``answer``'s key; nothing was written.
        """
        now = time.time() if now is None else now
        trim = ""
        if hash(task["task_id"]) % int(1 / INDEX_TRIM_CHANCE) == 0:
            trim = repr(now - self.result_ttl - 86400)
        if self._write(self._submit, task, now, {PAYLOAD_FIELD: vectors, IDS_FIELD: ids_json},
                       extra, answer, more_args=[trim]) == -1:
            raise ClaimLost(task["task_id"])
        return now

    def submit_from_upload(self, *, upload_id: str, extra: Extra = (),
                           answer: ClaimedAnswer | None = None, now: float | None = None,
                           ids_upload_id: str | None = None, fields: Mapping[str, str] | None = None,
                           **task: Unpack[NewTask]) -> bool:
        """Write a task whose vectors are in an upload, its message and the uploads' pins, in one step.

        ``ids_upload_id`` names the upload of the vectors' ids, pinned too;
        ``fields`` go into the record. ``extra`` and ``answer`` as for
        ``submit``. Returns ``False``, writing nothing, if an upload is gone
        (deleted or swept since it was read).

        Raises:
            ClaimLost: another request holds ``answer``'s key; nothing was written.
        """
        now = time.time() if now is None else now
        pins = [upload_id] if ids_upload_id is None else [upload_id, ids_upload_id]
        written = self._write(self._submit_upload, task, now, {**(fields or {}), UPLOAD_FIELD: upload_id},
                              extra, answer, more_keys=[k for u in pins
                                                        for k in (keys.upload(u), keys.upload_tasks(u))])
        if written == -1:
            raise ClaimLost(task["task_id"])
        return bool(written)

    def _write(self, script: Script, task: NewTask, now: float, fields: Mapping[str, Any],
               extra: Extra, answer: ClaimedAnswer | None, *, more_keys: Sequence[str] = (),
               more_args: Sequence[str] = ()) -> Any:
        """Run a submit script for a new task whose record also holds ``fields``; its reply.

        The script's KEYS are the record, the tenant's index, the unfinished
        set and the message's queue, then ``more_keys``, then the
        ``Idempotency-Key``; its ARGV the id, the creation time and the
        message, then ``more_args``, then the key's claim, answer and ttl,
        then the record's fields and values. One script, so the record, its
        message and the key's answer exist together or not at all; the
        ``extra`` writes, when there are any, join it in a transaction.
        """
        record = {**self._record(task, now), **fields}
        message = task["message"]
        claimed: Sequence[Any] = (answer.claim, answer.answer, answer.ttl) if answer else ("", "", 0)
        script_keys = [keys.task(task["task_id"]), keys.task_index(task["tenant"]), keys.ACTIVE,
                       message.list_key, *more_keys,
                       answer.key if answer else keys.task(task["task_id"])]
        args = [task["task_id"], repr(now), message.data, *more_args, *claimed,
                *(item for field in record.items() for item in field)]
        if not extra:
            # Called directly: a script in a pipeline costs a SCRIPT EXISTS per call.
            return script(keys=script_keys, args=args)
        pipe = self.redis.pipeline(transaction=True)
        script(keys=script_keys, args=args, client=pipe)
        for key, value, ttl in extra:
            pipe.set(key, value, ex=ttl)
        reply = pipe.execute()[0]
        if reply != 1:
            # The script wrote nothing: what belongs to its task must not stand.
            self.redis.delete(*(key for key, _, _ in extra))
        return reply

    def upload_of(self, task_id: str) -> str | None:
        """The upload a task reads, or ``None`` for an inline task."""
        raw = self.redis.hget(keys.task(task_id), UPLOAD_FIELD)
        return raw.decode() if raw else None

    @staticmethod
    def _record(task: NewTask, now: float) -> dict[str, Any]:
        """A new task's record, without its vectors."""
        record: dict[str, Any] = {
            "tenant": task["tenant"],
            "status": PENDING,
            "created": repr(now),
            "total": task["count"],
            "dim": task["dimension"],
            "meta": task["metadata_json"],
            VERSION_FIELD: FORMAT_VERSION,
        }
        collection, callback = task["collection"], task["callback"]
        if collection != "default":
            record["coll"] = collection
        if callback:
            record["cb"], record["cburl"] = callback
            record["delivery"] = "pending"
        return record

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
        changed, previous = self._cancel(keys=[*script_keys, keys.finished_counts()], args=[*args, tenant, repr(time.time())])
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

    def replicated(self, task_id: str, replicas: int, timeout_ms: int) -> bool:
        """Whether the task's record is on this primary and ``replicas`` replicas
        hold every write so far (``hookline.redis_client.confirm_replicated``).

        Raises:
            redis.ConnectionError, redis.TimeoutError: Redis did not answer.
        """
        return confirm_replicated(self.redis, keys.task(task_id), replicas, timeout_ms)

    @staticmethod
    def decode(task_id: str, raw: Mapping[bytes, bytes]) -> Task | None:
        """The task in ``raw`` (its record as ``HGETALL`` returns it), or ``None``."""
        return decode_present(task_id, raw)

