"""What one webhook attempt leaves in Redis, with the actor run in process.

The actor runs outside a worker here, against the test's Redis and a real
receiver; the end-to-end tests drive the same paths through the processes.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import redis as redis_lib
from dramatiq.middleware.time_limit import TimeLimitExceeded
from dramatiq.threading import raise_thread_exception
from flask.testing import FlaskClient

from actors.delivery import WebhookDelivery
from actors.jobs import VectorJob
from actors.services import Services
from hookline import keys
from hookline.config import Config
from tests.actors.tasks_with_callbacks import task_with_callback
from tests.procs import Receiver


@pytest.fixture
def finished(client: FlaskClient, auth: dict, config: Config,
             receiver: Receiver) -> Iterator[tuple[Services, str, str]]:
    """A task that has ended, with a callback to ``receiver``'s ``/hook``."""
    task_id, callback_id = task_with_callback(client, auth, receiver)
    # The webhook actor's first attempt is what these tests watch: the job
    # leaves it to the queue instead of delivering it itself.
    services = Services.build(config.replace(webhook_retry_schedule=(60.0,), inline_delivery_ms=0))
    VectorJob(services, owner="worker-under-test")(task_id)
    yield services, task_id, callback_id
    services.redis.connection_pool.disconnect()


@pytest.fixture
def delivery(finished: tuple[Services, str, str]) -> Iterator[WebhookDelivery]:
    """The webhook actor, its keep-alive connections closed afterwards."""
    actor = WebhookDelivery(finished[0])
    yield actor
    actor.deliverer.close()


def test_a_failed_attempt_is_logged_and_its_retry_scheduled_together(
        finished: tuple[Services, str, str], delivery: WebhookDelivery, receiver: Receiver,
        redis: redis_lib.Redis) -> None:
    services, task_id, callback_id = finished
    receiver.script["/hook"] = lambda n: (503, {}, 0.0)

    def connection_lost(*args: object) -> None:
        raise redis_lib.ConnectionError("connection lost")

    # Redis dropping the connection after the attempt is logged must not
    # lose the retry: nothing after the log may be needed to schedule it.
    services.schedule.add = connection_lost  # type: ignore[method-assign]
    before = time.time()
    delivery(task_id, "scheduled", callback_id)
    record = redis.hgetall(f"hl:task:{task_id}")
    assert record[b"delivery"] == b"retrying"
    assert b'"status_code":503' in record[b"a:1"]
    due = redis.zscore("hl:schedule", f"hook:{task_id}")
    # The schedule's one step: 60 s, give or take the policy's 20 % jitter
    assert due is not None and before + 48 <= due <= time.time() + 72


def test_failed_for_good_enters_the_recover_index_and_a_delivery_leaves_it(
        finished: tuple[Services, str, str], delivery: WebhookDelivery, receiver: Receiver,
        redis: redis_lib.Redis) -> None:
    _, task_id, callback_id = finished
    receiver.script["/hook"] = lambda n: (400, {}, 0.0)
    delivery(task_id, "scheduled", callback_id)
    assert redis.hget(f"hl:task:{task_id}", "delivery") == b"failed"
    assert redis.zscore(keys.failed_deliveries(callback_id), task_id) is not None
    assert redis.zscore("hl:schedule", f"hook:{task_id}") is None
    # A manual resend that gets through
    receiver.script["/hook"] = lambda n: (204, {}, 0.0)
    delivery(task_id, "manual", callback_id)
    assert redis.hget(f"hl:task:{task_id}", "delivery") == b"delivered"
    assert redis.zscore(keys.failed_deliveries(callback_id), task_id) is None
    assert len(receiver.received("/hook")) == 2


def test_a_delivery_that_breaks_fails_visibly_and_can_be_resent(
        finished: tuple[Services, str, str], delivery: WebhookDelivery, receiver: Receiver,
        redis: redis_lib.Redis, client: FlaskClient, auth: dict) -> None:
    _, task_id, callback_id = finished
    key = f"hl:task:{task_id}"
    # A record the actor cannot read (a bug, or a hand edit)
    result = redis.hget(key, "result")
    redis.hset(key, "result", b"{not json")
    delivery(task_id, "scheduled", callback_id)
    assert redis.hget(key, "delivery") == b"failed"
    assert redis.zscore(keys.failed_deliveries(callback_id), task_id) is not None
    # Once mended, the attempts log shows why, recover finds it, and it is delivered
    redis.hset(key, "result", result)
    log = client.get(f"/tasks/{task_id}/deliveries", headers=auth).get_json()["items"]
    assert [(d["status_code"], d["error"]) for d in log] == [(None, "internal error while delivering")]
    since = "2000-01-01T00:00:00Z"
    resp = client.post(f"/callbacks/{callback_id}/recover", json={"since": since}, headers=auth)
    assert resp.status_code == 202 and resp.get_json()["count"] == 1
    delivery(task_id, "manual", callback_id)
    assert redis.hget(key, "delivery") == b"delivered"
    assert len(receiver.received("/hook")) == 1


def test_a_delivery_stopped_by_its_time_limit_fails_visibly(
        finished: tuple[Services, str, str], delivery: WebhookDelivery, receiver: Receiver,
        redis: redis_lib.Redis) -> None:
    _, task_id, callback_id = finished
    receiver.script["/hook"] = lambda n: (204, {}, 1.0)
    # What Dramatiq's TimeLimit does to a worker thread that overruns
    limit = threading.Timer(0.2, raise_thread_exception, args=(threading.get_ident(), TimeLimitExceeded))
    limit.start()
    try:
        delivery(task_id, "scheduled", callback_id)
    finally:
        limit.join()
    assert redis.hget(f"hl:task:{task_id}", "delivery") == b"failed"
    assert b'"error":"time limit exceeded"' in redis.hget(f"hl:task:{task_id}", "a:1")
    assert redis.zscore(keys.failed_deliveries(callback_id), task_id) is not None
