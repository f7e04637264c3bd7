"""Retention: an upload that no task uses is deleted after ``HOOKLINE_UPLOAD_TTL``.

``sweep_expired`` deletes the blob, then the record, of every such upload
older than the time to live. ``RetentionSweeper`` runs it now and then in a
background thread of whichever process calls ``maybe_run`` (the web, on
upload requests; a worker's upkeep may call it too), and a Redis lock lets
one process at a time sweep.
"""
from __future__ import annotations

import logging
import threading
import time

from hookline.blobs import BlobError, BlobStore
from hookline.redis import UNAVAILABLE
from hookline.uploads import SWEEP_LOCK_KEY, UPLOADS_INDEX, UploadStore

log = logging.getLogger("hookline.uploads")

#: Uploads looked at per sweep.
SWEEP_BATCH = 200
#: Longest time between two sweeps, in seconds (shorter for short time to live).
SWEEP_INTERVAL = 60.0


def sweep_expired(store: UploadStore, blobs: BlobStore, ttl: float, now: float | None = None) -> int:
    """Delete uploads created more than ``ttl`` seconds ago that no task uses.

    An upload being written right now (its lock is held) waits for the next
    sweep. An upload that a task reads leaves the index: the task's own
    expiry deletes it. Returns how many were deleted.

    Raises:
        BlobError: the blob store failed (the record is kept for the next sweep).
    """
    cutoff = (time.time() if now is None else now) - ttl
    removed = 0
    for upload_id in store.created_before(cutoff, SWEEP_BATCH):
        upload = store.get(upload_id)
        if upload is not None and upload.task:
            store.redis.zrem(UPLOADS_INDEX, upload_id)
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
    """Runs ``sweep_expired`` at most once per interval, across all processes."""

    def __init__(self, store: UploadStore, blobs: BlobStore, ttl: float) -> None:
        self.store = store
        self.blobs = blobs
        self.ttl = ttl
        # At least twice per time to live, so nothing outlives it by half.
        self.interval = min(SWEEP_INTERVAL, max(0.5, ttl / 2))
        self._due = 0.0
        self._guard = threading.Lock()
        self._running: threading.Thread | None = None

    def maybe_run(self) -> None:
        """Start a sweep in the background if one is due; never raises."""
        now = time.monotonic()
        if now < self._due or not self._guard.acquire(blocking=False):
            return
        try:
            if now < self._due or (self._running is not None and self._running.is_alive()):
                return
            self._due = now + self.interval
            thread = threading.Thread(target=self._run, name="hookline-upload-sweep", daemon=True)
            self._running = thread
            thread.start()
        finally:
            self._guard.release()

    def _run(self) -> None:
        try:
            if not self.store.redis.set(SWEEP_LOCK_KEY, "1", nx=True,
                                        px=int(self.interval * 1000 * 0.9)):
                return
            sweep_expired(self.store, self.blobs, self.ttl)
        except UNAVAILABLE:
            log.warning("upload sweep skipped: Redis unavailable")
        except BlobError as exc:
            log.warning("upload sweep stopped: %s", exc)
        except Exception:
            log.exception("upload sweep failed")
