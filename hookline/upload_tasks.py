"""Tasks whose vectors are in an upload: their record, written with the upload pinned.

The record has the fields of an inline task's (``hookline.tasks``) but no
payload: ``upload`` names the upload instead, and ``total`` / ``dim`` come
from it. One Lua step writes the record, the tenant's index entry, the
active entry and the broker message, and pins the upload to the task
(``hookline.uploads``), so the upload cannot be deleted or swept once the
task is accepted.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import redis

from hookline.tasks import ACTIVE_KEY, PENDING, QueuedMessage, index_key, task_key
from hookline.uploads import Upload, upload_key, upload_tasks_key

#: The record's field that names the upload a task reads.
UPLOAD_FIELD = "upload"

# KEYS: task, tenant index, active, queue, upload record, upload's task set
# ARGV: task id, now, message, field, value, ...
# Returns 1, or 0 when the upload is gone (deleted or swept since it was read).
_SUBMIT_LUA = """
if redis.call('EXISTS', KEYS[5]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('LPUSH', KEYS[4], ARGV[3])
redis.call('HSET', KEYS[5], 'task', ARGV[1])
redis.call('SADD', KEYS[6], ARGV[1])
return 1
"""


class UploadTasks:
    """Writes tasks that read an upload."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._submit = client.register_script(_SUBMIT_LUA)

    def submit(self, *, task_id: str, tenant: str, upload: Upload, metadata_json: bytes,
               collection: str, callback: tuple[str, str] | None, message: QueuedMessage,
               extra: Sequence[tuple[str, bytes, int]] = (), now: float | None = None) -> bool:
        """Write the task, its message and the upload's pin in one step.

        ``extra`` holds ``SET key value EX ttl`` writes of the same request
        (the idempotency record), made in the same transaction. Returns
        ``False``, writing nothing, if the upload is gone.
        """
        now = time.time() if now is None else now
        # The same fields as TaskStore.submit writes, with the upload in place
        # of the payload; the two belong in one submit step (docs/large-jobs.md).
        record: dict[str, Any] = {
            "tenant": tenant, "status": PENDING, "created": repr(now), "total": upload.rows,
            "dim": upload.dimension, "meta": metadata_json, UPLOAD_FIELD: upload.id,
        }
        if collection != "default":
            record["coll"] = collection
        if callback:
            record["cb"], record["cburl"] = callback
            record["delivery"] = "pending"
        pairs = [item for field in record.items() for item in field]
        keys = [task_key(task_id), index_key(tenant), ACTIVE_KEY, message.list_key,
                upload_key(upload.id), upload_tasks_key(upload.id)]
        args = [task_id, repr(now), message.data, *pairs]
        if not extra:
            return bool(self._submit(keys=keys, args=args))
        pipe = self.redis.pipeline(transaction=True)
        self._submit(keys=keys, args=args, client=pipe)
        for key, value, ttl in extra:
            pipe.set(key, value, ex=ttl)
        written = pipe.execute()[0]
        if not written:
            # The upload went between the read and the write: the answer
            # that was stored with it must not stand.
            self.redis.delete(*(key for key, _, _ in extra))
        return bool(written)

    def upload_of(self, task_id: str) -> str | None:
        """The upload a task reads, or ``None`` for an inline task."""
        raw = self.redis.hget(task_key(task_id), UPLOAD_FIELD)
        return raw.decode() if raw else None
