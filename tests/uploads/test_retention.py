"""Retention of uploads, against a real Redis and a file:// store."""
from __future__ import annotations

from pathlib import Path

import pytest
import redis as redis_lib

from hookline import keys
from hookline.blobs.files import FileBlobStore
from hookline.upload_retention import RECHECK_AFTER, sweep_expired
from hookline.uploads import Upload, UploadStore

DAY = 86400.0


@pytest.fixture
def store(redis: redis_lib.Redis) -> UploadStore:
    return UploadStore(redis)


@pytest.fixture
def blobs(tmp_path: Path) -> FileBlobStore:
    return FileBlobStore(tmp_path)


def upload_with_bytes(store: UploadStore, blobs: FileBlobStore) -> Upload:
    upload = store.create("acme", 8, "f32", dimension=2, rows=1)
    blobs.append(upload.blob_key, 0, [b"\0" * 8])
    return upload


def test_only_uploads_older_than_the_ttl_go(store: UploadStore, blobs: FileBlobStore) -> None:
    old, new = upload_with_bytes(store, blobs), upload_with_bytes(store, blobs)
    store.redis.zadd("hl:uploads:created", {old.id: old.created - 2 * DAY})
    assert sweep_expired(store, blobs, DAY, now=new.created + 10) == 1
    assert store.get(old.id) is None and blobs.size(old.blob_key) == 0
    assert store.get(new.id) is not None and blobs.size(new.blob_key) == 8


def test_an_upload_being_written_waits_for_the_next_sweep(store: UploadStore,
                                                          blobs: FileBlobStore) -> None:
    upload = upload_with_bytes(store, blobs)
    token = store.lock(upload.id)
    assert token is not None
    assert sweep_expired(store, blobs, DAY, now=upload.created + 2 * DAY) == 0
    store.unlock(upload.id, token)
    assert sweep_expired(store, blobs, DAY, now=upload.created + 2 * DAY) == 1


def test_an_upload_stays_while_a_task_that_reads_it_is_readable(
        store: UploadStore, blobs: FileBlobStore, redis: redis_lib.Redis) -> None:
    # Given an upload that two tasks read, one of them still readable
    upload = upload_with_bytes(store, blobs)
    store.pin(upload.id, "task-a")
    store.pin(upload.id, "task-b")
    redis.hset(keys.task("task-b"), "status", "SUCCESS")
    later = upload.created + 2 * DAY
    # Then the sweep keeps it, and looks again a day later
    assert sweep_expired(store, blobs, DAY, now=later) == 0
    assert store.get(upload.id) is not None
    assert redis.zscore("hl:uploads:created", upload.id) == pytest.approx(later - DAY + RECHECK_AFTER)
    assert sweep_expired(store, blobs, DAY, now=later + 60) == 0
    # When that task's record expires, the next look deletes the upload and its task set
    redis.delete(keys.task("task-b"))
    assert sweep_expired(store, blobs, DAY, now=later + RECHECK_AFTER + 1) == 1
    assert store.get(upload.id) is None and blobs.size(upload.blob_key) == 0
    assert not redis.exists(f"hl:upload:{upload.id}:tasks")
