"""The core path with real processes: gunicorn, a dramatiq worker, redis-server."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
import redis as redis_lib
import requests

from actors.messages import job_message
from hookline.task_store import QueuedMessage
from hookline.vector_collections import Collections, records_key
from hookline.vectorstore import VectorStore
from tests.procs import ROOT, Stack, queued, settled, wait_until

SEED = {"vector_data": [0.1, 0.2, 0.3], "metadata": {"source": "user"}}


def key_for(stack: Stack, tenant: str = "acme") -> dict[str, str]:
    """Create a key with the documented CLI, as an operator would."""
    out = subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", "keys", "create", tenant],
                         env=stack.env, capture_output=True, text=True, check=True, cwd=ROOT)
    return {"Authorization": f"Bearer {out.stdout.strip().splitlines()[-1]}"}


def finished(stack: Stack, auth: dict, task_id: str) -> dict | None:
    body = requests.get(f"{stack.url}/tasks/{task_id}", headers=auth, timeout=5).json()
    return body if body["status"] in ("SUCCESS", "FAILURE", "REVOKED") else None


def test_seed_example_works_unchanged_but_for_the_key(stack: Stack) -> None:
    auth = key_for(stack)
    # When the seed's documented request is sent
    resp = requests.post(f"{stack.url}/tasks", json=SEED, headers=auth, timeout=5)
    # Then it is accepted the way the seed answered
    assert resp.status_code == 202
    body = resp.json()
    assert body["status"] == "Processing" and body["task_id"]
    assert resp.headers["Location"] == f"/tasks/{body['task_id']}"
    # And it finishes with the seed's result
    done = wait_until(lambda: finished(stack, auth, body["task_id"]), 30, "task finishes")
    assert done["status"] == "SUCCESS"
    result = done["result"]
    assert {k: result[k] for k in ("processed_vectors", "status", "metadata_processed")} == {
        "processed_vectors": 3, "status": "indexed", "metadata_processed": {"source": "user"}}
    assert result["dimension"] == 1
    assert done["attempts"] == 1 and done["progress"] == {"done": 3, "total": 3}
    assert done["started_at"] and done["finished_at"]
    assert "Retry-After" not in requests.get(
        f"{stack.url}/tasks/{body['task_id']}", headers=auth, timeout=5).headers


def stored_vectors(redis: redis_lib.Redis, name: str, task_id: str) -> np.ndarray:
    """A task's vectors as its collection stores them, in row order."""
    collection = Collections(redis).get("acme", name)
    assert collection is not None
    return np.stack([r.vector for r in VectorStore(redis).task_records(collection, task_id)])


def test_rows_are_vectors_and_are_normalised_into_the_collection(
        stack: Stack, redis: redis_lib.Redis) -> None:
    auth = key_for(stack)
    rows = [[3.0, 4.0], [0.0, 2.0], [0.0, 0.0]]
    body = {"vector_data": rows, "metadata": {"collection": "demo"}}
    task_id = requests.post(f"{stack.url}/tasks", json=body, headers=auth, timeout=5).json()["task_id"]
    done = wait_until(lambda: finished(stack, auth, task_id), 30, "task finishes")
    assert done["status"] == "SUCCESS"
    assert done["result"]["processed_vectors"] == 3
    assert done["result"]["dimension"] == 2
    stored = stored_vectors(redis, "demo", task_id)
    assert np.allclose(stored, [[0.6, 0.8], [0.0, 1.0], [0.0, 0.0]])
    # The finished record drops the payload and the owner, and is written
    # afresh so that it takes Redis's compact encoding again.
    record = redis.hgetall(f"hl:task:{task_id}")
    assert b"payload" not in record and b"owner" not in record
    assert record[b"status"] == b"SUCCESS" and record[b"coll"] == b"demo"
    assert redis.object("encoding", f"hl:task:{task_id}") in (b"listpack", b"ziplist")
    assert 0 < redis.ttl(f"hl:task:{task_id}") <= 7 * 86400


def test_a_task_accepted_with_its_payload_under_its_own_key_still_runs(
        make_stack: Callable[..., Stack], redis: redis_lib.Redis) -> None:
    # Given pending tasks as a web process before the payload moved into the
    # record wrote them: the payload under its own key, none in the record
    stack = make_stack()
    stack.start_web()
    auth = key_for(stack)
    body = {"vector_data": [[3.0, 4.0]], "metadata": {"collection": "old"}}
    ran, cancelled = (requests.post(f"{stack.url}/tasks", json=body, headers=auth,
                                    timeout=5).json()["task_id"] for _ in range(2))
    for task_id in (ran, cancelled):
        payload = redis.hget(f"hl:task:{task_id}", "payload")
        redis.hdel(f"hl:task:{task_id}", "payload")
        redis.set(f"hl:payload:{task_id}", payload, ex=7 * 86400)
    assert requests.post(f"{stack.url}/tasks/{cancelled}/cancel", headers=auth,
                         timeout=5).status_code == 202
    # When a worker runs the other
    stack.start_worker()
    done = wait_until(lambda: finished(stack, auth, ran), 30, "task finishes")
    # Then it ran on that payload, and neither task leaves its payload behind
    assert done["status"] == "SUCCESS"
    assert done["result"]["norms"]["norm_max"] == 5.0
    assert np.allclose(stored_vectors(redis, "old", ran), [[0.6, 0.8]])
    assert not redis.exists(f"hl:payload:{ran}") and not redis.exists(f"hl:payload:{cancelled}")


def test_worker_down_then_up(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    stack.start_web()
    auth = key_for(stack)
    task_id = requests.post(f"{stack.url}/tasks", json=SEED, headers=auth, timeout=5).json()["task_id"]
    # With no worker the task waits
    body = requests.get(f"{stack.url}/tasks/{task_id}", headers=auth, timeout=5).json()
    assert body["status"] == "PENDING"
    # Once a worker starts it completes
    stack.start_worker()
    done = wait_until(lambda: finished(stack, auth, task_id), 30, "task finishes")
    assert done["status"] == "SUCCESS"


def test_redelivery_runs_the_task_once(make_stack: Callable[..., Stack],
                                       redis: redis_lib.Redis) -> None:
    stack = make_stack()
    stack.start_web()
    auth = key_for(stack)
    task_id = requests.post(f"{stack.url}/tasks", json=SEED, headers=auth, timeout=5).json()["task_id"]
    # Given the same task id enqueued a second (and third) time
    for _ in range(2):
        extra: QueuedMessage = job_message(task_id)
        redis.lpush(extra.list_key, extra.data)
    assert len(queued(redis, "jobs")) == 3
    # When a worker processes all of them
    stack.start_worker()
    done = wait_until(lambda: finished(stack, auth, task_id), 30, "task finishes")
    wait_until(lambda: settled(redis, "jobs"), 30, "all messages acknowledged")
    # Then it ran exactly once and its result is not duplicated
    assert done["status"] == "SUCCESS" and done["attempts"] == 1
    assert redis.hlen(records_key("acme", "default")) == 3  # SEED's three vectors, once
    assert stack.procs["worker"].log().count("task finished") == 1
    assert stack.procs["worker"].log().count("message dropped: task is") == 2


def test_a_claim_whose_answer_was_lost_still_runs_the_task(
        make_stack: Callable[..., Stack], redis: redis_lib.Redis) -> None:
    # Given a task whose message a worker process took and claimed, and Redis
    # went away before the claim's answer arrived (the claim is written)
    stack = make_stack()
    stack.start_web()
    auth = key_for(stack)
    task_id = requests.post(f"{stack.url}/tasks", json=SEED, headers=auth, timeout=5).json()["task_id"]
    raw = redis.rpop("hl:q:jobs")
    worker = stack.start_worker(processes=1)
    owner = re.search(r"worker process ready worker=(\S+)", worker.log()).group(1)
    redis.hset(f"hl:task:{task_id}", mapping={
        "status": "STARTED", "started": repr(time.time()), "owner": owner,
        "claim": json.loads(raw)["message_id"], "attempts": 1})
    # When the worker asks again with the same message
    redis.lpush("hl:q:jobs", raw)
    # Then the run is still its own, and the task finishes instead of being
    # dropped as busy with a live owner, which nothing would ever end
    done = wait_until(lambda: finished(stack, auth, task_id), 30, "task finishes")
    assert done["status"] == "SUCCESS" and done["attempts"] == 1
    assert "message dropped" not in worker.log()


def test_cancelled_pending_task_never_runs(make_stack: Callable[..., Stack],
                                           redis: redis_lib.Redis) -> None:
    stack = make_stack()
    stack.start_web()
    auth = key_for(stack)
    task_id = requests.post(f"{stack.url}/tasks", json=SEED, headers=auth, timeout=5).json()["task_id"]
    resp = requests.post(f"{stack.url}/tasks/{task_id}/cancel", headers=auth, timeout=5)
    assert resp.status_code == 202 and resp.json()["status"] == "REVOKED"
    stack.start_worker()
    wait_until(lambda: settled(redis, "jobs"), 30, "the message is consumed")
    body = requests.get(f"{stack.url}/tasks/{task_id}", headers=auth, timeout=5).json()
    assert body["status"] == "REVOKED"
    assert body["attempts"] == 0 and body["started_at"] is None
    assert redis.hlen(records_key("acme", "default")) == 0
    assert "task started" not in stack.procs["worker"].log()
