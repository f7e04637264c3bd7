"""What a job's claim and its message do when Redis goes away mid-run.

The job actor runs in process here, against the test's Redis, with the
message it would get from the broker; the restart tests in
``tests/e2e/test_faults.py`` drive the same paths through real processes.
"""
from __future__ import annotations

import time

import pytest
import redis as redis_lib
from flask.testing import FlaskClient

from actors import jobs
from actors.jobs import VectorJob
from actors.messages import HEARTBEATS_KEY, job_message
from actors.services import Services
from tests.held_jobs import held_job, run_with


def test_a_job_that_loses_redis_after_its_claim_goes_back_and_another_worker_finishes_it(
        client: FlaskClient, auth: dict, services: Services, redis: redis_lib.Redis,
        monkeypatch: pytest.MonkeyPatch) -> None:
    task_id = client.post("/tasks", json={"vector_data": [3.0, 4.0]}, headers=auth).get_json()["task_id"]
    message = held_job(redis, job_message(task_id).data)
    # Given a worker, alive, that claims the task and then cannot reach
    # Redis to end it for longer than a job waits
    redis.zadd(HEARTBEATS_KEY, {"first": int(time.time() * 1000)})
    monkeypatch.setattr(jobs, "REDIS_WAIT_SECONDS", 0.2)
    first = VectorJob(services, owner="first")

    def unreachable(*args: object, **kwargs: object) -> bool:
        raise redis_lib.ConnectionError("Redis went away")

    monkeypatch.setattr(services.store, "finish", unreachable)
    run_with(first, message, task_id)
    # Then the message is to go back on its queue, not to fail
    assert message.send_again and not message.acknowledged
    assert redis.hget(f"hl:task:{task_id}", "status") == b"STARTED"
    # And when another worker takes that message, it runs the task to its
    # end, though the first worker is still alive
    monkeypatch.undo()
    redis.zadd(HEARTBEATS_KEY, {"first": int(time.time() * 1000)})
    run_with(VectorJob(services, owner="second"), held_job(redis, message.raw), task_id)
    body = client.get(f"/tasks/{task_id}", headers=auth).get_json()
    assert body["status"] == "SUCCESS"
    assert body["attempts"] == 2


def test_another_message_for_a_task_a_live_worker_runs_is_dropped(
        client: FlaskClient, auth: dict, services: Services, redis: redis_lib.Redis) -> None:
    task_id = client.post("/tasks", json={"vector_data": [3.0, 4.0]}, headers=auth).get_json()["task_id"]
    # Given a live worker that claimed the task with its message
    redis.zadd(HEARTBEATS_KEY, {"first": int(time.time() * 1000)})
    assert services.store.start(task_id, "first", 0, claim="the-first-message")[0] == "run"
    # When a second message for it (a duplicate) reaches another worker
    duplicate = held_job(redis, job_message(task_id).data)
    run_with(VectorJob(services, owner="second"), duplicate, task_id)
    # Then that worker leaves the run alone
    assert redis.hget(f"hl:task:{task_id}", "status") == b"STARTED"
    assert redis.hget(f"hl:task:{task_id}", "owner") == b"first"
    # And the first worker asking again with its own claim gets its run back
    outcome, task, payload = services.store.start(task_id, "first", 0, claim="the-first-message")
    assert outcome == "run" and task is not None and task.attempts == 1 and payload
