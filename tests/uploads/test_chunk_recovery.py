"""A large job whose last chunk ended but whose worker died before ending the task still ends, once."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import redis as redis_lib
import requests

from hookline import keys
from hookline.task_chunks import ChunkLedger, ChunkPlan
from hookline.vectorstore import VectorStore
from tests.e2e.test_core import finished, key_for
from tests.e2e.test_webhooks import register
from tests.metrics_util import scrape, value
from tests.procs import Receiver, Stack, settled, wait_until
from tests.uploads.test_large_jobs import uploaded

ERROR = "chunk 1 (rows 10-19): row 12 holds a value that is not a finite number"


@pytest.mark.parametrize("planner", ["alive", "dead"])
def test_a_failed_job_left_started_after_its_vectors_went_is_ended_once(
        make_stack: Callable[..., Stack], tmp_path: Path, receiver: Receiver,
        redis: redis_lib.Redis, planner: str) -> None:
    stack = make_stack(HOOKLINE_BLOB_URL=f"file://{tmp_path / 'blobs'}", HOOKLINE_CHUNK_VECTORS="10",
                       HOOKLINE_RECONCILE_AFTER="1")
    stack.start_web()
    stack.start_callbacks()
    auth = key_for(stack)
    callback = register(stack, auth, receiver.url())
    vectors = np.random.default_rng(4).standard_normal((20, 4)).astype("<f4")
    task_id = submitted(stack, auth, uploaded(stack, auth, vectors), callback["id"])
    # Given the state a job worker leaves when killed between deleting a failed
    # job's vectors and ending the task: planned by a worker that lives on (the
    # callbacks worker, for want of another) or died, chunk 0 indexed, chunk 1
    # failed (the last end), the vectors deleted again, the task still STARTED
    if planner == "alive":
        redis.delete("hl:q:jobs")  # the planner took its message and acknowledged it
        owner = wait_until(lambda: redis.zrange("hl:workers", 0, 0), 30, "a worker beats")[0]
    else:
        owner = b"a-worker-that-died"  # its message came back to the queue
    redis.hset(keys.task(task_id), mapping={"status": "STARTED", "owner": owner,
                                            "started": repr(time.time())})
    ledger = ChunkLedger(redis, ended_ttl=3600)
    plan = ChunkPlan(rows=20, dimension=4, dtype="<f4", data_offset=0, chunk_vectors=10)
    redis.hset(keys.task(task_id), mapping=ledger.plan_fields(plan, progress_events=False))
    store = VectorStore(redis)
    collection = store.collections.ensure(redis.hget(keys.task(task_id), "tenant").decode(),
                                          "default", 4)
    write = store.prepare(collection, task_id, vectors[:10], None, first_row=0, total=20)
    ledger.end(task_id, 0, "success", rows=10, now=time.time() - 60, vectors=write)
    assert ledger.end(task_id, 1, "failure", error=ERROR, now=time.time() - 60).last
    assert store.delete_task(collection, task_id) == 10
    # When a job worker runs
    stack.start_worker(processes=1, threads=2)
    # Then the task ends FAILURE with its chunk's error, its vectors gone
    done = wait_until(lambda: finished(stack, auth, task_id), 60, "the task ends")
    assert (done["status"], done["error"]) == ("FAILURE", ERROR)
    assert done["chunks"] == {"done": 1, "failed": 1, "total": 2}
    assert store.collections.stats(collection.tenant, "default")["count"] == 0
    # And it ended once, with one webhook
    wait_until(lambda: receiver.received("/hook"), 30, "the webhook arrives")
    wait_until(lambda: settled(redis, "callbacks") and settled(redis, "jobs"), 30, "queues settle")
    hooks = receiver.received("/hook")
    assert [json.loads(h["body"])["type"] for h in hooks] == ["task.failed"]
    assert value(scrape(stack.url + "/metrics"), "hookline_tasks_finished_total",
                 outcome="failure") == 1


def submitted(stack: Stack, auth: dict[str, str], upload_id: str, callback_id: str) -> str:
    resp = requests.post(f"{stack.url}/tasks", headers=auth, timeout=5,
                         json={"upload_id": upload_id, "callback_id": callback_id})
    assert resp.status_code == 202, resp.text
    return str(resp.json()["task_id"])
