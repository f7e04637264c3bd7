"""A chunk's vectors go in with its end: once, and never for a task that is stopping."""
from __future__ import annotations

import time

import numpy as np
import redis as redis_lib

from hookline import keys
from hookline.task_chunks import ChunkLedger
from hookline.vectorstore import VectorStore


def started(redis: redis_lib.Redis, task_id: str, **fields: str) -> None:
    redis.hset(keys.task(task_id), mapping={"status": "STARTED", "ch_total": 2, "ch_done": 0,
                                            "ch_failed": 0, "ch_revoked": 0, **fields})


def test_a_chunk_ended_twice_writes_its_vectors_once_and_adds_its_ids(redis: redis_lib.Redis) -> None:
    store, ledger = VectorStore(redis), ChunkLedger(redis, ended_ttl=60)
    collection = store.collections.ensure("acme", "c", 3)
    started(redis, "t1")
    rows = np.eye(3, dtype=np.float32)[[0, 1, 2, 0]]
    first = store.prepare(collection, "t1", rows[:2], ["a", "b"], first_row=0, total=4)
    second = store.prepare(collection, "t1", rows[2:], ["c", "d"], first_row=2, total=4)
    now = time.time()
    assert ledger.end("t1", 0, "success", rows=2, now=now, vectors=first).first
    # A chunk run again (its message redelivered) counts and writes nothing
    assert not ledger.end("t1", 0, "success", rows=2, now=now, vectors=first).first
    assert ledger.end("t1", 1, "success", rows=2, now=now, vectors=second).last
    assert store.collections.stats("acme", "c")["count"] == 4
    assert sorted(r.id for r in store.task_records(collection, "t1")) == ["a", "b", "c", "d"]
    assert store.delete_task(collection, "t1") == 4


def test_default_ids_use_the_jobs_row_and_cover_every_chunk(redis: redis_lib.Redis) -> None:
    store, ledger = VectorStore(redis), ChunkLedger(redis, ended_ttl=60)
    collection = store.collections.ensure("acme", "c", 2)
    started(redis, "t2")
    write = store.prepare(collection, "t2", np.ones((3, 2), np.float32), None, first_row=5, total=8)
    ledger.end("t2", 1, "success", rows=3, now=time.time(), vectors=write)
    assert store.get(collection, "t2:7") is not None and store.get(collection, "t2:0") is None
    assert len(store.task_keys(collection, "t2")) == 8


def test_nothing_is_written_for_a_cancelled_task_or_a_changed_collection(
        redis: redis_lib.Redis) -> None:
    store, ledger = VectorStore(redis), ChunkLedger(redis, ended_ttl=60)
    collection = store.collections.ensure("acme", "c", 2)
    started(redis, "t3", cancel="1")
    write = store.prepare(collection, "t3", np.ones((2, 2), np.float32), None, first_row=0, total=4)
    assert ledger.end("t3", 0, "success", rows=2, now=time.time(), vectors=write).first
    assert store.collections.stats("acme", "c")["count"] == 0
    # The collection made again with another dimension: refused, not counted
    started(redis, "t4")
    store.drop("acme", "c")
    store.collections.ensure("acme", "c", 5)
    end = ledger.end("t4", 0, "success", rows=2, now=time.time(),
                     vectors=store.prepare(collection, "t4", np.ones((2, 2), np.float32), None,
                                           first_row=0, total=4))
    assert end.refused and ledger.ended("t4") == set()
    assert store.collections.stats("acme", "c")["count"] == 0
