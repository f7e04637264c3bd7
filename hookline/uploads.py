"""Upload records: small hashes in Redis that point at bytes in the blob store.

A record holds the owner tenant, the upload's length, how many bytes are
stored (``offset``), the format (``npy`` or ``f32``), the layout once known
(rows, dimension, dtype, where the values start), the state and the creation
time. The bytes are never in Redis.

One writer at a time: a PATCH takes the upload's lock (a Redis key with a
token and a time to live, renewed while it streams) before it writes, and
records its new offset with a compare-and-set that checks both the lock's
token and the offset it started from. A second PATCH on the same upload is
refused while the first runs; one that lost its lock (stalled past the time
to live) cannot record its bytes.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import redis

from hookline import keys, scripts
from hookline.ids import new_id

#: ``ids``: a job's vector ids, UTF-8, one a line (``hookline/upload_ids.py``).
IDS = "ids"
FORMATS = ("npy", "f32", IDS)
OPEN = "open"
COMPLETE = "complete"
#: Milliseconds a writer's lock lives unless renewed.
LOCK_TTL_MS = 30_000


@dataclass(frozen=True)
class Upload:
    id: str
    owner: str
    length: int
    offset: int
    format: str
    state: str
    created: float
    #: Known at creation for ``f32``, from the header for ``npy`` (0 until then).
    dimension: int = 0
    rows: int = 0
    dtype: str = "<f4"
    data_offset: int = 0
    #: The task that reads this upload, once one does.
    task: str = ""

    @property
    def blob_key(self) -> str:
        return f"uploads/{self.id}"

    @property
    def complete(self) -> bool:
        return self.state == COMPLETE

    @classmethod
    def from_record(cls, upload_id: str, raw: dict[bytes, bytes]) -> "Upload":
        text = {k.decode(): v.decode() for k, v in raw.items()}
        return cls(
            id=upload_id, owner=text["owner"], length=int(text["length"]),
            offset=int(text["offset"]), format=text["format"], state=text["state"],
            created=float(text["created"]), dimension=int(text.get("dimension", 0)),
            rows=int(text.get("rows", 0)), dtype=text.get("dtype", "<f4"),
            data_offset=int(text.get("data_offset", 0)), task=text.get("task", ""),
        )


class UploadStore:
    """Creates, reads, locks, advances and deletes upload records."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._renew = scripts.register(client, "hookline", "upload_renew")
        self._release = scripts.register(client, "hookline", "upload_release")
        self._advance = scripts.register(client, "hookline", "upload_advance")

    def create(self, owner: str, length: int, fmt: str, *, dimension: int = 0,
               rows: int = 0) -> Upload:
        """Record a new, empty upload and return it."""
        upload = Upload(id=new_id("up"), owner=owner, length=length, offset=0, format=fmt,
                        state=OPEN, created=time.time(), dimension=dimension, rows=rows)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(keys.upload(upload.id), mapping={
            "owner": owner, "length": length, "offset": 0, "format": fmt, "state": OPEN,
            "created": repr(upload.created), "dimension": dimension, "rows": rows,
            "dtype": upload.dtype, "data_offset": 0,
        })
        pipe.zadd(keys.UPLOADS_INDEX, {upload.id: upload.created})
        pipe.execute()
        return upload

    def get(self, upload_id: str, owner: str | None = None) -> Upload | None:
        """The upload, or ``None`` if there is none (or ``owner`` does not own it)."""
        if not upload_id or len(upload_id) > 64:
            return None
        raw = self.redis.hgetall(keys.upload(upload_id))
        if not raw or b"owner" not in raw:
            return None
        upload = Upload.from_record(upload_id, raw)
        if owner is not None and upload.owner != owner:
            return None
        return upload

    def lock(self, upload_id: str) -> str | None:
        """Take the upload's lock; its token, or ``None`` if another holds it."""
        token = secrets.token_hex(16)
        if self.redis.set(keys.upload_lock(upload_id), token, nx=True, px=LOCK_TTL_MS):
            return token
        return None

    def renew(self, upload_id: str, token: str) -> bool:
        """Extend the lock; ``False`` if it is no longer this token's."""
        return bool(self._renew(keys=[keys.upload_lock(upload_id)], args=[token, LOCK_TTL_MS]))

    def unlock(self, upload_id: str, token: str) -> None:
        self._release(keys=[keys.upload_lock(upload_id)], args=[token])

    def advance(self, upload: Upload, token: str, new_offset: int, **fields: str | int) -> int:
        """Record ``new_offset`` if the lock and the offset are still as expected.

        Returns 1 on success, -1 if the lock was lost, -2 if the offset moved,
        -3 if the upload is gone.
        """
        args: list[str | int] = [token, upload.offset, new_offset]
        for name, value in fields.items():
            args += [name, value]
        return int(self._advance(keys=[keys.upload(upload.id), keys.upload_lock(upload.id)], args=args))

    def pin(self, upload_id: str, task_id: str) -> None:
        """Note that ``task_id`` reads the upload, so retention keeps it for the task.

        The submit step of a task from an upload makes the same two writes
        in its own transaction (docs/large-jobs.md, section 2).
        """
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(keys.upload(upload_id), "task", task_id)
        pipe.sadd(keys.upload_tasks(upload_id), task_id)
        pipe.execute()

    def tasks_of(self, upload_id: str) -> list[str]:
        return sorted(member.decode() for member in self.redis.smembers(keys.upload_tasks(upload_id)))

    def mark_complete(self, upload_id: str) -> None:
        self.redis.hset(keys.upload(upload_id), "state", COMPLETE)

    def forget(self, upload_id: str) -> None:
        """Delete the record (the caller deletes the blob first)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(keys.upload(upload_id), keys.upload_tasks(upload_id))
        pipe.zrem(keys.UPLOADS_INDEX, upload_id)
        pipe.execute()

    def created_before(self, cutoff: float, limit: int) -> list[str]:
        """Ids of uploads created before ``cutoff`` (Unix seconds), oldest first."""
        rows = self.redis.zrangebyscore(keys.UPLOADS_INDEX, "-inf", cutoff, start=0, num=limit)
        return [row.decode() for row in rows]
