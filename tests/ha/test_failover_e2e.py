"""A Redis primary dies under load: real gunicorn, dramatiq workers and a receiver on Sentinel.

With HOOKLINE_REDIS_MIN_REPLICAS=1 every task that got a 202 reaches SUCCESS,
once, and its webhook arrives (under one webhook-id, however many times it
is sent); the API answers 503 with Retry-After, never 500, while the
Sentinels promote the replica.
"""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests

from tests.ha.cluster import SentinelCluster
from tests.procs import ROOT, Process, Receiver, Stack, free_port, wait_until

#: Tasks submitted, and how many are accepted before the primary is killed.
TASKS = 500
KILL_AFTER = 150
#: Client threads submitting at once.
CLIENTS = 8
#: Seconds one client keeps retrying one task (503 and 409 included): well
#: under the lease of an Idempotency-Key's claim
#: (webapp.idempotency.CLAIM_SECONDS). A request in flight when the primary
#: died may leave its key claimed on the new primary without its task; the
#: retry takes the claim over as soon as the request's process says that the
#: request is over, and never waits out the lease.
GIVE_UP_AFTER = 20.0


class Submitter:
    """Clients that submit tasks with Idempotency-Keys, retrying whatever is not a 202."""

    def __init__(self, url: str, auth: dict[str, str], callback_id: str) -> None:
        self.url, self.auth, self.callback_id = url, auth, callback_id
        self.lock = threading.Lock()
        self.next = 0
        #: task index -> (task id, when the request that got its 202 was sent)
        self.accepted: dict[int, tuple[str, float]] = {}
        self.statuses: dict[Any, int] = defaultdict(int)
        #: (when, status) of every answer that was not a 202
        self.refused: list[tuple[float, Any]] = []
        self.missing_retry_after = 0
        #: (task index, the last answer) of the tasks a client gave up on
        self.given_up: list[tuple[int, Any]] = []

    def run(self) -> None:
        session = requests.Session()
        while True:
            with self.lock:
                index, self.next = self.next, self.next + 1
            if index >= TASKS:
                return
            self._submit(session, index)

    def _submit(self, session: requests.Session, index: int) -> None:
        headers = {**self.auth, "Idempotency-Key": f"failover-{index}"}
        body = {"vector_data": [[float(index), 1.0], [2.0, 3.0]], "callback_id": self.callback_id}
        deadline = time.monotonic() + GIVE_UP_AFTER
        status: Any = None
        while time.monotonic() < deadline:
            sent = time.monotonic()
            try:
                resp = session.post(f"{self.url}/tasks", json=body, headers=headers, timeout=10)
                status = resp.status_code
            except requests.RequestException as exc:
                status = type(exc).__name__
            with self.lock:
                self.statuses[status] += 1
                if status == 202:
                    self.accepted[index] = (resp.json()["task_id"], sent)
                    return
                self.refused.append((sent, status))
                if status in (503, 409) and not resp.headers.get("Retry-After"):
                    self.missing_retry_after += 1
            time.sleep(0.1)
        with self.lock:
            self.given_up.append((index, status))


def api_key(stack: Stack) -> dict[str, str]:
    out = subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", "keys", "create", "acme"],
                         env=stack.env, capture_output=True, text=True, check=True, cwd=ROOT)
    return {"Authorization": f"Bearer {out.stdout.strip().splitlines()[-1]}"}


@pytest.mark.slow
def test_every_acknowledged_task_survives_a_primary_killed_under_load(
    cluster: SentinelCluster, receiver: Receiver, tmp_path: Path
) -> None:
    # Given the web, a job worker and a webhook worker on the Sentinel URL,
    # each 202 confirmed by the replica
    stack = Stack(cluster.url, tmp_path, HOOKLINE_REDIS_MIN_REPLICAS="1",
                  HOOKLINE_REDIS_REPLICA_TIMEOUT_MS="500",
                  HOOKLINE_WEBHOOK_RETRY_SCHEDULE="1,2,4,8,8")
    metrics_port = free_port()
    metrics_server: Process | None = None
    try:
        stack.start()
        # And a metrics server, as a worker-only host runs it, for the same folder
        metrics_server = Process("metrics", [sys.executable, "-m", "actors.metrics_server"],
                                 {**stack.env, "HOOKLINE_METRICS_PORT": str(metrics_port)}, tmp_path)
        auth = api_key(stack)
        callback = requests.post(f"{stack.url}/callbacks", json={"url": receiver.url("/hook")},
                                 headers=auth, timeout=10).json()
        submitter = Submitter(stack.url, auth, callback["id"])
        clients = [threading.Thread(target=submitter.run) for _ in range(CLIENTS)]
        for client in clients:
            client.start()
        # When the primary is SIGKILLed part-way through the submissions
        wait_until(lambda: len(submitter.accepted) >= KILL_AFTER, 60, f"{KILL_AFTER} tasks accepted")
        old = cluster.primary()
        old.kill()
        killed_at = time.monotonic()
        # And its host comes back a little later (the only replica is the one
        # promoted, and a 202 needs one): the Sentinels make it a replica
        cluster.wait_for_new_primary(old)
        promoted_at = time.monotonic()
        cluster.restart(old)
        rejoined_at = time.monotonic()
        for client in clients:
            client.join(GIVE_UP_AFTER * 3)
        after_kill = sorted(at for _, at in submitter.accepted.values() if at > killed_at)
        unavailable = (after_kill[0] - killed_at) if after_kill else float("nan")
        # Unavailable: from the kill until a request sent after it was accepted.
        refused = [status for at, status in submitter.refused if at >= killed_at]
        print(f"\n{TASKS} tasks: {len(submitter.accepted)} accepted, {len(submitter.given_up)} given up; "
              f"answers {dict(submitter.statuses)}; {refused.count(503)} answers 503 after the kill; "
              f"API unavailable for {unavailable:.1f} s (a replica promoted after "
              f"{promoted_at - killed_at:.1f} s, the old primary back as a replica after "
              f"{rejoined_at - killed_at:.1f} s)")

        # Then the API never answered 500, and every 503 or 409 said when to retry
        assert 500 not in submitter.statuses, dict(submitter.statuses)
        assert submitter.missing_retry_after == 0
        assert after_kill, "no task was accepted after the failover"
        # And no client gave up: a key claimed by a request the kill cut short
        # was taken over by its retry
        assert submitter.given_up == [], submitter.given_up
        accepted = {task_id for task_id, _ in submitter.accepted.values()}
        # And every task that got a 202 reaches SUCCESS on the new primary...
        primary = cluster.primary().client(timeout=5)

        def statuses() -> dict[str, bytes | None]:
            pipe = primary.pipeline(transaction=False)
            for task_id in sorted(accepted):
                pipe.hget(f"hl:task:{task_id}", "status")
            return dict(zip(sorted(accepted), pipe.execute()))

        def all_succeeded() -> bool:
            return all(status == b"SUCCESS" for status in statuses().values())

        try:
            wait_until(all_succeeded, 90, "every accepted task succeeds", interval=0.5)
        except AssertionError:
            counts: dict[Any, int] = defaultdict(int)
            for status in statuses().values():
                counts[status] += 1
            raise AssertionError(f"task states: {dict(counts)}\n{stack.logs()[-6000:]}") from None
        # ...and its webhook arrives: one event per task, under one webhook-id
        def webhooks() -> dict[str, set[str]]:
            ids: dict[str, set[str]] = defaultdict(set)
            for request in receiver.received("/hook"):
                event = orjson.loads(request["body"])
                if event["data"]["status"] == "SUCCESS":
                    ids[event["data"]["task_id"]].add(request["headers"]["webhook-id"])
            return ids

        wait_until(lambda: accepted <= set(webhooks()), 60, "every accepted task's webhook arrives")
        assert all(len(ids) == 1 for task_id, ids in webhooks().items() if task_id in accepted)
        sent = len(receiver.received("/hook"))
        print(f"{len(accepted)} webhooks expected, {sent} requests received "
              f"({sent - len(accepted)} sent again under the same webhook-id)")
        # And the metrics server reads the queues from the new primary, and the
        # processes counted the primary they followed (the workers at least)
        page = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
        assert 'hookline_queue_messages{queue="jobs",state="ready"} 0.0' in page
        assert sample(page, "hookline_redis_failovers_total") >= 2
    finally:
        if metrics_server is not None:
            metrics_server.stop()
        stack.stop()


def sample(page: str, name: str) -> float:
    """The value of the unlabelled series ``name`` on a Prometheus text page."""
    for line in page.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} is not on the page")
