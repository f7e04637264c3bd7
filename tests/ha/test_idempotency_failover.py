"""A retry after a submit that a failover cut short, with the same Idempotency-Key (SPEC §12).

The request claims its key before it writes its task. When the primary dies
in between, the claim may be on the promoted replica while nothing else of
the request is, and the request answers 503. Its retry must not be told 409
("still being processed") until the claim's lease ends: the request that
holds the claim is over, so the retry takes the key over and gets a task.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from flask import Flask

import webapp.tasks
from hookline import keys
from tests.ha.cluster import SentinelCluster
from tests.ha.conftest import api_key, submit, until_accepted
from tests.procs import wait_until
from webapp.idempotency import CLAIM_SECONDS, IdempotencyKeys

DURABLE = {"HOOKLINE_REDIS_MIN_REPLICAS": "1", "HOOKLINE_REDIS_REPLICA_TIMEOUT_MS": "200"}


def test_a_retry_after_a_submit_cut_short_by_a_failover_gets_a_task_before_the_lease_ends(
    cluster: SentinelCluster, make_app: Callable[..., Flask], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the API asking one replica to confirm each submit
    app = make_app(cluster.url, **DURABLE)
    client, auth = app.test_client(), api_key(app)
    old, replica = cluster.nodes
    wait_until(lambda: replica.client().exists(*old.client().keys("hl:apikey:*")) > 0,
               10, "the API key is on the replica")
    # And the primary dying between a request's claim and its task: once the
    # claim is on the replica (the request's own steps run as they are)
    validate = webapp.tasks.check_collection

    def primary_dies(*args: Any, **kwargs: Any) -> Any:
        if old.alive():
            probe = old.client(timeout=5)
            probe.set("probe", "1")
            assert probe.wait(1, 5000) == 1
            old.kill()
        return validate(*args, **kwargs)

    monkeypatch.setattr(webapp.tasks, "check_collection", primary_dies)
    # When a task is submitted with an Idempotency-Key
    status, body, headers = submit(client, auth, "k-cut")
    monkeypatch.setattr(webapp.tasks, "check_collection", validate)
    # Then the answer is a 503 with Retry-After
    assert status == 503, body
    assert headers.get("Retry-After")
    # And the promoted replica holds the request's claim, and no task
    cluster.wait_for_new_primary(old)
    claim = replica.client().get(IdempotencyKeys.redis_key("acme", "k-cut"))
    assert claim is not None and orjson.loads(claim)[0] == "pending"
    assert replica.client().keys("hl:task:*") == []
    # When the old primary's host is back as a replica and the client retries
    cluster.restart(old)
    # Then a retry is accepted while the claim's lease still runs: a new task
    assert replica.client().ttl(IdempotencyKeys.redis_key("acme", "k-cut")) > 0
    status, body, headers = until_accepted(client, auth, "k-cut", CLAIM_SECONDS / 4)
    assert "Idempotent-Replayed" not in headers
    assert replica.client().hget(keys.task(body["task_id"]), "status") == b"PENDING"
    # And a repeat gets that task again: one task for the key
    again = submit(client, auth, "k-cut")
    assert again[0] == 202 and again[1]["task_id"] == body["task_id"]
    assert again[2].get("Idempotent-Replayed") == "true"
    listed = client.get("/tasks", headers=auth).get_json()["items"]
    assert [t["task_id"] for t in listed] == [body["task_id"]]
