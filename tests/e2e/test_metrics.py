"""Metrics move as the system works: queue depth, age, outcomes, histograms, live workers."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable

import redis as redis_lib
import requests

from actors.messages import job_message
from tests.metrics_util import scrape, value
from tests.procs import ROOT, Stack, settled, wait_until

SEED = {"vector_data": [[0.1, 0.2, 0.3]] * 4, "metadata": {"source": "metrics"}}
N = 25


def key_for(stack: Stack) -> dict[str, str]:
    out = subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", "keys", "create", "acme"],
                         env=stack.env, capture_output=True, text=True, check=True, cwd=ROOT)
    return {"Authorization": f"Bearer {out.stdout.strip().splitlines()[-1]}"}


def test_metrics_follow_a_workload(make_stack: Callable[..., Stack], redis: redis_lib.Redis) -> None:
    stack = make_stack()
    stack.start_web(workers=2)
    metrics = f"{stack.url}/metrics"
    auth = key_for(stack)
    # Given N tasks submitted while no worker runs
    ids = [requests.post(f"{stack.url}/tasks", json=SEED, headers=auth, timeout=5).json()["task_id"]
           for _ in range(N)]
    before = scrape(metrics)
    assert value(before, "hookline_queue_messages", queue="jobs", state="ready") == N
    assert value(before, "hookline_queue_messages", queue="jobs", state="in_flight") == 0
    assert value(before, "hookline_tasks_submitted_total") == N
    assert value(before, "hookline_workers_alive") == 0
    age = value(before, "hookline_queue_oldest_age_seconds", queue="jobs")
    # The oldest message's age grows while nobody works
    wait_until(lambda: value(scrape(metrics), "hookline_queue_oldest_age_seconds", queue="jobs")
               >= age + 1, 10, "the oldest-age gauge grows")
    assert value(scrape(metrics), "hookline_http_requests_total", method="POST", route="/tasks",
                 status="202") == N
    # And one of them comes back from a worker that died while running it
    redis.hset(f"hl:task:{ids[0]}", mapping={"status": "STARTED", "owner": "a-dead-worker",
                                             "attempts": 1})
    again = job_message(ids[0])
    redis.lpush(again.list_key, again.data)
    # When a worker starts, the queue drains
    stack.start_worker(processes=2)
    wait_until(lambda: value(scrape(metrics), "hookline_queue_messages", queue="jobs",
                             state="ready") == 0, 30, "the queue drains")
    wait_until(lambda: value(scrape(metrics), "hookline_tasks_finished_total", outcome="success") == N,
               30, "every task is counted")
    wait_until(lambda: settled(redis, "jobs"), 30, "all messages acknowledged")
    after = scrape(metrics)
    # Then the counters and histograms match what happened, exactly
    assert value(after, "hookline_tasks_finished_total", outcome="success") == N
    assert value(after, "hookline_task_end_to_end_seconds_count", outcome="success") == N
    assert value(after, "hookline_task_run_seconds_count", outcome="success") == N
    assert value(after, "hookline_task_queue_wait_seconds_count", actor="process_vectors") == N
    assert value(after, "hookline_task_retries_total", actor="process_vectors") == 0
    assert value(after, "hookline_tasks_running", actor="process_vectors") == 0
    assert value(after, "hookline_queue_oldest_age_seconds", queue="jobs") == 0
    assert value(after, "hookline_workers_alive") == 2
    assert value(after, "hookline_build_info") == 1
    second = requests.get(f"{stack.url}/tasks/{ids[0]}", headers=auth, timeout=5).json()
    assert second["attempts"] == 2 and second["status"] == "SUCCESS"
    # No label holds a task id, a URL or a key
    text = requests.get(metrics, timeout=5).text
    assert not any(task_id in text for task_id in ids)
    assert auth["Authorization"].split()[1] not in text


def test_live_workers_drop_when_killed_and_recover(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    stack.start_web(workers=1)
    metrics = f"{stack.url}/metrics"
    worker = stack.start_worker(processes=1)
    wait_until(lambda: value(scrape(metrics), "hookline_workers_alive") == 1, 15, "one live worker")
    os.killpg(worker.pid, signal.SIGKILL)
    worker.proc.wait(timeout=10)
    # Heartbeats time out after 5 s in the tests
    wait_until(lambda: value(scrape(metrics), "hookline_workers_alive") == 0, 20, "no live worker")
    stack.start_worker("worker2", processes=1)
    wait_until(lambda: value(scrape(metrics), "hookline_workers_alive") == 1, 15, "the worker is back")
