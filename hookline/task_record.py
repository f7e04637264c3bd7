"""A task record: its statuses, the ``Task`` the API and actors see, and its decoding.

The record is the hash ``hl:task:{id}`` (``hookline.keys.task``). Its ``v``
field says which record format wrote it (``FORMAT_VERSION``); a record
without one was written before formats were numbered and reads as format 1.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from hookline.ids import isoformat

PENDING, STARTED, RETRY = "PENDING", "STARTED", "RETRY"
SUCCESS, FAILURE, REVOKED = "SUCCESS", "FAILURE", "REVOKED"
TERMINAL = frozenset({SUCCESS, FAILURE, REVOKED})
STATUSES = (PENDING, STARTED, RETRY, SUCCESS, FAILURE, REVOKED)

#: The record format this code writes and the newest it can read. A worker
#: that meets a newer one leaves the task to a worker that can run it.
FORMAT_VERSION = 1
#: The record's field that names its format.
VERSION_FIELD = "v"

#: The record's field that holds the job's vectors until the task ends.
PAYLOAD_FIELD = "payload"
#: The record's field that holds a job's vector ids (JSON; empty for none)
#: until the task ends. A record without it was written before the ids moved
#: into it, and its ids (if any) are under their own key (``keys.job_ids``).
IDS_FIELD = "ids"
#: The record's field that names the upload holding a large job's vectors.
UPLOAD_FIELD = "upload"

#: The collection name of a job sent with ``"index": false``: its vectors are
#: processed and summarised but go into no collection (no collection can be
#: named this way).
NOT_INDEXED = ""

#: The fields of a record that ``Task`` shows: what a read takes instead of
#: the whole hash, which holds the payload until the task ends.
RECORD_FIELDS = (b"tenant", b"status", b"created", b"started", b"finished", b"attempts", b"done",
                 b"total", b"dim", b"result", b"error", b"meta", b"cb", b"cburl", b"delivery",
                 b"coll", b"cancel", VERSION_FIELD.encode(), b"ch_total", b"ch_done", b"ch_failed")


class RecordError(Exception):
    """A task record that this code cannot read: corrupted, or a newer format."""

    def __init__(self, task_id: str, reason: str) -> None:
        super().__init__(f"task {task_id}: {reason}")
        self.task_id = task_id
        self.reason = reason


@dataclasses.dataclass
class Task:
    """A task record as the API and the actors see it."""

    task_id: str
    tenant: str
    status: str
    created_at: float
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = 0
    done: int = 0
    total: int = 0
    dimension: int = 0
    result: dict[str, Any] | None = None
    error: str | None = None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)
    callback_id: str | None = None
    callback_url: str | None = None
    delivery: str | None = None
    collection: str = "default"
    cancel_requested: bool = False
    #: A job from an upload runs as chunks: ``(done, failed, total)``; ``None`` otherwise.
    chunks: tuple[int, int, int] | None = None
    #: Set on a claimed run only: the job's ids as sent (JSON), ``b""`` for
    #: none, ``None`` for a record from before they moved into it.
    job_ids: bytes | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    @property
    def indexed(self) -> bool:
        """Whether the job's vectors go into a collection (``"index"`` was not ``false``)."""
        return self.collection != NOT_INDEXED

    def to_public(self) -> dict[str, Any]:
        """The body of ``GET /tasks/{id}`` (and the ``data`` of its webhook)."""
        body: dict[str, Any] = {"task_id": self.task_id, "status": self.status}
        if self.status == SUCCESS:
            body["result"] = self.result
        if self.error is not None and self.status in (FAILURE, REVOKED, RETRY):
            body["error"] = self.error
        body.update(
            created_at=isoformat(self.created_at),
            started_at=isoformat(self.started_at),
            finished_at=isoformat(self.finished_at),
            attempts=self.attempts,
            progress={"done": self.done, "total": self.total},
            **({"chunks": dict(zip(("done", "failed", "total"), self.chunks))} if self.chunks else {}),
            metadata=self.metadata,
            callback=(
                {"id": self.callback_id, "url": self.callback_url, "delivery": self.delivery}
                if self.callback_id
                else None
            ),
        )
        return body

    def etag(self) -> str:
        digest = hashlib.blake2b(orjson.dumps(self.to_public()), digest_size=12).digest()
        return '"' + base64.urlsafe_b64encode(digest).decode().rstrip("=") + '"'


def _float(value: bytes | None) -> float | None:
    return float(value) if value else None


def format_of(raw: Mapping[bytes, bytes]) -> int | None:
    """The record's format version, or ``None`` if its ``v`` field is not a number."""
    value = raw.get(VERSION_FIELD.encode())
    if value is None:
        return 1
    try:
        return int(value)
    except ValueError:
        return None


def decode(task_id: str, raw: Mapping[bytes, bytes]) -> Task:
    """The task in ``raw`` (its record's fields).

    Raises:
        RecordError: the record is of a format this code does not know, or
            a field does not hold what its format says (a hand edit).
    """
    version = format_of(raw)
    if version is None or version > FORMAT_VERSION:
        raise RecordError(task_id, f"record format {raw.get(b'v')!r} is not one this version reads")
    get = raw.get
    try:
        result = get(b"result")
        meta = get(b"meta")
        status = raw[b"status"].decode()
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        return Task(
            task_id=task_id,
            tenant=raw[b"tenant"].decode(),
            status=status,
            created_at=float(raw[b"created"]),
            started_at=_float(get(b"started")),
            finished_at=_float(get(b"finished")),
            attempts=int(get(b"attempts") or 0),
            done=int(get(b"done") or 0),
            total=int(get(b"total") or 0),
            dimension=int(get(b"dim") or 0),
            result=orjson.loads(result) if result else None,
            error=get(b"error", b"").decode() or None,
            metadata=orjson.loads(meta) if meta else {},
            callback_id=get(b"cb", b"").decode() or None,
            callback_url=get(b"cburl", b"").decode() or None,
            delivery=get(b"delivery", b"").decode() or None,
            collection=get(b"coll", b"default").decode(),
            cancel_requested=get(b"cancel") == b"1",
            chunks=((int(get(b"ch_done") or 0), int(get(b"ch_failed") or 0), int(raw[b"ch_total"]))
                    if b"ch_total" in raw else None),
        )
    except (KeyError, ValueError, UnicodeDecodeError, orjson.JSONDecodeError) as exc:
        raise RecordError(task_id, f"unreadable record ({type(exc).__name__})") from exc


def decode_present(task_id: str, raw: Mapping[bytes, bytes]) -> Task | None:
    """The task in ``raw``, or ``None`` if it holds no record (expired or never written).

    Raises:
        RecordError: as ``decode``.
    """
    if not raw or b"status" not in raw:
        return None
    return decode(task_id, raw)


def present_fields(values: Sequence[bytes | None]) -> dict[bytes, bytes]:
    """``HMGET``'s answer for ``RECORD_FIELDS`` as a mapping of the fields present."""
    return {name: value for name, value in zip(RECORD_FIELDS, values) if value is not None}
