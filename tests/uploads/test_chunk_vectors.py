"""A chunk's vectors go in pieces and with its end: once, never for a task that is stopping,
and every piece is found by a failed job's removal."""
from __future__ import annotations

import time

import numpy as np
import redis as redis_lib

from hookline import keys
from hookline import vector_collections as colls
from hookline.task_chunks import CANCELLED, REFUSED, STOPPED, WRITTEN, ChunkLedger
from hookline.vector_collections import Collection
from hookline.vectorrecords import vector_key
from hookline.vectorstore import JobWrite, VectorStore


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


def pieces_of(store: VectorStore, collection: Collection, task_id: str, rows: np.ndarray,
              ids: list[str] | None, first_row: int, total: int) -> list[JobWrite]:
    """A chunk's vectors in pieces of two."""
    return store.prepare_pieces(collection, task_id, rows, ids, first_row=first_row, total=total,
                                piece=2)


def test_a_chunk_killed_after_some_pieces_and_run_again_counts_each_vector_once(
        redis: redis_lib.Redis) -> None:
    store, ledger = VectorStore(redis), ChunkLedger(redis, ended_ttl=60)
    collection = store.collections.ensure("acme", "c", 3)
    started(redis, "t5", ch_total="1")
    rows = np.eye(3, dtype=np.float32)[[0, 1, 2, 0, 1]]
    pieces = pieces_of(store, collection, "t5", rows, list("abcde"), 0, 5)
    assert [p.rows_to for p in pieces] == [2, 4, 5]
    # The first run writes two pieces and is killed before its end
    assert [ledger.write_piece("t5", 0, p) for p in pieces[:2]] == [WRITTEN, WRITTEN]
    assert store.collections.stats("acme", "c")["count"] == 4
    # The run again writes every piece and ends
    assert [ledger.write_piece("t5", 0, p) for p in pieces[:2]] == [WRITTEN, WRITTEN]
    assert ledger.end("t5", 0, "success", rows=5, now=time.time(), vectors=pieces[2]).last
    stats = store.collections.stats("acme", "c")
    assert stats["count"] == 5
    assert redis.hget(colls.stats_key("acme", "c"), "b") == str(
        sum(len(r) for r in store.fetch_raw(collection, store.task_keys(collection, "t5")) if r)
    ).encode()
    assert sorted(store.task_keys(collection, "t5")) == sorted(vector_key(i) for i in "abcde")
    # Its ended chunk takes no more pieces
    assert ledger.write_piece("t5", 0, pieces[0]) == STOPPED


def test_a_failed_job_removes_the_pieces_of_a_chunk_that_never_ended(
        redis: redis_lib.Redis) -> None:
    store, ledger = VectorStore(redis), ChunkLedger(redis, ended_ttl=60)
    collection = store.collections.ensure("acme", "c", 2)
    for task_id, ids in (("t6", None), ("t7", ["x1", "x2", "x3", "x4"])):
        started(redis, task_id)
        pieces = pieces_of(store, collection, task_id, np.ones((4, 2), np.float32), ids, 4, 8)
        assert ledger.write_piece(task_id, 1, pieces[0]) == WRITTEN
        # Chunk 1 fails after its first piece: the job's ending deletes by task
        ledger.end(task_id, 1, "failure", error="chunk 1: bad row", now=time.time())
        assert store.delete_task(collection, task_id) == 2
    stats = store.collections.stats("acme", "c")
    assert stats["count"] == 0
    assert redis.hget(colls.stats_key("acme", "c"), "b") == b"0"


def test_a_piece_is_not_written_for_a_cancelled_task_or_a_changed_collection(
        redis: redis_lib.Redis) -> None:
    store, ledger = VectorStore(redis), ChunkLedger(redis, ended_ttl=60)
    collection = store.collections.ensure("acme", "c", 2)
    rows = np.ones((4, 2), np.float32)
    started(redis, "t8", cancel="1")
    assert ledger.write_piece("t8", 0, pieces_of(store, collection, "t8", rows, None, 0, 4)[0]) == CANCELLED
    started(redis, "t9")
    store.drop("acme", "c")
    store.collections.ensure("acme", "c", 2)
    # The collection made again: not the one the piece was encoded for
    assert ledger.write_piece("t9", 0, pieces_of(store, collection, "t9", rows, None, 0, 4)[0]) == REFUSED
    redis.hset(keys.task("t9"), "status", "FAILURE")
    fresh = store.collections.get("acme", "c")
    assert fresh is not None
    assert ledger.write_piece("t9", 0, pieces_of(store, fresh, "t9", rows, None, 0, 4)[0]) == STOPPED
    assert store.collections.stats("acme", "c")["count"] == 0
