"""Idempotency keys, rate limits, tenant isolation on every route, secrets never shown twice."""
from __future__ import annotations

import threading

import redis as redis_lib
from flask import Flask
from flask.testing import FlaskClient

from hookline.config import Config
from tests.procs import queued
from webapp import create_app

SEED = {"vector_data": [0.1, 0.2, 0.3], "metadata": {"source": "user"}}


def test_same_key_same_body_replays_the_first_answer(client: FlaskClient, auth: dict,
                                                     redis: redis_lib.Redis) -> None:
    headers = {**auth, "Idempotency-Key": "order-42"}
    first = client.post("/tasks", json=SEED, headers=headers)
    second = client.post("/tasks", json=SEED, headers=headers)
    assert first.status_code == second.status_code == 202
    assert second.get_json() == first.get_json()
    assert second.headers["Location"] == first.headers["Location"]
    assert redis.zcard("hl:tasks:acme") == 1
    assert len(queued(redis, "jobs")) == 1


def test_same_key_other_body_is_422(client: FlaskClient, auth: dict, redis: redis_lib.Redis) -> None:
    headers = {**auth, "Idempotency-Key": "order-43"}
    assert client.post("/tasks", json=SEED, headers=headers).status_code == 202
    other = client.post("/tasks", json={**SEED, "metadata": {"source": "other"}}, headers=headers)
    assert other.status_code == 422
    assert other.mimetype == "application/problem+json"
    assert "different" in other.get_json()["detail"]
    assert redis.zcard("hl:tasks:acme") == 1


def test_key_in_flight_is_409(client: FlaskClient, auth: dict, redis: redis_lib.Redis) -> None:
    from webapp.idempotency import IdempotencyKeys

    # Given a first request that has claimed the key and not answered yet
    keys = IdempotencyKeys(redis)
    import json

    body = json.dumps(SEED).encode()
    rkey = keys.redis_key("acme", "order-44")
    assert keys.claim(rkey, keys.fingerprint(body), keys.owners.begin()) is None
    # When the same request comes again
    resp = client.post("/tasks", data=body, content_type="application/json",
                       headers={**auth, "Idempotency-Key": "order-44"})
    # Then it is told to wait, and nothing is created
    assert resp.status_code == 409
    assert resp.headers["Retry-After"]
    assert redis.zcard("hl:tasks:acme") == 0


def test_keys_are_scoped_to_the_tenant(client: FlaskClient, auth: dict, other_key: str,
                                       redis: redis_lib.Redis) -> None:
    mine = client.post("/tasks", json=SEED, headers={**auth, "Idempotency-Key": "shared"})
    theirs = client.post("/tasks", json=SEED, headers={"Authorization": f"Bearer {other_key}",
                                                       "Idempotency-Key": "shared"})
    assert mine.status_code == theirs.status_code == 202
    assert mine.get_json()["task_id"] != theirs.get_json()["task_id"]


def test_twenty_concurrent_requests_with_one_key_create_one_task(
        app: Flask, auth: dict, redis: redis_lib.Redis) -> None:
    results: list[tuple[int, str | None]] = []
    barrier = threading.Barrier(20)

    def call() -> None:
        client = app.test_client()
        barrier.wait()
        resp = client.post("/tasks", json=SEED, headers={**auth, "Idempotency-Key": "burst"})
        results.append((resp.status_code, (resp.get_json() or {}).get("task_id")))

    threads = [threading.Thread(target=call) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 20
    assert {status for status, _ in results} <= {202, 409}
    assert len({task_id for status, task_id in results if status == 202}) == 1
    assert redis.zcard("hl:tasks:acme") == 1
    assert len(queued(redis, "jobs")) == 1


def test_rate_limit_answers_429_with_retry_after(config: Config, redis: redis_lib.Redis) -> None:
    app = create_app(config.replace(rate_limit=2.0))
    client = app.test_client()
    key = app.test_cli_runner().invoke(args=["keys", "create", "acme"]).output.strip().splitlines()[-1]
    headers = {"Authorization": f"Bearer {key}"}
    statuses = [client.get("/tasks", headers=headers).status_code for _ in range(8)]
    assert statuses[:4] == [200] * 4
    assert 429 in statuses
    limited = client.get("/tasks", headers=headers)
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.mimetype == "application/problem+json"


def _routes(task_id: str, cb_id: str) -> list[tuple[str, str, dict | None]]:
    return [
        ("get", f"/tasks/{task_id}", None),
        ("post", f"/tasks/{task_id}/cancel", None),
        ("get", f"/tasks/{task_id}/deliveries", None),
        ("post", f"/tasks/{task_id}/deliveries/retry", None),
        ("get", f"/callbacks/{cb_id}", None),
        ("patch", f"/callbacks/{cb_id}", {"description": "mine now"}),
        ("post", f"/callbacks/{cb_id}/rotate-secret", None),
        ("post", f"/callbacks/{cb_id}/recover", {"since": "2020-01-01T00:00:00Z"}),
        ("delete", f"/callbacks/{cb_id}", None),
    ]


def test_tenant_b_can_touch_nothing_of_tenant_a(client: FlaskClient, auth: dict, other_key: str,
                                                redis: redis_lib.Redis) -> None:
    callback = client.post("/callbacks", json={"url": "http://127.0.0.1:9/hook"}, headers=auth).get_json()
    task_id = client.post("/tasks", json={**SEED, "callback_id": callback["id"]},
                          headers=auth).get_json()["task_id"]
    other = {"Authorization": f"Bearer {other_key}"}
    before = {k: redis.dump(k) for k in redis.keys("*") if not k.startswith(b"hl:apikey")}
    for method, path, body in _routes(task_id, callback["id"]):
        resp = getattr(client, method)(path, headers=other, json=body)
        assert resp.status_code == 404, (method, path, resp.status_code)
        assert callback["id"] not in resp.get_data(as_text=True) or method == "get"
    # B's lists do not show A's things, and B cannot submit with A's callback
    assert client.get("/tasks", headers=other).get_json()["items"] == []
    assert client.get("/callbacks", headers=other).get_json()["items"] == []
    resp = client.post("/tasks", json={**SEED, "callback_id": callback["id"]}, headers=other)
    assert resp.status_code == 422
    resp = client.post("/tasks", json={**SEED, "callback_url": "http://127.0.0.1:9/hook"}, headers=other)
    assert resp.status_code == 422
    after = {k: redis.dump(k) for k in redis.keys("*") if not k.startswith(b"hl:apikey")}
    assert after == before
    # And A still sees everything unchanged
    assert client.get(f"/tasks/{task_id}", headers=auth).status_code == 200
    assert client.get(f"/callbacks/{callback['id']}", headers=auth).get_json()["description"] == ""


def test_callback_secret_only_on_create_and_rotate(client: FlaskClient, auth: dict) -> None:
    created = client.post("/callbacks", json={"url": "http://127.0.0.1:9/s"}, headers=auth)
    assert created.status_code == 201
    secret = created.get_json()["secret"]
    cb_id = created.get_json()["id"]
    for resp in (client.get(f"/callbacks/{cb_id}", headers=auth),
                 client.get("/callbacks", headers=auth),
                 client.patch(f"/callbacks/{cb_id}", json={"description": "x"}, headers=auth)):
        assert resp.status_code == 200
        assert "secret" not in resp.get_data(as_text=True)
        assert secret not in resp.get_data(as_text=True)
    rotated = client.post(f"/callbacks/{cb_id}/rotate-secret", headers=auth).get_json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != secret
