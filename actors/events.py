"""A task's webhook event: what the job actor queues and the delivery actor sends.

Both actors import it from here; neither imports the other.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any

import orjson

from callbacks import signature_header
from hookline.ids import isoformat
from hookline.task_record import FAILURE, REVOKED, SUCCESS, Task

EVENT_TYPES = {SUCCESS: "task.succeeded", FAILURE: "task.failed", REVOKED: "task.revoked"}

#: Characters of a receiver's answer kept in the attempts log.
EXCERPT_CHARS = 512

#: Largest event, as JSON, that travels in its delivery message (a larger
#: one, from large metadata, is read from the task instead).
EVENT_IN_MESSAGE_BYTES = 4096


def webhook_id(task_id: str) -> str:
    """The stable ``webhook-id`` of a task's terminal event."""
    return "msg_" + task_id.replace("-", "")


def attempt_record(
    wid: str, at: float, trigger: str, *, status_code: int | None = None, error: str | None = None,
    duration_ms: float = 0.0, excerpt: str | None = None,
) -> bytes:
    """One entry of the attempts log, as JSON. ``attempt`` comes first: the store fills in its number."""
    return orjson.dumps({
        "attempt": 0, "webhook_id": wid, "at": isoformat(at),
        "status_code": status_code, "error": error, "duration_ms": round(duration_ms, 2),
        "response_excerpt": (excerpt or "")[:EXCERPT_CHARS], "trigger": trigger,
    })


def signed_request(event: Event, secrets: list[str]) -> tuple[bytes, dict[str, str]]:
    """The body and headers of one attempt to deliver ``event``, signed now with ``secrets``."""
    wid = webhook_id(event.task_id)
    body = orjson.dumps(event.body())
    timestamp = int(time.time())
    return body, {
        "content-type": "application/json",
        "webhook-id": wid,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets, wid, timestamp, body),
    }


@dataclasses.dataclass(frozen=True)
class Event:
    """A task's terminal event: what its webhook says."""

    task_id: str
    callback_id: str
    status: str
    #: ``GET /tasks/{id}`` as it reads once this delivery has succeeded.
    data: dict[str, Any]
    finished_at: float | None
    #: The task's delivery state as read (``None`` if the event came in its message).
    delivery: str | None = None

    @classmethod
    def of(cls, task: Task) -> Event:
        assert task.callback_id is not None
        data = task.to_public()
        data["callback"]["delivery"] = "delivered"
        return cls(task.task_id, task.callback_id, task.status, data, task.finished_at,
                   task.delivery)

    def body(self) -> dict[str, Any]:
        return {"type": EVENT_TYPES[self.status], "timestamp": isoformat(time.time()),
                "data": self.data}

    def in_message(self) -> dict[str, Any] | None:
        """The event as its delivery message carries it, or ``None`` if it is too large."""
        if len(orjson.dumps(self.data)) > EVENT_IN_MESSAGE_BYTES:
            return None
        return {"data": self.data, "finished": self.finished_at}

    @classmethod
    def from_message(cls, task_id: str, callback_id: str, carried: dict[str, Any]) -> Event:
        data = carried["data"]
        return cls(task_id, callback_id, data["status"], data, carried["finished"])
