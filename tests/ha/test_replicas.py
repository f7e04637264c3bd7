"""HOOKLINE_REDIS_MIN_REPLICAS: a 202 means replicas hold the task too (SPEC §12).

Nothing is ever both lost and acknowledged: a submit that its replicas do not
confirm in time is a 503, and a retry with the same Idempotency-Key gets the
original task if it survived, a new one if it did not.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from hookline import keys
from hookline.config import Config, ConfigError
from hookline.redis_client import SOCKET_TIMEOUT
from tests.ha.cluster import SentinelCluster
from tests.ha.conftest import api_key, submit, until_accepted
from tests.procs import wait_until

#: A second for the replica to confirm: the 200 ms default was missed once on
#: this 2-core machine by a healthy replica, which made a 202 test see a 503.
DURABLE = {"HOOKLINE_REDIS_MIN_REPLICAS": "1", "HOOKLINE_REDIS_REPLICA_TIMEOUT_MS": "1000"}


@pytest.fixture
def durable(cluster: SentinelCluster, make_app: Callable[..., Flask]) -> tuple[FlaskClient, dict[str, str]]:
    """A test client of the API asking one replica to confirm each submit, and an API key."""
    app = make_app(cluster.url, **DURABLE)
    return app.test_client(), api_key(app)


def test_a_202_means_the_replica_holds_the_task(
    cluster: SentinelCluster, durable: tuple[FlaskClient, dict[str, str]]
) -> None:
    # Given the API asking one replica to confirm each submit
    client, auth = durable
    replica = cluster.nodes[1]
    # When tasks are submitted, with and without an Idempotency-Key
    for key in (None, "k-1"):
        status, body, _ = submit(client, auth, key)
        # Then each 202 comes when the replica already has the task
        assert status == 202, body
        assert replica.client().hget(keys.task(body["task_id"]), "status") == b"PENDING"


def test_an_unconfirmed_submit_is_a_503_and_its_retry_gets_the_same_task(
    cluster: SentinelCluster, durable: tuple[FlaskClient, dict[str, str]]
) -> None:
    # Given the API asking one replica to confirm, and that replica stalled
    client, auth = durable
    replica = cluster.nodes[1]
    replica.pause()
    try:
        # When a task is submitted
        started = time.monotonic()
        status, body, headers = submit(client, auth, "k-stalled")
        waited = time.monotonic() - started
        # Then the answer is a 503 with Retry-After, after the replica timeout
        # (not a socket timeout)
        assert status == 503, body
        assert headers.get("Retry-After")
        assert "Idempotency-Key" in body["detail"]
        assert waited < SOCKET_TIMEOUT, waited
        # And a retry while the replica is still stalled is a 503 again
        assert submit(client, auth, "k-stalled")[0] == 503
    finally:
        replica.resume()
    # When the replica catches up and the client retries with the same key
    status, body, headers = until_accepted(client, auth, "k-stalled", 10)
    # Then it gets the task its first request wrote: one task, not two
    assert headers.get("Idempotent-Replayed") == "true"
    listed = client.get("/tasks", headers=auth).get_json()["items"]
    assert [t["task_id"] for t in listed] == [body["task_id"]]


def test_an_unconfirmed_task_lost_in_a_failover_is_submitted_afresh_on_retry(
    cluster: SentinelCluster, durable: tuple[FlaskClient, dict[str, str]]
) -> None:
    # Given the API asking one replica to confirm, and that replica stalled
    client, auth = durable
    old, replica = cluster.nodes
    # (WAIT on a fresh connection covers none of the key's writes: look for them)
    wait_until(lambda: set(replica.client().keys("hl:apikey:*")) == set(old.client().keys("hl:apikey:*"))
               and replica.client().exists(*old.client().keys("hl:apikey:*")) > 0,
               10, "the API key is on the replica")
    # (stopped, and cut off: what the primary writes now never reaches it)
    replica.pause()
    old.drop_replicas()
    status, first, _ = submit(client, auth, "k-lost")
    assert status == 503
    written = [k.decode() for k in old.client().keys("hl:task:*")]
    assert len(written) == 1
    lost_id = written[0].removeprefix("hl:task:")
    # When the primary dies before the replica got the task, and the replica is promoted
    old.kill()
    replica.resume()
    cluster.wait_for_new_primary(old)
    # And the old primary's host comes back, as a replica of the new one
    cluster.restart(old)
    # Then the retry with the same key gets a new task, which the replicas confirm
    status, body, headers = until_accepted(client, auth, "k-lost", 20)
    assert body["task_id"] != lost_id
    assert "Idempotent-Replayed" not in headers
    # And the lost task is gone for good, so it was never acknowledged and lost
    assert client.get(f"/tasks/{lost_id}", headers=auth).status_code == 404
    assert old.client().hget(keys.task(body["task_id"]), "status") == b"PENDING"


def test_without_min_replicas_a_stalled_replica_does_not_hold_up_a_submit(
    cluster: SentinelCluster, make_app: Callable[..., Flask]
) -> None:
    app = make_app(cluster.url)
    auth = api_key(app)
    cluster.nodes[1].pause()
    try:
        assert submit(app.test_client(), auth, "k-fast")[0] == 202
    finally:
        cluster.nodes[1].resume()


def test_the_replica_settings_default_to_today_and_refuse_bad_values() -> None:
    config = Config.from_env(env={})
    assert (config.redis_min_replicas, config.redis_replica_timeout_ms) == (0, 200)
    assert Config.from_env(env=DURABLE).redis_min_replicas == 1
    for name, value in (("HOOKLINE_REDIS_MIN_REPLICAS", "-1"), ("HOOKLINE_REDIS_MIN_REPLICAS", "one"),
                        ("HOOKLINE_REDIS_REPLICA_TIMEOUT_MS", "0")):
        with pytest.raises(ConfigError, match=name):
            Config.from_env(env={name: value})
