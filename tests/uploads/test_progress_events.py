"""``task.progress`` webhooks of large jobs: signed, each its own id, never after the ending."""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import redis as redis_lib
import requests

from actors.delivery import WebhookDelivery
from actors.endpoints import Endpoints
from actors.progress_events import ProgressDelivery, progress_webhook_id
from actors.services import Services
from callbacks import CallbackRegistry, Deliverer, RetryPolicy, UrlGuard, verify
from hookline import keys
from hookline.config import Config
from hookline.progress_events import ProgressEventLog
from hookline.schedule import Schedule
from tests.e2e.test_core import finished, key_for
from tests.e2e.test_webhooks import register
from tests.procs import Receiver, Stack, settled, wait_until
from tests.uploads.test_large_jobs import uploaded


def test_a_large_job_sends_signed_progress_events_and_its_ending_last(
        make_stack: Callable[..., Stack], tmp_path: Path, receiver: Receiver,
        redis: redis_lib.Redis) -> None:
    stack = make_stack(HOOKLINE_BLOB_URL=f"file://{tmp_path / 'blobs'}",
                       HOOKLINE_CHUNK_VECTORS="300", HOOKLINE_PROGRESS_EVENT_SECONDS="0.2")
    stack.start_web()
    stack.start_worker(processes=1, threads=1)
    stack.start_callbacks()
    # A receiver that takes its time, so that an event is often in flight
    receiver.script["/hook"] = lambda n: (204, {}, 0.1)
    auth = key_for(stack)
    callback = register(stack, auth, receiver.url())
    # Given a job of 100 chunks that asks for progress events
    vectors = np.random.default_rng(3).standard_normal((30_000, 64)).astype("<f4")
    upload_id = uploaded(stack, auth, vectors)
    resp = requests.post(f"{stack.url}/tasks", headers=auth, timeout=5, json={
        "upload_id": upload_id, "callback_id": callback["id"], "progress_events": True})
    assert resp.status_code == 202, resp.text
    task_id = resp.json()["task_id"]
    # When it runs to its end
    done = wait_until(lambda: finished(stack, auth, task_id), 120, "the task ends")
    assert done["status"] == "SUCCESS", done
    wait_until(lambda: any(json.loads(h["body"])["type"] == "task.succeeded"
                           for h in receiver.received("/hook")), 60, "the ending's webhook arrives")
    wait_until(lambda: settled(redis, "callbacks"), 30, "the webhooks settle")
    # Then every webhook verifies with the callback's secret
    events = [verify(h["body"], h["headers"], callback["secret"]) for h in receiver.received("/hook")]
    ids = [h["headers"]["webhook-id"] for h in receiver.received("/hook")]
    progress = [e for e in events if e["type"] == "task.progress"]
    # And progress came first, with more vectors done each time, each event its own id
    assert progress, "no progress event"
    assert [e["type"] for e in events] == ["task.progress"] * len(progress) + ["task.succeeded"]
    assert len(set(ids)) == len(ids)
    counts = [e["data"]["progress"]["done"] for e in progress]
    assert counts == sorted(set(counts)) and 0 < counts[-1] <= 30_000
    for event in progress:
        data = event["data"]
        assert (data["task_id"], data["status"]) == (task_id, "STARTED")
        assert data["progress"]["total"] == 30_000
        assert data["chunks"]["total"] == 100 and data["chunks"]["failed"] == 0
        assert data["chunks"]["done"] * 300 <= data["progress"]["done"]
    # And the attempts log holds them all, the ending's delivery counted on its own
    log = requests.get(f"{stack.url}/tasks/{task_id}/deliveries", headers=auth, timeout=5).json()
    assert [row["trigger"] for row in log["items"]] == ["progress"] * len(progress) + ["scheduled"]
    assert [row["webhook_id"] for row in log["items"]] == ids
    assert finished(stack, auth, task_id)["callback"]["delivery"] == "delivered"


def test_progress_events_need_a_callback_and_a_boolean(
        make_stack: Callable[..., Stack], tmp_path: Path, receiver: Receiver) -> None:
    stack = make_stack(HOOKLINE_BLOB_URL=f"file://{tmp_path / 'blobs'}")
    stack.start_web()
    auth = key_for(stack)
    upload_id = uploaded(stack, auth, np.ones((10, 4), dtype="<f4"))
    callback = register(stack, auth, receiver.url())
    for body in ({"upload_id": upload_id, "progress_events": True},
                 {"upload_id": upload_id, "progress_events": "yes", "callback_id": callback["id"]}):
        resp = requests.post(f"{stack.url}/tasks", headers=auth, json=body, timeout=5)
        assert resp.status_code == 422, resp.text
        assert "progress_events" in resp.json()["errors"]
    assert requests.get(f"{stack.url}/tasks", headers=auth, timeout=5).json()["items"] == []


def test_a_retried_progress_event_keeps_its_id_and_leaves_the_ending_alone(
        redis: redis_lib.Redis, receiver: Receiver) -> None:
    registry = CallbackRegistry(redis)
    callback, secret = registry.create("acme", receiver.url())
    deliverer = Deliverer(UrlGuard(["127.0.0.1"]), timeout=5.0)
    events = ProgressEventLog(redis)
    deliver = ProgressDelivery(events, registry, Endpoints(redis, registry), deliverer,
                               RetryPolicy((0.1, 0.1)), timeout=5.0, disable_after=86400.0)
    # Given a running task whose progress event 1 is due, and a receiver down at first
    redis.hset(keys.task("t1"), mapping={"status": "STARTED", "cb": callback["id"],
                                         "delivery": "pending", "pe": "1", "pe_n": "1"})
    receiver.script["/hook"] = lambda n: (503, {}, 0.0) if n == 1 else (204, {}, 0.0)
    data = {"task_id": "t1", "status": "STARTED", "progress": {"done": 5, "total": 10},
            "chunks": {"done": 1, "failed": 0, "total": 2}}
    # When it fails, and its retry comes due
    deliver("t1", callback["id"], {"n": 1, "data": data})
    assert Schedule(redis).due_at("progress", "t1") is not None
    deliver("t1", None, None)
    # Then the receiver got the same event twice, under the same id
    hooks = receiver.received("/hook")
    assert [h["headers"]["webhook-id"] for h in hooks] == [progress_webhook_id("t1", 1)] * 2
    assert all(verify(h["body"], h["headers"], secret)["data"] == data for h in hooks)
    # And the terminal webhook's state and count are untouched
    assert redis.hget(keys.task("t1"), "delivery") == b"pending"
    assert events.pending("t1") is None and events.busy_until("t1") == 0.0
    # And a newer event, or the task's ending, makes an event moot
    deliver("t1", callback["id"], {"n": 0, "data": data})
    redis.hset(keys.task("t1"), mapping={"pe_n": "2", "ending": repr(time.time())})
    deliver("t1", callback["id"], {"n": 2, "data": data})
    assert len(receiver.received("/hook")) == 2
    deliverer.close()


def test_the_ending_webhook_waits_for_a_progress_event_in_flight(
        config: Config, redis: redis_lib.Redis, receiver: Receiver) -> None:
    services = Services.build(config)
    actor = WebhookDelivery(services)
    callback, _ = CallbackRegistry(redis).create("acme", receiver.url())
    # Given a large job that has ended while one of its progress events is in flight
    redis.hset(keys.task("t2"), mapping={
        "tenant": "acme", "status": "SUCCESS", "created": "1", "finished": repr(time.time()),
        "cb": callback["id"], "delivery": "pending", "ch_total": "2", "ch_done": "2",
        "ch_failed": "0", "pe_busy": repr(time.time() + 30)})
    # When its terminal webhook comes up
    actor("t2", "scheduled", callback["id"])
    # Then it is not sent, but comes back through the schedule
    assert receiver.received() == []
    assert services.schedule.due_at("hook", "t2") is not None
    # And once the progress attempt is logged, it goes
    redis.hdel(keys.task("t2"), "pe_busy")
    actor("t2", "scheduled", callback["id"])
    hooks = receiver.received("/hook")
    assert [json.loads(h["body"])["type"] for h in hooks] == ["task.succeeded"]
    assert redis.hget(keys.task("t2"), "delivery") == b"delivered"
    actor.deliverer.close()
    services.redis.connection_pool.disconnect()
