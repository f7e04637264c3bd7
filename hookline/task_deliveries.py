"""The task store's record of webhook deliveries (part of ``TaskStore``)."""
from __future__ import annotations

import builtins
import time
from collections.abc import Sequence
from typing import Any

import orjson
import redis
from redis.commands.core import Script

from hookline import keys
from hookline.schedule import member as schedule_member
from hookline.task_record import Task, decode_present


class TaskDeliveries:
    """A task's webhook attempts and delivery state, kept in its record."""

    redis: redis.Redis
    _attempt: Script

    def deliveries(self, task_id: str) -> builtins.list[dict[str, Any]]:
        """The task's webhook attempts, oldest first."""
        raw = self.redis.hgetall(keys.task(task_id))
        attempts = [(int(k[2:]), v) for k, v in raw.items() if k.startswith(b"a:")]
        return [orjson.loads(v) for _, v in sorted(attempts)]

    def record_attempt(
        self,
        task_id: str,
        record: bytes,
        delivery: str,
        *,
        failed_index: str,
        held: tuple[str, bytes] | None = None,
        retry_at: float | None = None,
        leased: bool = False,
        then: tuple[str, bytes] | None = None,
    ) -> tuple[str | None, int]:
        """Log one webhook attempt and set the delivery state, in one step.

        ``record`` is the attempt as JSON starting with ``{"attempt":0,``; the
        attempt's number is filled in here. ``held`` is ``(held list,
        message)``: the broker message to acknowledge. ``retry_at`` puts the
        next attempt on the schedule. A ``failed`` delivery enters the
        callback's ``failed_index`` (what ``recover`` resends), and a
        delivered one leaves it. ``leased`` ends the lease ``finish`` gave
        the attempt's maker on the delivery; ``then`` is ``(queue list,
        message)``: the next attempt, queued at once if the lease was still
        held (a lease that ran out was queued by the schedule). Done together, so that a worker dying
        between two of these can neither drop a retry nor hide a failure.
        Returns the previous delivery state (``None`` for an expired task)
        and the attempt's number in its series (a large job's progress events, logged
        beside it, are not counted).
        """
        previous, attempt = self._attempt(
            keys=[keys.task(task_id), held[0] if held else keys.task(task_id), keys.SCHEDULE,
                  failed_index, then[0] if then else keys.task(task_id)],
            args=[record, delivery, held[1] if held else b"", task_id,
                  "" if retry_at is None else repr(retry_at), repr(time.time()),
                  schedule_member("hook", task_id), "1" if leased else "",
                  then[1] if then else b""],
        )
        return (previous.decode() or None), int(attempt)

    def callback_of(self, task_id: str) -> str | None:
        """The id of the task's callback, or ``None`` (no callback, or no such task)."""
        value = self.redis.hget(keys.task(task_id), "cb")
        return value.decode() if value else None

    def set_delivery(self, task_id: str, state: str) -> bool:
        """Set the task's delivery state; ``True`` if it changed."""
        key = keys.task(task_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hget(key, "delivery")
        pipe.hset(key, "delivery", state)
        previous, _ = pipe.execute()
        return bool(previous != state.encode())

    def get_with_hash(self, task_id: str, other: str) -> tuple[Task | None, dict[bytes, bytes]]:
        """The task and the whole hash at ``other``, in one round trip.

        Raises:
            RecordError: the record cannot be read.
        """
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(keys.task(task_id))
        pipe.hgetall(other)
        raw_task, raw_other = pipe.execute()
        return decode_present(task_id, raw_task), raw_other

    def failed_since(self, callback_id: str, since: float, limit: int,
                     until: float | None = None) -> builtins.list[str]:
        """Up to ``limit`` tasks whose webhook to ``callback_id`` failed in ``[since, until]``, oldest first."""
        rows = self.redis.zrangebyscore(keys.failed_deliveries(callback_id), since,
                                        "+inf" if until is None else until, start=0, num=limit)
        return [row.decode() for row in rows]

    def failed_counts(self, callback_ids: Sequence[str]) -> builtins.list[int]:
        """How many deliveries to each of ``callback_ids`` have failed and not been delivered since."""
        pipe = self.redis.pipeline(transaction=False)
        for cb_id in callback_ids:
            pipe.zcard(keys.failed_deliveries(cb_id))
        return [int(n) for n in pipe.execute()]

    def failed_summary(
        self, callback_ids: Sequence[str], since: float, until: float | None = None, limit: int = 50,
    ) -> tuple[int, builtins.list[tuple[str, str, float]]]:
        """Failed deliveries of ``callback_ids`` in the range: how many, and up to ``limit`` of each's.

        The rows are ``(callback id, task id, failed at)``, newest first; one round trip in all.
        """
        top = "+inf" if until is None else until
        pipe = self.redis.pipeline(transaction=False)
        for cb_id in callback_ids:
            pipe.zcount(keys.failed_deliveries(cb_id), since, top)
            if limit:
                pipe.zrevrangebyscore(keys.failed_deliveries(cb_id), top, since, start=0, num=limit,
                                      withscores=True)
        replies = iter(pipe.execute())
        count, rows = 0, []
        for cb_id in callback_ids:
            count += int(next(replies))
            if limit:
                rows += [(cb_id, member.decode(), float(score)) for member, score in next(replies)]
        rows.sort(key=lambda row: row[2], reverse=True)
        return count, rows
