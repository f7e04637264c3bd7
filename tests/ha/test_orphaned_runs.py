"""A run a failover left to a live worker that no longer runs it (docs/failover.md).

A job worker holds a task's message until the script that ends the task
removes it. When a failover loses that script (replication is
asynchronous), the new primary has the task ``STARTED`` under a worker that
is alive and beating, with the message on that worker's held list; the
worker has moved on. The reconciler leaves a task alone while its owner
lives, so the worker itself must notice the message it holds and runs no
more. The state is written here as a failover leaves it, into a real Redis
under real worker processes.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest
import redis as redis_lib
import requests

from actors.queue_keys import Keys
from hookline import keys
from tests.ha.test_failover_e2e import api_key
from tests.procs import Receiver, Stack, settled, wait_until

JOBS = Keys(keys.NAMESPACE, "jobs")


@pytest.mark.slow
def test_a_task_left_started_on_a_live_worker_that_runs_it_no_more_ends_once(
    redis: redis_lib.Redis, make_stack: Callable[..., Stack], receiver: Receiver
) -> None:
    # Given a task accepted while no job worker runs, its message taken off its queue
    stack = make_stack()
    stack.start_web(workers=1)
    auth = api_key(stack)
    callback = requests.post(f"{stack.url}/callbacks", json={"url": receiver.url("/hook")},
                             headers=auth, timeout=10).json()
    resp = requests.post(f"{stack.url}/tasks", json={"vector_data": [[1.0, 2.0]],
                                                     "callback_id": callback["id"]},
                         headers=auth, timeout=10)
    assert resp.status_code == 202
    task_id = resp.json()["task_id"]
    raw = redis.rpop(JOBS.queue)
    assert raw is not None
    message: dict[str, Any] = orjson.loads(raw)
    assert message["args"] == [task_id]
    # And a job worker that is up, beating and waiting for work
    stack.start_worker()
    stack.start_callbacks()
    owner = wait_until(lambda: [m.decode() for m in redis.smembers(JOBS.holders)], 30,
                       "the job worker's consumer holds its place")[0]
    # When the state a lost end leaves appears: the task STARTED by that
    # worker under that message, the message on the worker's held list
    pipe = redis.pipeline(transaction=True)
    pipe.lpush(JOBS.held(owner), raw)
    pipe.hset(keys.task(task_id), mapping={"status": "STARTED", "owner": owner,
                                           "claim": message["message_id"],
                                           "started": repr(time.time()), "attempts": 1})
    pipe.execute()
    # Then the task runs again and ends SUCCESS
    wait_until(lambda: redis.hget(keys.task(task_id), "status") == b"SUCCESS", 60,
               "the task succeeds")
    assert redis.zscore(keys.ACTIVE, task_id) is None
    # And its webhook arrives once, and nothing is left held or queued
    wait_until(lambda: receiver.received("/hook"), 30, "the webhook arrives")
    wait_until(lambda: settled(redis, "jobs") and settled(redis, "callbacks"), 30,
               "every message is settled")
    events = [orjson.loads(r["body"]) for r in receiver.received("/hook")]
    assert [(e["data"]["task_id"], e["data"]["status"]) for e in events] == [(task_id, "SUCCESS")]
