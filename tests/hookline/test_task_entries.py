"""A task's entry in its collection: which vectors it wrote, read the same before and after."""
from __future__ import annotations

import time

import numpy as np
import redis as redis_lib

from hookline import keys
from hookline.task_chunks import ChunkLedger
from hookline.task_entries import count_entry, entry_keys, names_entry
from hookline.vectorrecords import default_id, vector_key
from hookline.vectorstore import VectorStore


def defaults(task_id: str, count: int) -> list[int]:
    return [vector_key(default_id(task_id, row)) for row in range(count)]


def test_entries_name_their_vectors_whatever_the_ids_hold() -> None:
    assert entry_keys("t", count_entry(3)) == defaults("t", 3)
    odd = ["#1", "#2", "two\nlines", "é"]
    assert entry_keys("t", names_entry(odd)) == [vector_key(name) for name in odd]


def test_entries_written_before_the_format_was_tagged_still_read() -> None:
    assert entry_keys("t", b"a\nb") == [vector_key("a"), vector_key("b")]
    assert entry_keys("t", b"#1\n#2") == [vector_key("#1"), vector_key("#2")]
    # "#3" was a count, or the one id of a job: both are read
    assert entry_keys("t", b"#3") == [vector_key("#3"), *defaults("t", 3)]


def test_chunks_add_their_ids_to_an_entry_of_either_format(redis: redis_lib.Redis) -> None:
    store, ledger = VectorStore(redis), ChunkLedger(redis, ended_ttl=60)
    collection = store.collections.ensure("acme", "c", 2)
    redis.hset(keys.task("t1"), mapping={"status": "STARTED", "ch_total": 3, "ch_done": 0,
                                         "ch_failed": 0, "ch_revoked": 0})
    rows = np.eye(2, dtype=np.float32)
    # Given chunk 0's ids written before the upgrade, as the older code did
    ledger.end("t1", 0, "success", rows=2, now=time.time(), vectors=store.prepare(
        collection, "t1", rows, ["#a", "#b"], first_row=0, total=6))
    redis.hset(keys.collection_tasks("acme", "c"), "t1", b"#a\n#b")
    # When the other chunks end
    for k, ids in ((1, ["#c", "#d"]), (2, ["e\nf", "#g"])):
        ledger.end("t1", k, "success", rows=2, now=time.time(), vectors=store.prepare(
            collection, "t1", rows, ids, first_row=2 * k, total=6))
    # Then the task's vectors are found and deleted by task, all six
    assert sorted(r.id for r in store.task_records(collection, "t1")) == [
        "#a", "#b", "#c", "#d", "#g", "e\nf"]
    assert store.delete_task(collection, "t1") == 6
    assert store.collections.stats("acme", "c")["count"] == 0
