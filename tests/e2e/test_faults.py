"""Fault injection with real processes and real signals: nothing accepted is lost."""
from __future__ import annotations

import collections
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import redis as redis_lib
import requests

from tests.procs import ROOT, Receiver, RedisServer, Stack, held, queued, wait_until

SEED = {"vector_data": [[0.1, 0.2, 0.3]] * 16, "metadata": {"source": "fault"}}


def key_for(stack: Stack, tenant: str = "acme") -> dict[str, str]:
    out = subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", "keys", "create", tenant],
                         env=stack.env, capture_output=True, text=True, check=True, cwd=ROOT)
    return {"Authorization": f"Bearer {out.stdout.strip().splitlines()[-1]}"}


def statuses(client: redis_lib.Redis, ids: list[str]) -> collections.Counter:
    pipe = client.pipeline(transaction=False)
    for task_id in ids:
        pipe.hget(f"hl:task:{task_id}", "status")
    return collections.Counter((s or b"?").decode() for s in pipe.execute())


def unfinished_report(client: redis_lib.Redis, ids: list[str], shown: int = 5) -> str:
    """What a failed wait for ``ids`` to succeed should say: where the others are."""
    counts = statuses(client, ids)
    waiting = set(queued(client, "jobs")) | set(client.lrange("hl:q:jobs.DQ", 0, -1))
    lines = [f"statuses {dict(counts)}"]
    for task_id in ids:
        record = client.hgetall(f"hl:task:{task_id}")
        if record.get(b"status") == b"SUCCESS":
            continue
        record.pop(b"payload", None)
        on_queue = any(task_id.encode() in message for message in waiting)
        lines.append(f"{task_id}: {record!r}, active score {client.zscore('hl:active', task_id)!r}, "
                     f"on the queue {on_queue}")
        if len(lines) > shown:
            break
    return "; ".join(lines)


def finished_lines(*logs: str) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    for text in logs:
        for line in text.splitlines():
            if "task finished" in line:
                match = re.search(r"task_id=([0-9a-f-]{36})", line)
                if match:
                    counts[match.group(1)] += 1
    return counts


def test_sigkill_every_job_worker_mid_run_loses_nothing(
        make_stack: Callable[..., Stack], receiver: Receiver, redis: redis_lib.Redis) -> None:
    stack = make_stack()
    stack.start_web()
    stack.start_callbacks()
    auth = key_for(stack)
    callback = requests.post(f"{stack.url}/callbacks", json={"url": receiver.url("/k")}, headers=auth,
                             timeout=5).json()
    # Given 300 tasks in flight
    ids = [requests.post(f"{stack.url}/tasks", json={**SEED, "callback_id": callback["id"]},
                         headers=auth, timeout=5).json()["task_id"] for _ in range(300)]
    first = stack.start_worker("worker", processes=2, threads=8)
    wait_until(lambda: statuses(redis, ids)["SUCCESS"] >= 20, 60, "some tasks finish")
    # When every job worker process is SIGKILLed
    os.killpg(first.pid, signal.SIGKILL)
    first.proc.wait(timeout=10)
    taken = held(redis, "jobs")
    left = 300 - statuses(redis, ids)["SUCCESS"]
    assert left > 0, "the kill came too late to test anything"
    # Then a new worker finishes every task, once, within two minutes
    restarted = time.monotonic()
    second = stack.start_worker("worker2", processes=2, threads=8)
    wait_until(lambda: statuses(redis, ids)["SUCCESS"] == 300, 120, "every task succeeds")
    wait_until(lambda: len({h["headers"]["webhook-id"] for h in receiver.received("/k")}) == 300, 60,
               "every webhook arrives")
    assert time.monotonic() - restarted < 120
    # A SIGKILL can land between a task's end and its log line, so the logs
    # may miss a few; none may show a task ending twice.
    counts = finished_lines(first.log(), second.log())
    assert max(counts.values()) == 1, "a task reached a terminal state twice"
    # Each terminal transition delivers one event. A kill that lands while a
    # job thread is delivering it (tests/e2e/test_inline_delivery.py) sends
    # it again from its lease: a repeat, with the same webhook-id.
    posts: dict[str, set[str]] = collections.defaultdict(set)
    for hook in receiver.received("/k"):
        body = json.loads(hook["body"])
        assert body["type"] == "task.succeeded"
        posts[body["data"]["task_id"]].add(hook["headers"]["webhook-id"])
    assert set(posts) == set(ids)
    assert all(v == {"msg_" + k.replace("-", "")} for k, v in posts.items())
    print(f"killed with {left} unfinished ({taken} held by the dead worker)")


def test_redis_restart_mid_run_loses_no_accepted_task(
        make_stack: Callable[..., Stack], redis_server: RedisServer, redis: redis_lib.Redis) -> None:
    stack = make_stack()
    stack.start()
    auth = key_for(stack)
    accepted: list[str] = []
    refused: list[requests.Response] = []
    stop = threading.Event()

    def submit_forever() -> None:
        while not stop.is_set():
            try:
                resp = requests.post(f"{stack.url}/tasks", json=SEED, headers=auth, timeout=10)
            except requests.RequestException:
                continue
            if resp.status_code == 202:
                accepted.append(resp.json()["task_id"])
            else:
                refused.append(resp)

    thread = threading.Thread(target=submit_forever)
    thread.start()
    try:
        wait_until(lambda: len(accepted) >= 50, 30, "submissions flow")
        # When Redis shuts down (flushing its AOF) mid-run
        redis_server.shutdown()
        wait_until(lambda: refused, 30, "a request is refused while Redis is down")
        assert requests.get(f"{stack.url}/readyz", timeout=10).status_code == 503
        # And comes back on the same AOF
        redis_server.start()
        count = len(accepted)
        wait_until(lambda: len(accepted) >= count + 50, 60, "submissions flow again")
    finally:
        stop.set()
        thread.join(30)
    client = redis_lib.Redis.from_url(redis_server.url)
    assert requests.get(f"{stack.url}/readyz", timeout=10).status_code == 200
    # Then every task that got a 202 finishes
    try:
        wait_until(lambda: statuses(client, accepted)["SUCCESS"] == len(accepted), 120,
                   "every accepted task succeeds")
    except AssertionError as exc:
        raise AssertionError(f"{exc}: {unfinished_report(client, accepted)}") from None
    # And the requests made while it was down got 503 problem+json
    assert refused
    for resp in refused:
        assert resp.status_code == 503, resp.text
        assert resp.headers["Content-Type"] == "application/problem+json"
        assert resp.headers["Retry-After"]


def test_redis_restart_mid_delivery_drops_no_webhook(
        make_stack: Callable[..., Stack], redis_server: RedisServer, receiver: Receiver) -> None:
    # Every delivery through the callbacks worker, whose outage this watches.
    stack = make_stack(HOOKLINE_INLINE_DELIVERY_MS="0")
    stack.start_web()
    stack.start_worker()
    # Two threads and a slow receiver: when Redis goes, some deliveries are
    # on the wire and others are fetched and waiting for a thread.
    callbacks = stack.start_worker("callbacks", "callbacks", threads=2)
    receiver.script["/slow"] = lambda n: (204, {}, 0.3)
    auth = key_for(stack)
    callback = requests.post(f"{stack.url}/callbacks", json={"url": receiver.url("/slow")},
                             headers=auth, timeout=5).json()
    ids = []
    for _ in range(20):
        resp = requests.post(f"{stack.url}/tasks", json={**SEED, "callback_id": callback["id"]},
                             headers=auth, timeout=5)
        assert resp.status_code == 202
        ids.append(resp.json()["task_id"])
    wait_until(lambda: len(receiver.received("/slow")) >= 2, 30, "deliveries flow")
    # When Redis shuts down mid-delivery, for as long as it takes deliveries
    # to fail for want of it
    redis_server.shutdown()

    def deliveries_failed() -> int:
        log = callbacks.log()
        return log.count("Failed to process message") + log.count("delivery goes back on its queue")

    wait_until(lambda: deliveries_failed() >= 2, 30, "deliveries meet the outage")
    redis_server.start()
    # Then every task's webhook still arrives, and each delivery is recorded
    wanted = {"msg_" + task_id.replace("-", "") for task_id in ids}
    wait_until(lambda: wanted <= {h["headers"]["webhook-id"] for h in receiver.received("/slow")},
               120, "every webhook arrives")

    def delivery_states() -> collections.Counter:
        return collections.Counter(
            requests.get(f"{stack.url}/tasks/{task_id}", headers=auth, timeout=5)
            .json()["callback"]["delivery"] for task_id in ids)

    wait_until(lambda: delivery_states() == {"delivered": len(ids)}, 60, "every delivery is recorded")


def test_a_lost_message_is_reconciled(make_stack: Callable[..., Stack], redis: redis_lib.Redis) -> None:
    stack = make_stack()
    stack.start_web()
    auth = key_for(stack)
    task_id = requests.post(f"{stack.url}/tasks", json=SEED, headers=auth, timeout=5).json()["task_id"]
    # Given its broker message deleted by hand
    [message] = queued(redis, "jobs")
    assert redis.lrem("hl:q:jobs", 0, message) == 1
    # When a worker runs (reconciling after 3 s)
    stack.start_worker()
    # Then the reconciler sends it again and it succeeds
    wait_until(lambda: redis.hget(f"hl:task:{task_id}", "status") == b"SUCCESS", 60,
               "the task succeeds")
    assert "reconciler sent a task again" in stack.procs["worker"].log()


def test_sigterm_drains_a_busy_worker(make_stack: Callable[..., Stack], redis: redis_lib.Redis) -> None:
    stack = make_stack()
    stack.start_web()
    auth = key_for(stack)
    ids = [requests.post(f"{stack.url}/tasks", json=SEED, headers=auth, timeout=5).json()["task_id"]
           for _ in range(400)]
    worker = stack.start_worker("worker", processes=2, threads=8)
    wait_until(lambda: statuses(redis, ids)["SUCCESS"] >= 10, 60, "the worker is busy")
    # When it gets SIGTERM while busy
    worker.signal(signal.SIGTERM)
    assert worker.proc.wait(timeout=60) == 0
    # Then nothing it held is left behind: every message is queued again or done
    assert held(redis, "jobs") == 0
    stack.start_worker("worker2", processes=1, threads=8)
    wait_until(lambda: statuses(redis, ids)["SUCCESS"] == 400, 60, "every task succeeds")
    counts = finished_lines(worker.log(), stack.procs["worker2"].log())
    assert set(counts) == set(ids) and max(counts.values()) == 1


def test_logs_carry_no_secrets(make_stack: Callable[..., Stack], receiver: Receiver) -> None:
    stack = make_stack(HOOKLINE_LOG_FORMAT="json", HOOKLINE_LOG_LEVEL="DEBUG")
    stack.start()
    auth = key_for(stack)
    api_key = auth["Authorization"].split()[1]
    callback = requests.post(f"{stack.url}/callbacks", json={"url": receiver.url("/s")}, headers=auth,
                             timeout=5).json()
    rotated = requests.post(f"{stack.url}/callbacks/{callback['id']}/rotate-secret", headers=auth,
                            timeout=5).json()
    ids = [requests.post(f"{stack.url}/tasks", json={**SEED, "callback_id": callback["id"]},
                         headers=auth, timeout=5).json()["task_id"] for _ in range(5)]
    requests.get(f"{stack.url}/tasks", headers={"Authorization": "Bearer " + api_key + "x"}, timeout=5)
    wait_until(lambda: len(receiver.received("/s")) == 5, 30, "webhooks arrive")
    logs = stack.logs()
    assert all(task_id in logs for task_id in ids), "the logs should name the tasks"
    for secret in (api_key, api_key.split("_", 2)[2], callback["secret"], rotated["secret"],
                   callback["secret"].removeprefix("whsec_"), rotated["secret"].removeprefix("whsec_")):
        assert secret not in logs
    assert "0.1, 0.2" not in logs and "[0.1" not in logs
    # JSON logs are one object per line
    web_lines = [json.loads(line) for line in stack.procs["web"].log().splitlines()
                 if line.startswith("{")]
    assert any(line.get("task_id") == ids[0] for line in web_lines)
