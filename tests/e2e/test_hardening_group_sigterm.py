"""A SIGTERM to a worker's whole process group drains like one to its main process.

Heroku, honcho and a shell signal the whole group: each Dramatiq worker
process then gets SIGTERM twice, from the sender and from its parent.
"""
from __future__ import annotations

import os
import signal
from collections.abc import Callable

import redis as redis_lib
import requests

from tests.e2e.test_faults import key_for, statuses
from tests.procs import Stack, held, wait_until

SEED = {"vector_data": [[0.1, 0.2, 0.3]] * 4}
TOTAL = 400


def test_sigterm_to_the_process_group_drains(
    make_stack: Callable[..., Stack], redis: redis_lib.Redis,
) -> None:
    stack = make_stack()
    stack.start_web(workers=1)
    auth = key_for(stack)
    ids = [requests.post(f"{stack.url}/tasks", json=SEED, headers=auth, timeout=5).json()["task_id"]
           for _ in range(TOTAL)]
    # Given a dramatiq in a process group of its own, busy with tasks
    worker = stack.start_worker("worker", processes=2, threads=8)
    assert os.getpgid(worker.pid) == worker.pid
    wait_until(lambda: statuses(redis, ids)["SUCCESS"] >= 10, 60, "the worker is busy")
    # When the whole group gets SIGTERM
    os.killpg(worker.pid, signal.SIGTERM)
    # Then it drains: no process kills itself, and nothing is left held for the sweep
    assert worker.proc.wait(timeout=60) == 0, worker.log()[-2000:]
    assert "Killing worker process" not in worker.log()
    assert held(redis, "jobs") == 0
    # And a new worker finishes the rest, each task run exactly once
    stack.start_worker("worker2", processes=1, threads=8)
    wait_until(lambda: statuses(redis, ids)["SUCCESS"] == TOTAL, 60, "every task succeeds")
    pipe = redis.pipeline(transaction=False)
    for task_id in ids:
        pipe.hget(f"hl:task:{task_id}", "attempts")
    assert {int(a) for a in pipe.execute()} == {1}
