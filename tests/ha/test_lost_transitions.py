"""What a failover can lose after a 202, and what repairs it (docs/failover.md).

Replication is asynchronous: a task's later steps (its start, its end, its
webhook's delivery record) written on the primary just before it dies may
be missing on the replica that takes over. The task then looks as it did
before those steps, with its message where it was, and runs again; its
webhook is sent again under the same ``webhook-id``, so a receiver that
keeps the ids it has handled sees the event once.
"""
from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import requests

from tests.ha.cluster import SentinelCluster
from tests.ha.test_failover_e2e import api_key
from tests.procs import Receiver, Stack, wait_until


@pytest.mark.slow
def test_a_task_whose_end_was_lost_runs_again_and_its_webhook_keeps_its_id(
    cluster: SentinelCluster, receiver: Receiver, tmp_path: Path
) -> None:
    # Given a task accepted with one replica's confirmation, before any worker runs
    stack = Stack(cluster.url, tmp_path, HOOKLINE_REDIS_MIN_REPLICAS="1")
    try:
        stack.start_web(workers=1)
        auth = api_key(stack)
        callback = requests.post(f"{stack.url}/callbacks", json={"url": receiver.url("/hook")},
                                 headers=auth, timeout=10).json()
        resp = requests.post(f"{stack.url}/tasks", json={"vector_data": [[1.0, 2.0]],
                                                         "callback_id": callback["id"]},
                             headers=auth, timeout=10)
        assert resp.status_code == 202
        task_id = resp.json()["task_id"]
        old, replica = cluster.nodes
        assert replica.client().hget(f"hl:task:{task_id}", "status") == b"PENDING"
        # And the replica cut off from here on: what the primary writes stays there
        replica.pause()
        old.drop_replicas()
        # When the task runs, ends and its webhook is delivered, on the primary alone
        stack.start_worker()
        stack.start_callbacks()
        wait_until(lambda: len(receiver.received("/hook")) == 1, 30, "the webhook arrives")
        assert old.client().hget(f"hl:task:{task_id}", "status") == b"SUCCESS"
        # And the primary dies, and the replica (which saw none of it) is promoted
        old.kill()
        replica.resume()
        cluster.wait_for_new_primary(old)
        # Then the task runs again on the new primary and ends SUCCESS
        wait_until(lambda: replica.client().hget(f"hl:task:{task_id}", "status") == b"SUCCESS",
                   60, "the task succeeds on the new primary")
        assert requests.get(f"{stack.url}/tasks/{task_id}", headers=auth,
                            timeout=10).json()["status"] == "SUCCESS"
        # And its webhook is sent again, under the same webhook-id, with the same outcome
        wait_until(lambda: len(receiver.received("/hook")) == 2, 30, "the webhook is sent again")
        first, again = receiver.received("/hook")
        assert first["headers"]["webhook-id"] == again["headers"]["webhook-id"]
        assert [orjson.loads(r["body"])["data"]["status"] for r in (first, again)] == ["SUCCESS"] * 2
    finally:
        stack.stop()
