"""What the job worker's own first webhook attempt leaves in Redis, with the actors run in process.

The job actor runs outside a worker, with the default budget (250 ms),
against the test's Redis and a real receiver; tests/e2e/test_inline_delivery.py
drives the same paths through the processes.
"""
from __future__ import annotations

import time
from collections.abc import Iterator

import orjson
import pytest
import redis as redis_lib
from flask.testing import FlaskClient

from actors.delivery import WebhookDelivery
from actors.jobs import VectorJob
from actors.queue_keys import decode
from actors.services import Services
from callbacks import CallbackRegistry
from hookline.config import Config
from tests.actors.tasks_with_callbacks import task_with_callback
from tests.procs import Receiver, queued


@pytest.fixture
def ended(client: FlaskClient, auth: dict, config: Config,
          receiver: Receiver) -> Iterator[tuple[Services, str, str]]:
    """Ends a task with a callback to ``receiver``'s ``/hook``, in the job actor, when called."""
    task_id, callback_id = task_with_callback(client, auth, receiver)
    services = Services.build(config.replace(webhook_retry_schedule=(60.0, 60.0)))
    assert services.config.inline_delivery_ms == 250
    yield services, task_id, callback_id
    services.redis.connection_pool.disconnect()


def run_job(services: Services, task_id: str) -> None:
    job = VectorJob(services, owner="worker-under-test")
    job(task_id)
    assert job.inline is not None
    job.inline.deliverer.close()


def attempts(redis: redis_lib.Redis, task_id: str) -> list[dict]:
    record = redis.hgetall(f"hl:task:{task_id}")
    return [orjson.loads(record[f"a:{n}".encode()]) for n in range(1, int(record[b"wh_attempts"]) + 1)]


def failing_since(redis: redis_lib.Redis, callback_id: str) -> float | None:
    record = CallbackRegistry(redis).get_for_delivery(callback_id)
    assert record is not None
    return record["failing_since"]  # type: ignore[no-any-return]


def test_a_failed_first_try_is_attempt_one_and_its_retry_is_on_the_schedule(
        ended: tuple[Services, str, str], receiver: Receiver, redis: redis_lib.Redis) -> None:
    services, task_id, callback_id = ended
    receiver.script["/hook"] = lambda n: (503, {}, 0.0)
    before = time.time()
    run_job(services, task_id)
    # The job worker's 503 is logged as the first attempt, the lease gave way
    # to the schedule's first retry, and the failure streak began
    assert len(receiver.received("/hook")) == 1
    log = attempts(redis, task_id)
    assert [(a["attempt"], a["status_code"], a["trigger"]) for a in log] == [(1, 503, "scheduled")]
    assert redis.hget(f"hl:task:{task_id}", "delivery") == b"retrying"
    due = redis.zscore("hl:schedule", f"hook:{task_id}")
    assert due is not None and before + 48 <= due <= time.time() + 72
    assert queued(redis, "callbacks") == []
    assert failing_since(redis, callback_id) is not None


def test_a_first_try_cut_short_queues_attempt_two_at_once(
        ended: tuple[Services, str, str], receiver: Receiver, redis: redis_lib.Redis) -> None:
    services, task_id, callback_id = ended
    # Given a receiver that answers within the timeout, not within the budget
    receiver.script["/hook"] = lambda n: (204, {}, 1.0)
    run_job(services, task_id)
    # Then the cut-short try is attempt 1, the lease is gone, and attempt 2
    # waits on the callbacks queue, carrying the event
    log = attempts(redis, task_id)
    assert [(a["attempt"], a["status_code"], a["error"]) for a in log] == [
        (1, None, "timeout after 0.25s")]
    assert redis.hget(f"hl:task:{task_id}", "delivery") == b"retrying"
    assert redis.zscore("hl:schedule", f"hook:{task_id}") is None
    assert failing_since(redis, callback_id) is None
    [message] = [decode(raw) for raw in queued(redis, "callbacks")]
    assert message.args[:3] == (task_id, "scheduled", callback_id)
    # When the callbacks worker takes it, it is delivered as attempt 2 with
    # the same webhook-id
    redis.delete("hl:q:callbacks")
    actor = WebhookDelivery(services)
    try:
        actor(*message.args)
    finally:
        actor.deliverer.close()
    log = attempts(redis, task_id)
    assert [(a["attempt"], a["status_code"]) for a in log] == [(1, None), (2, 204)]
    hooks = receiver.received("/hook")
    assert len(hooks) == 2
    assert {h["headers"]["webhook-id"] for h in hooks} == {log[0]["webhook_id"]}
    assert redis.hget(f"hl:task:{task_id}", "delivery") == b"delivered"


def test_a_first_try_whose_lease_ran_out_queues_nothing_more(
        ended: tuple[Services, str, str], receiver: Receiver, redis: redis_lib.Redis) -> None:
    services, task_id, _ = ended
    receiver.script["/hook"] = lambda n: (204, {}, 1.0)
    job = VectorJob(services, owner="worker-under-test")
    assert job.inline is not None
    # Given a job thread stalled past its lease: the schedule pump already
    # took the delivery off the schedule (and queued it) before the attempt
    original = job.inline.deliverer.send

    def stalled(*args, **kwargs):  # type: ignore[no-untyped-def]
        redis.zrem("hl:schedule", f"hook:{task_id}")
        return original(*args, **kwargs)

    job.inline.deliverer.send = stalled  # type: ignore[method-assign]
    try:
        job(task_id)
    finally:
        job.inline.deliverer.close()
    # Then its cut-short try is logged, and no second message is queued
    assert [a["attempt"] for a in attempts(redis, task_id)] == [1]
    assert queued(redis, "callbacks") == []
