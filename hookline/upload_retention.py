"""Retention: an upload that no task uses is deleted after ``HOOKLINE_UPLOAD_TTL``.

An upload that tasks read stays while any of their records does (a record
expires ``HOOKLINE_RESULT_TTL`` after its task ends), then goes too.

``sweep_expired`` deletes the blob, then the record, of every such upload
older than the time to live. ``RetentionSweeper`` runs it periodically in a
background thread of each process that starts it (each web process, from its
first upload request; a worker's upkeep may call ``run_once`` too), and a
Redis lock lets one process at a time sweep.
"""
from __future__ import annotations

import logging
import threading
import time

from hookline import keys
from hookline.blobs import BlobError, BlobStore
from hookline.redis_client import UNAVAILABLE
from hookline.task_store import any_record
from hookline.uploads import UploadStore

log = logging.getLogger("hookline.uploads")

#: Uploads looked at per sweep.
SWEEP_BATCH = 200
#: Seconds before an upload that a readable task still uses is looked at again.
RECHECK_AFTER = 86400.0
#: Longest time between two sweeps, in seconds (shorter for short time to live).
SWEEP_INTERVAL = 60.0


def sweep_expired(store: UploadStore, blobs: BlobStore, ttl: float, now: float | None = None) -> int:
    """Delete uploads created more than ``ttl`` seconds ago that no readable task uses.

    An upload being written right now (its lock is held) waits for the next
    sweep. An upload that a task with a record still reads is looked at
    again ``RECHECK_AFTER`` seconds later. Returns how many were deleted.

    Raises:
        BlobError: the blob store failed (the record is kept for the next sweep).
    """
    now = time.time() if now is None else now
    removed = 0
    for upload_id in store.created_before(now - ttl, SWEEP_BATCH):
        upload = store.get(upload_id)
        if upload is not None and upload.task:
            readers = store.tasks_of(upload_id)
            if any_record(store.redis, readers):
                store.redis.zadd(keys.UPLOADS_INDEX, {upload_id: now - ttl + RECHECK_AFTER})
                continue
        token = store.lock(upload_id)
        if token is None:
            continue
        try:
            blobs.delete(upload.blob_key if upload is not None else f"uploads/{upload_id}")
            store.forget(upload_id)
            removed += 1
        finally:
            store.unlock(upload_id, token)
    if removed:
        log.info("expired uploads deleted", extra={"count": removed})
    return removed


class RetentionSweeper:
    """Runs ``sweep_expired`` every interval in a background thread.

    The thread starts with the first call to ``start`` in a process; a Redis
    lock lets one process at a time sweep, so many processes sweep no more
    often than one would.
    """

    def __init__(self, store: UploadStore, blobs: BlobStore, ttl: float) -> None:
        self.store = store
        self.blobs = blobs
        self.ttl = ttl
        # At least twice per time to live, so nothing outlives it by half.
        self.interval = min(SWEEP_INTERVAL, max(0.5, ttl / 2))
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None
        self.stopping = threading.Event()

    def start(self) -> None:
        """Start the sweeping thread unless it runs already; cheap to call often."""
        if self._thread is not None and self._thread.is_alive():
            return
        with self._guard:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="hookline-upload-sweep",
                                                daemon=True)
                self._thread.start()

    def stop(self) -> None:
        self.stopping.set()

    def _loop(self) -> None:
        while not self.stopping.wait(self.interval):
            self.run_once()

    def run_once(self) -> int:
        """One sweep if no other process swept within the interval; never raises."""
        try:
            if not self.store.redis.set(keys.UPLOADS_SWEEP_LOCK, "1", nx=True,
                                        px=int(self.interval * 1000 * 0.9)):
                return 0
            return sweep_expired(self.store, self.blobs, self.ttl)
        except UNAVAILABLE:
            log.warning("upload sweep skipped: Redis unavailable")
        except BlobError as exc:
            log.warning("upload sweep stopped: %s", exc)
        except Exception:
            log.exception("upload sweep failed")
        return 0
