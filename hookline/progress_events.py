"""A large job's ``task.progress`` webhooks, as the task's record keeps them.

The chunks' gate (``hookline/lua/chunk_gate.lua``) numbers the events; this
module holds what the webhook worker reads and writes around one attempt of
one: the claim that lets it go (and holds the terminal webhook back while it
is in flight), its entry in the task's attempts log, and its retry on the
schedule (docs/large-jobs.md, section 7).

Fields of the task's record: ``pe_busy`` (the lease of the attempt in
flight, Unix seconds), ``pe_retry`` (the event waiting for its retry, JSON)
and ``pe_attempts`` (progress attempts in the log).
"""
from __future__ import annotations

from typing import Any, cast

import orjson
import redis

from hookline import keys, scripts
from hookline.schedule import member

#: The schedule's kind of a progress event's retry.
PROGRESS_KIND = "progress"


class ProgressEventLog:
    """Claims, attempts and retries of one task's progress webhooks."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._claim = scripts.register(client, "hookline", "progress_claim")
        self._attempt = scripts.register(client, "hookline", "progress_attempt")

    def claim(self, task_id: str, number: int, *, now: float, lease_until: float) -> bool:
        """Whether event ``number`` may be attempted now; if so, leased until ``lease_until``.

        ``False`` once the task stops or begins to end, when a newer event
        exists, or while another event of the task is in flight.
        """
        return bool(self._claim(keys=[keys.task(task_id)],
                                args=[number, repr(now), repr(lease_until)]))

    def record(self, task_id: str, number: int, record: bytes, *,
               held: tuple[str, bytes] | None = None, retry_at: float | None = None,
               retry: dict[str, Any] | None = None) -> int:
        """Log one attempt of event ``number`` and end its lease, in one step.

        ``record`` is the attempt as JSON starting with ``{"attempt":0,``.
        ``held`` is ``(held list, message)``: the broker message to
        acknowledge. ``retry`` (the event) is attempted again at
        ``retry_at``, unless the event is no longer the newest or the task
        no longer runs. Returns the attempt's number in the log (0: the
        task is gone).
        """
        task_key = keys.task(task_id)
        return int(self._attempt(
            keys=[task_key, held[0] if held else task_key, keys.SCHEDULE],
            args=[record, held[1] if held else b"", number,
                  "" if retry_at is None else repr(retry_at),
                  orjson.dumps(retry) if retry is not None else b"",
                  member(PROGRESS_KIND, task_id)]))

    def pending(self, task_id: str) -> dict[str, Any] | None:
        """The event waiting for its retry, or ``None``."""
        raw = self.redis.hget(keys.task(task_id), "pe_retry")
        return cast("dict[str, Any]", orjson.loads(raw)) if raw else None  # type: ignore[arg-type]

    def busy_until(self, task_id: str) -> float:
        """Until when a progress attempt in flight holds the task's terminal webhook back (0: none)."""
        raw = self.redis.hget(keys.task(task_id), "pe_busy")
        return float(raw) if raw else 0.0  # type: ignore[arg-type]
