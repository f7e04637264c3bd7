"""hookline_tasks_finished_total counts every ending exactly once, whoever dies when.

The count is taken by the Redis step that ends the task and read by /metrics
at each scrape, so a process killed just after that step loses no count, and
a redelivered or retried ending adds none.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable

import redis as redis_lib
import requests

from tests.e2e.test_faults import key_for, statuses
from tests.metrics_util import scrape, value
from tests.procs import ROOT, Stack, held, settled, wait_until

SEED = {"vector_data": [[0.1, 0.2, 0.3]] * 4}

# A process that ends one task in Redis and is SIGKILLed at once: the window
# between the ending and any count a process would take, made certain.
END_AND_DIE = """
import os, signal, sys
import redis
from hookline.task_store import TaskStore
store = TaskStore(redis.Redis.from_url(sys.argv[1]), result_ttl=3600, heartbeats_key="hl:hb")
assert store.finish(sys.argv[2], "SUCCESS", delivery=None, result={"status": "indexed"})
os.kill(os.getpid(), signal.SIGKILL)
"""


def finished(stack: Stack, outcome: str) -> float:
    return value(scrape(f"{stack.url}/metrics"), "hookline_tasks_finished_total", outcome=outcome)


def test_an_ending_is_counted_even_if_its_process_dies_right_after(
    make_stack: Callable[..., Stack], redis: redis_lib.Redis,
) -> None:
    stack = make_stack()
    stack.start_web(workers=1)
    auth = key_for(stack)
    task_id = requests.post(f"{stack.url}/tasks", json=SEED, headers=auth, timeout=5).json()["task_id"]
    assert finished(stack, "success") == 0
    # When a process ends the task in Redis and is killed before anything else
    done = subprocess.run([sys.executable, "-c", END_AND_DIE, stack.env["REDIS_URL"], task_id],
                          cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr
    # Then the ending is counted once, and a second try to end it adds nothing
    assert requests.get(f"{stack.url}/tasks/{task_id}", headers=auth, timeout=5).json()["status"] == "SUCCESS"
    assert finished(stack, "success") == 1
    again = subprocess.run([sys.executable, "-c", END_AND_DIE, stack.env["REDIS_URL"], task_id],
                           cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=60)
    assert "AssertionError" in again.stderr
    assert finished(stack, "success") == 1


def test_a_cancel_is_counted_once(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    stack.start_web(workers=1)
    auth = key_for(stack)
    task_id = requests.post(f"{stack.url}/tasks", json=SEED, headers=auth, timeout=5).json()["task_id"]
    for expected in (202, 409):
        resp = requests.post(f"{stack.url}/tasks/{task_id}/cancel", headers=auth, timeout=5)
        assert resp.status_code == expected
    assert finished(stack, "revoked") == 1
    assert finished(stack, "success") == 0


def test_sigkilled_job_workers_lose_no_count(
    make_stack: Callable[..., Stack], redis: redis_lib.Redis,
) -> None:
    total = 200
    stack = make_stack()
    stack.start_web(workers=1)
    auth = key_for(stack)
    ids = [requests.post(f"{stack.url}/tasks", json=SEED, headers=auth, timeout=5).json()["task_id"]
           for _ in range(total)]
    # Given job workers killed with SIGKILL twice while they run the tasks
    for round_ in (1, 2):
        worker = stack.start_worker(f"worker{round_}", processes=2, threads=8)
        wait_until(lambda n=round_: statuses(redis, ids)["SUCCESS"] >= 40 * n, 60,
                   "some tasks finish")
        os.killpg(worker.pid, signal.SIGKILL)
        worker.proc.wait(timeout=10)
    assert statuses(redis, ids)["SUCCESS"] < total, "the kills came too late to test anything"
    killed_holding = held(redis, "jobs")
    # When a last worker finishes the rest
    stack.start_worker("worker3", processes=2, threads=8)
    wait_until(lambda: statuses(redis, ids)["SUCCESS"] == total, 150, "every task succeeds")
    wait_until(lambda: settled(redis, "jobs"), 60, "every message acknowledged")
    # Then the exported count is the number of tasks, exactly
    assert finished(stack, "success") == total, f"{killed_holding} messages were held at the kill"
    assert finished(stack, "failure") == 0
    assert finished(stack, "revoked") == 0
