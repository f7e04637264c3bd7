"""Inputs that once reached a 500: every class gets a 4xx problem and changes nothing.

The classes: integers of any size, lone surrogates, non-finite numbers
anywhere in a body, nesting deeper than the encoder takes, and a forged
cursor on every list.
"""
from __future__ import annotations

import base64

import pytest
import redis as redis_lib
from flask.testing import FlaskClient

BIG = "1" + "0" * 20           # past 64 bits
HUGE = "9" * 5000              # past Python's int-from-text limit too
DEEP = "[" * 300 + "]" * 300   # parsed by orjson, refused by its encoder

BODIES = [
    # (name, body, expected status)
    ("big integer in metadata beside NaN",
     '{"vector_data":[1],"metadata":{"n":NaN,"x":' + BIG + "}}", 422),
    ("big integer in metadata beside 1e400",
     '{"vector_data":[1],"metadata":{"n":1e400,"x":' + BIG + "}}", 422),
    ("huge integer in metadata", '{"vector_data":[1],"metadata":{"x":' + HUGE + "}}", 422),
    ("huge integer in vector_data", '{"vector_data":[' + HUGE + "]}", 422),
    ("lone surrogate in metadata", '{"vector_data":[1],"metadata":{"a":"\\ud800"}}', 400),
    ("lone surrogate in a metadata key", '{"vector_data":[1],"metadata":{"\\udc00":1}}', 400),
    ("lone surrogate beside NaN", '{"vector_data":[NaN],"metadata":{"a":"\\ud800"}}', 400),
    ("lone surrogate in callback_url", '{"vector_data":[1],"callback_url":"\\ud800"}', 400),
    ("NaN in metadata", '{"vector_data":[1],"metadata":{"a":{"b":[NaN]}}}', 422),
    ("Infinity in metadata", '{"vector_data":[1],"metadata":{"a":-Infinity}}', 422),
    ("1e400 in metadata", '{"vector_data":[1],"metadata":{"a":1e400}}', 422),
    ("NaN as callback_url", '{"vector_data":[1],"callback_url":NaN}', 422),
    ("NaN as the body", "NaN", 422),
    ("deep metadata", '{"vector_data":[1],"metadata":{"a":' + DEEP + "}}", 400),
    ("deep metadata beside NaN", '{"vector_data":[NaN],"metadata":{"a":' + DEEP + "}}", 400),
]


def snapshot(client: redis_lib.Redis) -> dict[bytes, bytes]:
    return {key: client.dump(key) for key in client.keys("*")}


def assert_problem(resp, status: int) -> None:  # type: ignore[no-untyped-def]
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == "application/problem+json"
    assert resp.get_json()["status"] == status


@pytest.mark.parametrize("name,body,status", BODIES, ids=[b[0] for b in BODIES])
def test_task_bodies_of_every_class_are_refused(
    client: FlaskClient, redis: redis_lib.Redis, auth: dict, name: str, body: str, status: int,
) -> None:
    before = snapshot(redis)
    resp = client.post("/tasks", data=body, content_type="application/json", headers=auth)
    assert_problem(resp, status)
    assert snapshot(redis) == before


@pytest.mark.parametrize("path,method", [("/callbacks", "post"), ("/callbacks/cb_x", "patch"),
                                         ("/callbacks/cb_x/recover", "post")])
@pytest.mark.parametrize("body", ['{"url":"\\ud800"}', '{"url":NaN,"x":' + HUGE + "}",
                                  '{"since":' + DEEP + "}", '{"description":"\\udfff"}'])
def test_callback_bodies_of_every_class_get_a_4xx(
    client: FlaskClient, redis: redis_lib.Redis, auth: dict, path: str, method: str, body: str,
) -> None:
    before = snapshot(redis)
    resp = getattr(client, method)(path, data=body, content_type="application/json", headers=auth)
    assert 400 <= resp.status_code < 500, resp.get_data(as_text=True)
    assert resp.mimetype == "application/problem+json"
    assert snapshot(redis) == before


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


FORGED_CURSORS = [
    b64("nan|x"), b64("NaN|00000000-0000-0000-0000-000000000000"), b64("inf|x"),
    b64("-inf|x"), b64("1e400|x"), b64("1.5|"), b64("1.5|a|b"), b64("1.5"), b64("\u00b2"),
    "\u00b2", "\u0663", "%%%", "-1", "9" * 400, b64("999999999999999:cb_" + "A" * 22 + "x"),
]


@pytest.mark.parametrize("cursor", FORGED_CURSORS)
def test_a_forged_cursor_is_a_422_on_every_list(
    client: FlaskClient, auth: dict, cursor: str,
) -> None:
    task_id = client.post("/tasks", json={"vector_data": [1.0]}, headers=auth).get_json()["task_id"]
    for path in ("/tasks", "/callbacks", f"/tasks/{task_id}/deliveries"):
        resp = client.get(path, query_string={"cursor": cursor}, headers=auth)
        assert_problem(resp, 422)
        assert "cursor" in resp.get_json()["errors"]


def test_cursors_the_lists_make_still_page(client: FlaskClient, auth: dict) -> None:
    ids = {client.post("/tasks", json={"vector_data": [1.0]}, headers=auth).get_json()["task_id"]
           for _ in range(3)}
    seen: list[str] = []
    cursor = None
    while True:
        query = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        page = client.get("/tasks", query_string=query, headers=auth).get_json()
        seen += [item["task_id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids)
