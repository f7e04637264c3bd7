"""The task API in process, against a real Redis: answers, headers, lists, cancel."""
from __future__ import annotations

import json
import re

import redis as redis_lib
from flask.testing import FlaskClient

from actors.messages import HEARTBEATS_KEY
from hookline import keys
from tests.procs import queued, wait_until

SEED = {"vector_data": [0.1, 0.2, 0.3], "metadata": {"source": "user"}}
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_submit_answers_202_with_the_seed_body(client: FlaskClient, auth: dict) -> None:
    resp = client.post("/tasks", json=SEED, headers=auth)
    assert resp.status_code == 202
    body = resp.get_json()
    assert UUID.match(body["task_id"])
    assert body["status"] == "Processing"
    assert resp.headers["Location"] == f"/tasks/{body['task_id']}"
    assert body["links"]["self"] == resp.headers["Location"]


def test_submit_writes_record_payload_and_message_together(
    client: FlaskClient, auth: dict, redis: redis_lib.Redis
) -> None:
    task_id = client.post("/tasks", json=SEED, headers=auth).get_json()["task_id"]
    record = redis.hgetall(keys.task(task_id))
    assert record[b"status"] == b"PENDING"
    assert len(record[b"payload"]) == 3 * 8
    [message] = queued(redis, "jobs")
    # The message carries the task id, never the payload.
    assert json.loads(message)["args"] == [task_id] and b"0.1" not in message


def test_pending_task_read_paces_pollers_and_supports_etags(client: FlaskClient, auth: dict) -> None:
    task_id = client.post("/tasks", json=SEED, headers=auth).get_json()["task_id"]
    resp = client.get(f"/tasks/{task_id}", headers=auth)
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["status"] == "PENDING"
    assert body["progress"] == {"done": 0, "total": 3}
    assert body["metadata"] == {"source": "user"}
    assert body["callback"] is None
    assert resp.headers["Retry-After"] == "1"
    assert resp.headers["Cache-Control"] == "private, no-cache"
    etag = resp.headers["ETag"]
    again = client.get(f"/tasks/{task_id}", headers={**auth, "If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["ETag"] == etag
    stale = client.get(f"/tasks/{task_id}", headers={**auth, "If-None-Match": '"nope"'})
    assert stale.status_code == 200


def test_list_is_newest_first_filtered_and_paged(client: FlaskClient, auth: dict,
                                                 other_key: str) -> None:
    ids = [client.post("/tasks", json=SEED, headers=auth).get_json()["task_id"] for _ in range(5)]
    client.post("/tasks", json=SEED, headers={"Authorization": f"Bearer {other_key}"})
    client.post(f"/tasks/{ids[1]}/cancel", headers=auth)
    page = client.get("/tasks?limit=2", headers=auth).get_json()
    assert [t["task_id"] for t in page["items"]] == ids[::-1][:2]
    seen = [t["task_id"] for t in page["items"]]
    while page["next_cursor"]:
        page = client.get(f"/tasks?limit=2&cursor={page['next_cursor']}", headers=auth).get_json()
        seen += [t["task_id"] for t in page["items"]]
    assert seen == ids[::-1]
    revoked = client.get("/tasks?status=REVOKED", headers=auth).get_json()
    assert [t["task_id"] for t in revoked["items"]] == [ids[1]]
    assert revoked["next_cursor"] is None


def test_cancel_pending_revokes_and_cancel_again_conflicts(client: FlaskClient, auth: dict,
                                                           redis: redis_lib.Redis) -> None:
    task_id = client.post("/tasks", json=SEED, headers=auth).get_json()["task_id"]
    resp = client.post(f"/tasks/{task_id}/cancel", headers=auth)
    assert resp.status_code == 202
    assert resp.get_json()["status"] == "REVOKED"
    assert not redis.hexists(keys.task(task_id), "payload")
    assert redis.ttl(keys.task(task_id)) > 0
    again = client.post(f"/tasks/{task_id}/cancel", headers=auth)
    assert again.status_code == 409
    assert again.mimetype == "application/problem+json"


def test_every_response_carries_the_security_headers(client: FlaskClient, auth: dict) -> None:
    for resp in (client.get("/healthz"), client.get("/tasks", headers=auth),
                 client.post("/tasks", data="x", headers=auth)):
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Cache-Control"] in ("no-store", "private, no-cache")


def test_health_readiness_and_openapi(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    assert {"/tasks", "/tasks/{task_id}", "/tasks/{task_id}/cancel", "/callbacks"} <= set(spec["paths"])


def test_keys_are_stored_hashed(runner, redis: redis_lib.Redis) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(args=["keys", "create", "initech"])
    key = result.output.strip().splitlines()[-1]
    assert key.startswith("hlk_")
    secret = key.split("_", 2)[2]
    for name in redis.keys("*"):
        dumped = redis.dump(name) or b""
        assert secret.encode() not in dumped
    bad = runner.invoke(args=["keys", "create", "no spaces allowed"])
    assert bad.exit_code != 0


def test_cancelling_a_running_task_stops_it_at_its_next_progress_point(
        auth: dict, redis: redis_lib.Redis, config) -> None:  # type: ignore[no-untyped-def]
    from actors import vectors
    from actors.jobs import VectorJob
    from actors.services import Services
    from webapp import create_app

    # Given a task large enough to report progress between chunks
    client = create_app(config.replace(max_vectors=100_000)).test_client()
    count = vectors.PROGRESS_CHUNK * 2 + 1
    task_id = client.post("/tasks", json={"vector_data": [0.5] * count},
                          headers=auth).get_json()["task_id"]
    job = VectorJob(Services.build(config), owner="worker-under-test")
    redis.zadd(HEARTBEATS_KEY, {"worker-under-test": 10**13})
    asked = []
    record_progress = job._progress

    def cancel_while_running(tid: str, done: int) -> None:
        # When the client cancels while the job runs, between two chunks
        if not asked:
            resp = client.post(f"/tasks/{task_id}/cancel", headers=auth)
            assert resp.status_code == 202 and resp.get_json()["status"] == "STARTED"
            asked.append(done)
        record_progress(tid, done)

    job._progress = cancel_while_running  # type: ignore[method-assign]
    job(task_id)
    # Then it stops at that progress point and ends REVOKED, with nothing indexed
    final = client.get(f"/tasks/{task_id}", headers=auth).get_json()
    assert asked == [vectors.PROGRESS_CHUNK]
    assert final["status"] == "REVOKED"
    assert final["progress"]["done"] == vectors.PROGRESS_CHUNK
    assert not redis.exists("hl:cvec:acme:default")


def test_a_redis_outage_mid_job_retries_it_later(
        auth: dict, redis: redis_lib.Redis, redis_server, config) -> None:  # type: ignore[no-untyped-def]
    import threading

    from actors import vectors
    from actors.jobs import VectorJob
    from actors.redis_broker import LeanRedisBroker
    from actors.services import Services
    from actors.upkeep import Upkeep
    from webapp import create_app

    app = create_app(config.replace(max_vectors=100_000))
    client = app.test_client()
    count = vectors.PROGRESS_CHUNK * 2 + 1
    task_id = client.post("/tasks", json={"vector_data": [0.5] * count},
                          headers=auth).get_json()["task_id"]
    services = Services.build(config)
    job = VectorJob(services, owner="worker-under-test")
    redis.zadd(HEARTBEATS_KEY, {"worker-under-test": 10**13})
    record_progress = job._progress
    outages = []

    def redis_goes_away(tid: str, done: int) -> None:
        # Given Redis going down while the job runs (back after a second)
        if not outages:
            redis_server.shutdown()
            restart = threading.Timer(1.0, redis_server.start)
            restart.start()
            outages.append(restart)
        record_progress(tid, done)

    job._progress = redis_goes_away  # type: ignore[method-assign]
    job(task_id)
    outages[0].join()
    # Then the run is given up as transient and put on the schedule, not failed
    record = redis.hgetall(f"hl:task:{task_id}")
    assert record[b"status"] == b"RETRY"
    assert record[b"error"] == b"transient error: ConnectionError"
    assert redis.zscore("hl:schedule", f"job:{task_id}") is not None
    # And when its retry comes due, it is sent again and succeeds on attempt 2
    broker = LeanRedisBroker(client=services.redis, middleware=[])
    broker.declare_queue("jobs")
    upkeep = Upkeep(broker, services)

    def pumped() -> bool:
        upkeep.pump()
        return bool(queued(redis, "jobs"))

    try:
        wait_until(pumped, 10, "the retry comes due")
        job._progress = record_progress  # type: ignore[method-assign]
        job(task_id)
        final = client.get(f"/tasks/{task_id}", headers=auth).get_json()
    finally:
        # Connections made after the restart would otherwise outlive the test.
        services.redis.connection_pool.disconnect()
        app.extensions["hookline"].redis.connection_pool.disconnect()
    assert final["status"] == "SUCCESS" and final["attempts"] == 2
