"""Bad input: every case gets the right 4xx as problem+json and changes nothing in Redis."""
from __future__ import annotations

import json

import pytest
import redis as redis_lib
from flask.testing import FlaskClient

SEED = {"vector_data": [0.1, 0.2, 0.3], "metadata": {"source": "user"}}


def snapshot(client: redis_lib.Redis) -> dict[bytes, bytes]:
    return {key: client.dump(key) for key in client.keys("*")}


def raw(body: str, content_type: str = "application/json") -> dict:
    return {"data": body, "content_type": content_type}


def as_json(value: object) -> dict:
    return raw(json.dumps(value))


CASES = [
    # (name, request kwargs, expected status, field expected in errors or None)
    ("malformed json", raw('{"vector_data": [1, 2'), 400, None),
    ("wrong content type", raw("vector_data=1", "application/x-www-form-urlencoded"), 415, None),
    ("text content type", raw(json.dumps(SEED), "text/plain"), 415, None),
    ("empty body", raw(""), 400, None),
    ("whitespace body", raw("   "), 400, None),
    ("body is a list", as_json([1, 2, 3]), 422, "_schema"),
    ("vector_data missing", as_json({"metadata": {}}), 422, "vector_data"),
    ("vector_data empty", as_json({"vector_data": []}), 422, "vector_data"),
    ("vector_data not a list", as_json({"vector_data": "0.1,0.2"}), 422, "vector_data"),
    ("vector_data a number", as_json({"vector_data": 3}), 422, "vector_data"),
    ("vector_data an object", as_json({"vector_data": {"a": 1}}), 422, "vector_data"),
    ("strings", as_json({"vector_data": [0.1, "0.2"]}), 422, "vector_data"),
    ("numeric strings in rows", as_json({"vector_data": [["1", "2"]]}), 422, "vector_data"),
    ("booleans", as_json({"vector_data": [True, False]}), 422, "vector_data"),
    ("boolean in a row", as_json({"vector_data": [[1.0, True]]}), 422, "vector_data"),
    ("false in a later row", as_json({"vector_data": [[0.25, 0.5], [0.75, False]]}), 422, "vector_data"),
    ("string in a later row", as_json({"vector_data": [[0.25, 0.5], [0.75, "1"]]}), 422, "vector_data"),
    ("null", as_json({"vector_data": [1.0, None]}), 422, "vector_data"),
    ("NaN token", raw('{"vector_data": [1.0, NaN]}'), 422, "vector_data"),
    ("Infinity token", raw('{"vector_data": [[1.0, Infinity]]}'), 422, "vector_data"),
    ("-Infinity token", raw('{"vector_data": [-Infinity]}'), 422, "vector_data"),
    ("huge integer", raw('{"vector_data": [1' + "0" * 400 + "]}"), 422, "vector_data"),
    ("nested three deep", as_json({"vector_data": [[[1.0]]]}), 422, "vector_data"),
    ("mixed rows and numbers", as_json({"vector_data": [[1.0], 2.0]}), 422, "vector_data"),
    ("ragged rows", as_json({"vector_data": [[1.0, 2.0], [3.0]]}), 422, "vector_data"),
    ("empty rows", as_json({"vector_data": [[], []]}), 422, "vector_data"),
    ("too many vectors", as_json({"vector_data": [0.5] * 1001}), 422, "vector_data"),
    ("too many rows", as_json({"vector_data": [[0.5]] * 1001}), 422, "vector_data"),
    ("too wide", as_json({"vector_data": [[0.5] * 65]}), 422, "vector_data"),
    ("metadata a list", as_json({"vector_data": [1.0], "metadata": [1]}), 422, "metadata"),
    ("metadata a string", as_json({"vector_data": [1.0], "metadata": "x"}), 422, "metadata"),
    ("metadata oversized", as_json({"vector_data": [1.0], "metadata": {"x": "a" * 17000}}), 422,
     "metadata"),
    ("bad collection name", as_json({"vector_data": [1.0], "metadata": {"collection": "a b"}}), 422,
     "metadata"),
    ("unknown field", as_json({"vector_data": [1.0], "vectors": [1.0]}), 422, "vectors"),
    ("unregistered callback_url",
     as_json({"vector_data": [1.0], "callback_url": "https://client.example/hook"}), 422,
     "callback_url"),
    ("unknown callback_id", as_json({"vector_data": [1.0], "callback_id": "cb_nope"}), 422,
     "callback_id"),
    ("body over the size limit", as_json({"vector_data": [0.123456789] * 30000}), 413, None),
]


@pytest.mark.parametrize("name,kwargs,status,field", CASES, ids=[c[0] for c in CASES])
def test_bad_submission_is_refused_and_changes_nothing(
    client: FlaskClient, redis: redis_lib.Redis, auth: dict, name: str, kwargs: dict,
    status: int, field: str | None,
) -> None:
    # Given a tenant with a key
    before = snapshot(redis)
    # When it submits a bad task
    resp = client.post("/tasks", headers=auth, **kwargs)
    # Then it gets a problem document with the right status and nothing changed
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/problem+json"
    problem = resp.get_json()
    assert problem["status"] == status
    assert problem["title"] and problem["detail"]
    assert "Traceback" not in resp.get_data(as_text=True)
    if field is not None:
        assert field in problem["errors"], problem
        assert all(isinstance(m, str) or isinstance(m, (list, dict)) for m in problem["errors"][field])
    assert snapshot(redis) == before
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer wrong", "Basic abc",
                                    "Bearer hlk_0000000000000000_nope"])
def test_missing_or_wrong_key_is_401(client: FlaskClient, redis: redis_lib.Redis, api_key: str,
                                     header: str | None) -> None:
    before = snapshot(redis)
    headers = {"Authorization": header} if header else {}
    resp = client.post("/tasks", json=SEED, headers=headers)
    assert resp.status_code == 401
    assert resp.mimetype == "application/problem+json"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert api_key not in resp.get_data(as_text=True)
    assert snapshot(redis) == before


def test_a_tampered_key_is_401(client: FlaskClient, api_key: str) -> None:
    tampered = api_key[:-2] + ("AA" if not api_key.endswith("AA") else "BB")
    resp = client.get("/tasks", headers={"Authorization": f"Bearer {tampered}"})
    assert resp.status_code == 401


def test_unknown_and_foreign_task_ids_are_404(client: FlaskClient, redis: redis_lib.Redis,
                                              auth: dict, other_key: str) -> None:
    accepted = client.post("/tasks", json=SEED, headers=auth)
    task_id = accepted.get_json()["task_id"]
    before = snapshot(redis)
    other = {"Authorization": f"Bearer {other_key}"}
    for method, path in [("get", f"/tasks/{task_id}"), ("post", f"/tasks/{task_id}/cancel"),
                         ("get", "/tasks/00000000-0000-0000-0000-000000000000"),
                         ("get", "/tasks/" + "x" * 300)]:
        headers = other if task_id in path else auth
        resp = getattr(client, method)(path, headers=headers)
        assert resp.status_code == 404, (method, path)
        assert resp.mimetype == "application/problem+json"
    assert snapshot(redis) == before


def test_list_query_is_validated(client: FlaskClient, auth: dict) -> None:
    for query in ["limit=0", "limit=501", "limit=abc", "status=DONE", "cursor=%%%", "bogus=1"]:
        resp = client.get(f"/tasks?{query}", headers=auth)
        assert resp.status_code == 422, query
        assert resp.mimetype == "application/problem+json"


def test_unknown_route_and_method_are_problems(client: FlaskClient, auth: dict) -> None:
    resp = client.get("/nope", headers=auth)
    assert resp.status_code == 404 and resp.mimetype == "application/problem+json"
    resp = client.put("/tasks", headers=auth)
    assert resp.status_code == 405 and resp.mimetype == "application/problem+json"
