"""An Idempotency-Key whose request is over without an answer is taken over at once,
and never by two requests that both write a task."""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis as redis_lib
from flask import Flask
from flask.testing import FlaskClient

import webapp.tasks
from hookline import keys
from hookline.config import Config
from tests.procs import queued, wait_until
from webapp import create_app
from webapp.idempotency import IdempotencyKeys

SEED = {"vector_data": [0.1, 0.2, 0.3], "metadata": {"source": "user"}}
BODY = json.dumps(SEED).encode()


@pytest.fixture
def other_app(config: Config) -> Iterator[Flask]:
    """A second web process on the same Redis."""
    app = create_app(config)
    yield app
    app.extensions["hookline"].redis.connection_pool.disconnect()


def post(client: FlaskClient, auth: dict, key: str) -> Any:
    return client.post("/tasks", data=BODY, content_type="application/json",
                       headers={**auth, "Idempotency-Key": key})


def test_a_claim_left_by_a_request_that_is_over_is_taken_over_at_once(
        app: Flask, other_app: Flask, auth: dict, redis: redis_lib.Redis) -> None:
    # Given a claim left standing by a request of another process that ended
    # without an answer (its answer lost, its release refused)
    idempotency: IdempotencyKeys = other_app.extensions["hookline"].idempotency
    rkey = idempotency.redis_key("acme", "order-50")
    running = idempotency.owners.begin()
    assert idempotency.claim(rkey, idempotency.fingerprint(BODY), running) is None
    client = app.test_client()
    # Then while that request runs, a repeat is told to wait
    assert post(client, auth, "order-50").status_code == 409
    # When the request ends
    idempotency.owners.end(running, settled=False)
    # Then a repeat gets a task as soon as the other process says so, well before the lease ends
    resp = wait_until(lambda: (r := post(client, auth, "order-50")).status_code == 202 and r, 5,
                      "the repeat is accepted")
    assert "Idempotent-Replayed" not in resp.headers
    # And one task exists, which a further repeat gets again
    again = post(client, auth, "order-50")
    assert again.get_json()["task_id"] == resp.get_json()["task_id"]
    assert redis.zcard("hl:tasks:acme") == 1


def test_a_repeat_with_another_body_never_takes_the_key_over(
        app: Flask, other_app: Flask, auth: dict, redis: redis_lib.Redis) -> None:
    idempotency: IdempotencyKeys = other_app.extensions["hookline"].idempotency
    rkey = idempotency.redis_key("acme", "order-51")
    running = idempotency.owners.begin()
    assert idempotency.claim(rkey, idempotency.fingerprint(b"{}"), running) is None
    idempotency.owners.end(running, settled=False)
    redis.delete(keys.claim_owner(idempotency.owners.process))  # its process is gone
    assert post(app.test_client(), auth, "order-51").status_code == 422
    assert redis.zcard("hl:tasks:acme") == 0


def test_a_request_whose_key_another_took_meanwhile_writes_no_task(
        app: Flask, other_app: Flask, auth: dict, redis: redis_lib.Redis,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a request that has claimed its key and not written its task yet,
    # when its claim goes (its lease ended) and another request takes the key
    validate = webapp.tasks.check_collection
    answers: list[Any] = []
    cut = []

    def meanwhile(*args: Any, **kwargs: Any) -> Any:
        if not cut:  # the first request only
            cut.append(True)
            redis.delete(IdempotencyKeys.redis_key("acme", "order-52"))
            answers.append(post(other_app.test_client(), auth, "order-52"))
        return validate(*args, **kwargs)

    monkeypatch.setattr(webapp.tasks, "check_collection", meanwhile)
    first = post(app.test_client(), auth, "order-52")
    # Then the other request's task is the only one, and the first request
    # answers with it
    (other,) = answers
    assert other.status_code == first.status_code == 202
    assert first.get_json()["task_id"] == other.get_json()["task_id"]
    assert first.headers["Idempotent-Replayed"] == "true"
    assert redis.zcard("hl:tasks:acme") == 1
    assert len(queued(redis, "jobs")) == 1
