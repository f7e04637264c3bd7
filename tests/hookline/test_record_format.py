"""Task records carry their format: unreadable or newer records are met clearly.

A record edited by hand answers a plain 500 problem from the API and fails
its task in the worker; a record of a newer format (a newer web process
during an upgrade) is left unclaimed by an older worker for one that reads it.
"""
from __future__ import annotations

import time

import pytest
import redis as redis_lib
from flask.testing import FlaskClient

from actors.held import HeldMessage
from actors.jobs import VectorJob
from actors.messages import HEARTBEATS_KEY, job_message
from actors.services import Services
from hookline import keys, task_record, task_runs
from tests.held_jobs import HELD_KEY, held_job, run_with


def submit(client: FlaskClient, auth: dict) -> str:
    resp = client.post("/tasks", json={"vector_data": [3.0, 4.0]}, headers=auth)
    assert resp.status_code == 202
    return str(resp.get_json()["task_id"])


def run_held(redis: redis_lib.Redis, services: Services, task_id: str) -> HeldMessage:
    """Run the task's job in process, as a worker holding its message would."""
    message = held_job(redis, job_message(task_id).data)
    redis.zadd(HEARTBEATS_KEY, {"worker": int(time.time() * 1000)})
    run_with(VectorJob(services, owner="worker"), message, task_id)
    return message


def test_a_new_record_names_its_format(client: FlaskClient, auth: dict, redis: redis_lib.Redis) -> None:
    task_id = submit(client, auth)
    assert redis.hget(keys.task(task_id), "v") == str(task_record.FORMAT_VERSION).encode()


@pytest.mark.parametrize(("field", "value"), [
    ("created", b"yesterday"), ("meta", b"{not json"), ("status", b"SLEEPING"), ("v", b"99"),
])
def test_an_unreadable_record_answers_a_plain_500_problem(
        client: FlaskClient, auth: dict, redis: redis_lib.Redis, field: str, value: bytes) -> None:
    task_id = submit(client, auth)
    redis.hset(keys.task(task_id), field, value)
    for resp in (client.get(f"/tasks/{task_id}", headers=auth), client.get("/tasks", headers=auth)):
        assert resp.status_code == 500
        assert resp.mimetype == "application/problem+json"
        body = resp.get_json()
        assert body["detail"] == "The task's stored record cannot be read; nothing was changed."
        assert "Traceback" not in resp.get_data(as_text=True)
    # Other tasks still read normally
    other = submit(client, auth)
    assert client.get(f"/tasks/{other}", headers=auth).status_code == 200


def test_a_worker_fails_a_task_whose_record_it_cannot_read_once(
        client: FlaskClient, auth: dict, redis: redis_lib.Redis, services: Services) -> None:
    task_id = submit(client, auth)
    redis.hset(keys.task(task_id), "created", b"yesterday")
    message = run_held(redis, services, task_id)
    # The task ends, visibly, and its message is settled instead of coming back
    assert redis.hget(keys.task(task_id), "status") == b"FAILURE"
    assert redis.hget(keys.task(task_id), "error") == b"the task record cannot be read"
    assert message.acknowledged and redis.llen(HELD_KEY) == 0


def test_an_older_worker_leaves_a_newer_record_to_a_worker_that_reads_it(
        client: FlaskClient, auth: dict, redis: redis_lib.Redis, services: Services,
        monkeypatch: pytest.MonkeyPatch) -> None:
    task_id = submit(client, auth)
    # Given a record written by a newer version, in a format this one does not know
    newer = task_record.FORMAT_VERSION + 1
    redis.hset(keys.task(task_id), "v", newer)
    before = redis.hgetall(keys.task(task_id))
    run_held(redis, services, task_id)
    # Then this worker leaves it as it was: not claimed, not failed
    assert redis.hgetall(keys.task(task_id)) == before
    assert redis.zscore(keys.ACTIVE, task_id) is not None  # the reconciler sends it again
    # And a worker that reads the newer format runs it to its end
    monkeypatch.setattr(task_runs, "FORMAT_VERSION", newer)
    monkeypatch.setattr(task_record, "FORMAT_VERSION", newer)
    run_held(redis, services, task_id)
    assert redis.hget(keys.task(task_id), "status") == b"SUCCESS"


def test_another_tenants_unreadable_record_is_simply_not_found(
        client: FlaskClient, auth: dict, other_key: str, redis: redis_lib.Redis) -> None:
    task_id = submit(client, auth)
    redis.hset(keys.task(task_id), "created", b"yesterday")
    resp = client.get(f"/tasks/{task_id}", headers={"Authorization": f"Bearer {other_key}"})
    assert resp.status_code == 404
