"""Every Hookline process's Redis client follows a Sentinel failover on its own (SPEC §12)."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from flask import Flask
from prometheus_client import REGISTRY

from hookline.config import ConfigError
from hookline.redis_client import UNAVAILABLE, connect
from hookline.sentinel import SentinelURL, parse_sentinel_url
from tests.ha.cluster import SentinelCluster
from tests.ha.conftest import api_key, submit
from tests.procs import wait_until


def failovers_seen() -> float:
    return REGISTRY.get_sample_value("hookline_redis_failovers_total") or 0.0


def test_a_sentinel_url_names_the_sentinels_the_primary_and_the_db() -> None:
    assert parse_sentinel_url("redis+sentinel://h1:26379,h2:26380,h3/mymaster/2") == SentinelURL(
        sentinels=(("h1", 26379), ("h2", 26380), ("h3", 26379)), service_name="mymaster", db=2)
    named = parse_sentinel_url("redis+sentinel://:s%40cret@10.0.0.1:5000/main")
    assert (named.sentinels, named.service_name, named.db) == ((("10.0.0.1", 5000),), "main", 0)
    assert named.password == "s@cret"


@pytest.mark.parametrize("url", [
    "redis+sentinel://h1:26379",                 # no master name
    "redis+sentinel://h1:26379/main/zero",       # db is not a number
    "redis+sentinel://h1:port/main/0",           # port is not a number
    "redis+sentinel://:hunter2@h1:x/main/0",     # the error must not show the password
    "redis+sentinel://h1:1,,h2:2/main/0",        # an empty host
])
def test_a_malformed_sentinel_url_is_refused_without_showing_its_password(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        connect(url)
    assert "hunter2" not in str(caught.value)


def test_a_client_follows_a_failover_with_its_scripts_and_threads(cluster: SentinelCluster) -> None:
    # Given a client of the Sentinel URL, used from two threads, with a script loaded
    client = connect(cluster.url)
    script = client.register_script("return redis.call('INCR', KEYS[1])")
    assert script(keys=["n"]) == 1
    other_thread: list[object] = []
    runner = threading.Thread(target=lambda: other_thread.append(client.incr("n")))
    runner.start()
    runner.join(10)
    assert other_thread == [2]
    assert client.wait(1, 5000) == 1  # both writes are on the replica
    old = cluster.primary()
    replica = next(node for node in cluster.nodes if node is not old)
    # (the script is not on the replica: the new primary must be given it)
    assert replica.client().script_exists(script.sha) == [False]
    before = failovers_seen()
    # When the primary's host dies
    old.kill()
    errors: list[Exception] = []

    def write() -> bool:
        try:
            return bool(script(keys=["n"]))
        except Exception as exc:
            errors.append(exc)
            raise

    # Then calls fail as "unavailable" (never anything else) until a replica
    # is promoted, and then the script runs on the new primary
    wait_until(write, 30, "the script runs on the new primary", interval=0.1)
    new = cluster.wait_for_new_primary(old)
    assert all(isinstance(exc, UNAVAILABLE) for exc in errors), errors
    assert int(new.client().get("n") or 0) >= 3
    # And the other thread, whose connection went to the old primary, follows too
    other_thread.clear()
    runner = threading.Thread(target=lambda: other_thread.append(client.incr("n")))
    runner.start()
    runner.join(10)
    assert other_thread and isinstance(other_thread[0], int)
    # And the process counted one failover, however many connections saw it
    assert failovers_seen() == before + 1
    client.close()


def test_the_api_answers_503_with_retry_after_while_the_primary_moves(
    cluster: SentinelCluster, make_app: Callable[..., Flask]
) -> None:
    # Given the API on the Sentinel URL, accepting tasks
    app = make_app(cluster.url)
    auth = api_key(app)
    client = app.test_client()
    assert submit(client, auth)[0] == 202
    old = cluster.primary()
    # When the primary dies while clients keep submitting
    old.kill()
    statuses: list[int] = []
    accepted: list[str] = []
    started = time.monotonic()

    def submit_once() -> bool:
        status, body, headers = submit(client, auth)
        statuses.append(status)
        if status == 503:
            assert headers.get("Retry-After"), headers
            assert headers["Content-Type"] == "application/problem+json"
        if status == 202:
            accepted.append(body["task_id"])
        return status == 202

    wait_until(submit_once, 40, "the API accepts tasks again", interval=0.05)
    unavailable = time.monotonic() - started
    # Then it answered 503 with Retry-After during the switch, never 500
    assert set(statuses) <= {202, 503}, statuses
    assert 503 in statuses
    print(f"\n{statuses.count(503)} answers 503 over {unavailable:.1f} s of failover")
    # And what it accepted afterwards is on the new primary
    cluster.wait_for_new_primary(old)
    assert client.get(f"/tasks/{accepted[-1]}", headers=auth).status_code == 200


def test_a_demoted_primary_answers_503_not_500(
    cluster: SentinelCluster, make_app: Callable[..., Flask]
) -> None:
    # Given an API key, made on the primary
    primary, replica = cluster.nodes
    auth = api_key(make_app(cluster.url))
    wait_until(lambda: replica.client().dbsize() == primary.client().dbsize(), 10, "the replica caught up")
    # When the API's plain REDIS_URL reaches a server that is a replica now
    # (a managed Redis behind one host name, just after its failover)
    app = make_app(f"redis://127.0.0.1:{replica.port}/0")
    client = app.test_client()
    # Then a submit, with or without an Idempotency-Key, is a 503 with Retry-After
    for key in (None, "k-1"):
        status, body, headers = submit(client, auth, key)
        assert status == 503, body
        assert headers.get("Retry-After")
    # And reads still work
    assert client.get("/tasks", headers=auth).status_code == 200


def test_the_failover_counter_is_exported(cluster: SentinelCluster, make_app: Callable[..., Flask]) -> None:
    app = make_app(cluster.url)
    body = app.test_client().get("/metrics").get_data(as_text=True)
    assert "hookline_redis_failovers_total" in body
