"""Chunks of a large job: byte ranges, reading only them, and the ledger's one ending."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import replace

import numpy as np
import pytest
import redis as redis_lib

from hookline import keys
from hookline.blobs import BlobStore
from hookline.blobs.files import FileBlobStore
from hookline.task_chunks import ChunkLedger, ChunkOutcome, ChunkPlan, InvalidChunk, read_chunk
from hookline.task_store import QueuedMessage
from hookline.uploads import COMPLETE, Upload
from tests.uploads.tus import npy_bytes


def upload_of(array: np.ndarray, data_offset: int) -> Upload:
    return Upload(id="up_x", owner="acme", length=0, offset=0, format="npy", state=COMPLETE,
                  created=0.0, dimension=array.shape[1], rows=array.shape[0],
                  dtype=array.dtype.str, data_offset=data_offset)


def test_a_plan_covers_every_row_once_in_contiguous_ranges() -> None:
    plan = ChunkPlan(rows=25_001, dimension=384, dtype="<f4", data_offset=128, chunk_vectors=10_000)
    chunks = list(plan)
    assert [c.rows for c in chunks] == [10_000, 10_000, 5_001]
    assert chunks[0].start == 128
    for before, after in zip(chunks, chunks[1:]):
        assert before.start + before.length == after.start
        assert before.first_row + before.rows == after.first_row
    assert chunks[-1].start + chunks[-1].length == 128 + 25_001 * 384 * 4
    with pytest.raises(IndexError):
        plan.chunk(3)
    with pytest.raises(ValueError):
        ChunkPlan.for_upload(replace(upload_of(np.zeros((2, 2), "<f4"), 128), state="open"), 10)


class CountingStore(FileBlobStore):
    """A real file store that also notes every range read from it."""

    def __init__(self, root: object) -> None:
        super().__init__(root)  # type: ignore[arg-type]
        self.ranges: list[tuple[int, int]] = []

    def read(self, key: str, start: int, length: int) -> bytes:
        self.ranges.append((start, length))
        return super().read(key, start, length)


def test_each_chunk_reads_only_its_own_byte_range(tmp_path: object) -> None:
    array = np.random.default_rng(3).standard_normal((2_500, 8)).astype("<f8")
    data = npy_bytes(array)
    store = CountingStore(tmp_path)
    store.put("uploads/up_x", [data])
    plan = ChunkPlan.for_upload(upload_of(array, len(data) - array.nbytes), chunk_vectors=1_000)
    rows = [read_chunk(store, "uploads/up_x", plan, chunk) for chunk in plan]
    assert np.array_equal(np.concatenate(rows), array)
    assert store.ranges == [(c.start, c.length) for c in plan]
    assert max(length for _, length in store.ranges) == 1_000 * 8 * 8


def test_a_non_finite_value_names_its_chunk_and_row(blobs: BlobStore) -> None:
    array = np.ones((35, 4), dtype="<f4")
    array[27, 2] = np.nan
    blobs.put("uploads/up_y", [array.tobytes()])
    plan = ChunkPlan(rows=35, dimension=4, dtype="<f4", data_offset=0, chunk_vectors=10)
    assert read_chunk(blobs, "uploads/up_y", plan, plan.chunk(1)).shape == (10, 4)
    with pytest.raises(InvalidChunk, match=r"chunk 2 \(rows 20-29\): row 27 holds a value that is not"):
        read_chunk(blobs, "uploads/up_y", plan, plan.chunk(2))


def test_a_short_blob_is_an_invalid_chunk(tmp_path: object) -> None:
    store = FileBlobStore(tmp_path)  # type: ignore[arg-type]
    store.put("uploads/up_z", [b"\0" * 100])
    plan = ChunkPlan(rows=10, dimension=4, dtype="<f4", data_offset=0, chunk_vectors=5)
    with pytest.raises(InvalidChunk, match="ends 60 bytes early"):
        read_chunk(store, "uploads/up_z", plan, plan.chunk(1))


@pytest.fixture
def ledger(redis: redis_lib.Redis) -> ChunkLedger:
    return ChunkLedger(redis, ended_ttl=3600, event_interval=5.0)


def planned(redis: redis_lib.Redis, ledger: ChunkLedger, task_id: str, chunks: int,
            progress_events: bool = False) -> ChunkPlan:
    plan = ChunkPlan(rows=chunks * 100, dimension=4, dtype="<f4", data_offset=0, chunk_vectors=100)
    redis.hset(keys.task(task_id), mapping={"status": "STARTED",
                                           **ledger.plan_fields(plan, progress_events=progress_events)})
    return plan


def test_the_task_ends_once_however_many_workers_end_chunks_at_once(
        redis: redis_lib.Redis, ledger: ChunkLedger) -> None:
    # Given a task of 40 chunks, each ended twice (a redelivered message) by 8 threads at once
    planned(redis, ledger, "t1", 40)
    answers = []
    lock = threading.Lock()

    def work(chunks: Iterable[int]) -> None:
        for k in chunks:
            end = ledger.end("t1", k, "success", rows=100, stats='{"n": 100}', now=time.time())
            with lock:
                answers.append((k, end))

    threads = [threading.Thread(target=work, args=(list(range(40)) * 2,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then each chunk counted once, and exactly one end was told it was the last
    assert sum(end.first for _, end in answers) == 40
    assert sum(end.last for _, end in answers) == 1
    assert ledger.counts("t1") == {"progress": {"done": 4000, "total": 4000},
                                   "chunks": {"done": 40, "failed": 0, "revoked": 0, "total": 40}}
    assert redis.ttl(keys.ended_chunks("t1")) > 3000


def test_progress_of_a_chunk_run_twice_is_not_counted_twice(
        redis: redis_lib.Redis, ledger: ChunkLedger) -> None:
    planned(redis, ledger, "t2", 3)
    now = time.time()
    ledger.progress("t2", 0, 40, now)
    ledger.progress("t2", 1, 60, now)
    # The worker running chunk 0 dies; its second run reports from the start again
    ledger.progress("t2", 0, 20, now)
    ledger.progress("t2", 0, 80, now)
    assert ledger.counts("t2")["progress"] == {"done": 140, "total": 300}
    ledger.end("t2", 0, "success", rows=100, now=now)
    assert ledger.counts("t2")["progress"] == {"done": 160, "total": 300}


def test_a_failing_chunk_stops_the_others_and_keeps_the_first_reason(
        redis: redis_lib.Redis, ledger: ChunkLedger) -> None:
    planned(redis, ledger, "t3", 4)
    now = time.time()
    assert ledger.progress("t3", 1, 10, now) == (False, False)
    first = ledger.end("t3", 2, "failure", error="chunk 2 (rows 200-299): row 237 is NaN", now=now)
    assert first.first and not first.last and first.cancel
    # The running chunk stops at its next progress point; the others end revoked
    assert ledger.progress("t3", 1, 20, now)[0] is True
    ledger.end("t3", 3, "failure", error="a later reason", now=now)
    ledger.end("t3", 1, "revoked", now=now)
    last = ledger.end("t3", 0, "revoked", now=now)
    assert last.last
    assert redis.hget(keys.task("t3"), "chunk_error") == b"chunk 2 (rows 200-299): row 237 is NaN"
    assert ledger.counts("t3")["chunks"] == {"done": 0, "failed": 2, "revoked": 2, "total": 4}


def test_a_cancel_reaches_running_chunks(redis: redis_lib.Redis, ledger: ChunkLedger) -> None:
    planned(redis, ledger, "t4", 2)
    redis.hset(keys.task("t4"), "cancel", "1")
    assert ledger.progress("t4", 0, 10, time.time()) == (True, False)
    redis.delete(keys.task("t4"))
    assert ledger.progress("t4", 0, 20, time.time())[0] is True


def test_progress_events_are_gated_to_one_per_interval(redis: redis_lib.Redis,
                                                       ledger: ChunkLedger) -> None:
    planned(redis, ledger, "t5", 50, progress_events=True)
    planned(redis, ledger, "t6", 2, progress_events=False)
    now = 1_000_000.0
    emits = [ledger.progress("t5", k, 10, now + k * 0.5)[1] for k in range(50)]
    # 0.5 s apart over 24.5 s: one at the start, then one every 5 s, numbered
    assert [(k, emit) for k, emit in enumerate(emits) if emit] == [
        (0, 1), (10, 2), (20, 3), (30, 4), (40, 5)]
    assert not ledger.progress("t6", 0, 10, now)[1]
    assert ledger.end("t5", 0, "success", rows=100, now=now + 100).emit == 6
    # A stopping task sends none
    redis.hset(keys.task("t5"), "cancel", "1")
    assert ledger.end("t5", 1, "success", rows=100, now=now + 200).emit == 0


def test_the_end_of_the_last_chunk_sends_no_progress_event(redis: redis_lib.Redis,
                                                           ledger: ChunkLedger) -> None:
    planned(redis, ledger, "t8", 1, progress_events=True)
    end = ledger.end("t8", 0, "success", rows=100, now=1_000.0)
    assert end.last and end.emit == 0
    assert float(redis.hget(keys.task("t8"), "ending") or 0) == 1_000.0


def test_an_unknown_outcome_is_refused(ledger: ChunkLedger) -> None:
    with pytest.raises(ValueError):
        ledger.end("t7", 0, "maybe", now=0.0)


def test_planning_again_keeps_the_counters_and_resends_only_chunks_not_ended(
        redis: redis_lib.Redis, ledger: ChunkLedger) -> None:
    # Given a task of 3 chunks, planned once, whose chunk 1 has succeeded
    plan = ChunkPlan(rows=300, dimension=4, dtype="<f4", data_offset=0, chunk_vectors=100)
    redis.hset(keys.task("t7"), mapping={"status": "STARTED", "upload": "up_7"})
    assert not ledger.planned("t7") and ledger.ended("t7") == set()
    ledger.write_plan("t7", plan, [QueuedMessage(f"m{k}", f"chunk {k}".encode(), "q:test")
                                   for k in range(3)], planned=False)
    ledger.end("t7", 1, "success", rows=100, stats='{"n": 100}', now=time.time())
    # When the planner runs again (a redelivered message)
    assert ledger.planned("t7") and ledger.ended("t7") == {1}
    ledger.write_plan("t7", plan, [QueuedMessage("m0", b"chunk 0 again", "q:test")], planned=True)
    # Then chunk 1's count stands and only the message given was added
    assert ledger.counts("t7")["chunks"] == {"done": 1, "failed": 0, "revoked": 0, "total": 3}
    assert redis.lrange("q:test", 0, -1) == [b"chunk 0 again", b"chunk 2", b"chunk 1", b"chunk 0"]
    assert ledger.run_state("t7") == ("STARTED", False, "up_7")
    assert ledger.outcome("t7") == ChunkOutcome(total=3, failed=0, revoked=0, reason=None)
    assert ledger.stats("t7", 3) == [{"n": 100}]


def test_a_chunk_of_a_task_that_is_gone_reads_no_status(ledger: ChunkLedger) -> None:
    assert ledger.run_state("gone") == (None, False, None)
