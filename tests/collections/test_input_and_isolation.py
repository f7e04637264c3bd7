"""Bad input is 422 and changes nothing; another tenant's collections are 404."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import redis as redis_lib

from tests.collections.conftest import Api, unit_rows


def _state(api: Api, redis: redis_lib.Redis) -> tuple[Any, ...]:
    shown = api.call("GET", "/collections/fixed").json()
    tasks = api.call("GET", "/tasks").json()["items"]
    return shown["count"], shown["version"], len(tasks), redis.get("hl:vseq")


@pytest.fixture
def fixed(api: Api) -> np.ndarray:
    """A collection of dimension 4 with one finished job in it."""
    assert api.call("POST", "/collections", {"name": "fixed", "dimension": 4}).status_code == 201
    rows = unit_rows(np.random.default_rng(31), 10, 4)
    api.wait_success(api.submit(rows, collection="fixed", ids=[f"v{i}" for i in range(10)]))
    return rows


BAD_JOBS = [
    ({"vector_data": [[1.0, 2.0, 3.0]], "collection": "fixed"}, "vector_data"),
    ({"vector_data": [[1.0, 2.0, 3.0, 4.0]], "metadata": {"collection": "fixed"},
      "collection": "fixed", "ids": ["a", "b"]}, "ids"),
    ({"vector_data": [[1, 2, 3, 4], [4, 3, 2, 1]], "collection": "fixed", "ids": ["x", "x"]},
     "ids"),
    ({"vector_data": [[1, 2, 3, 4]], "collection": "fixed", "ids": ["x" * 129]}, "ids"),
    ({"vector_data": [[1, 2, 3, 4]], "collection": "fixed", "ids": [""]}, "ids"),
    ({"vector_data": [[1, 2, 3, 4]], "collection": "no/slash"}, "collection"),
]


def test_a_bad_job_is_422_and_changes_nothing(api: Api, redis: redis_lib.Redis,
                                               fixed: np.ndarray) -> None:
    # One stack for every case: each starts gunicorn, Dramatiq and the index.
    before = _state(api, redis)
    for body, field in BAD_JOBS:
        resp = api.call("POST", "/tasks", body)
        assert resp.status_code == 422, (body, resp.text)
        assert resp.headers["Content-Type"] == "application/problem+json"
        assert field in resp.json()["errors"], body
    assert _state(api, redis) == before


def test_a_non_finite_value_is_422(api: Api, redis: redis_lib.Redis, fixed: np.ndarray) -> None:
    before = _state(api, redis)
    raw = '{"vector_data": [[1, 2, NaN, 4]], "collection": "fixed"}'
    resp = api.session.post(api.base + "/tasks", data=raw, timeout=10,
                            headers={"Content-Type": "application/json"})
    assert resp.status_code == 422
    raw = '{"vector": [1, 2, Infinity, 4]}'
    resp = api.session.post(api.base + "/collections/fixed/search", data=raw, timeout=10,
                            headers={"Content-Type": "application/json"})
    assert resp.status_code == 422
    assert _state(api, redis) == before


BAD_SEARCHES = [
    {"vector": [1.0, 2.0, 3.0]},
    {"vector": [1.0, 2.0, 3.0, 4.0], "k": 0},
    {"vector": [1.0, 2.0, 3.0, 4.0], "k": 1001},
    {"vector": [1.0, 2.0, 3.0, 4.0], "k": "10"},
    {"vector": [0.0, 0.0, 0.0, 0.0]},
    {"vectors": [[1.0, 2.0, 3.0, 4.0]], "vector": [1.0, 2.0, 3.0, 4.0]},
    {"k": 3},
    {"vector": [[1.0, 2.0, 3.0, 4.0]]},
    {"vector": [1.0, 2.0, 3.0, 4.0], "filter": {"tenant": "x"}},
]


def test_a_bad_search_is_422(api: Api, fixed: np.ndarray) -> None:
    for body in BAD_SEARCHES:
        resp = api.call("POST", "/collections/fixed/search", body)
        assert resp.status_code == 422, (body, resp.text)
        assert resp.json()["status"] == 422


def test_bad_collections_and_deletes_are_422_and_change_nothing(
    api: Api, redis: redis_lib.Redis, fixed: np.ndarray
) -> None:
    before = _state(api, redis)
    for body in ({"name": "x"}, {"name": "x", "dimension": 0}, {"name": "bad name", "dimension": 3},
                 {"name": "x", "dimension": 3, "metric": "hamming"},
                 {"name": "x", "dimension": 3, "dtype": "f64"}, {"name": "default", "dimension": 3}):
        assert api.call("POST", "/collections", body).status_code == 422, body
    assert api.call("POST", "/collections", {"name": "fixed", "dimension": 4}).status_code == 409
    for body in ({}, {"ids": []}, {"ids": ["v1"], "task_id": "t"}, {"ids": ["y" * 129]}):
        assert api.call("POST", "/collections/fixed/vectors/delete", body).status_code == 422
    assert _state(api, redis) == before
    assert [c["name"] for c in api.call("GET", "/collections").json()["items"]] == ["fixed"]


def test_another_tenant_sees_none_of_it(api: Api, other_api: Api, fixed: np.ndarray) -> None:
    paths = [("GET", "/collections/fixed", None),
             ("DELETE", "/collections/fixed", None),
             ("POST", "/collections/fixed/search", {"vector": fixed[0].tolist()}),
             ("GET", "/collections/fixed/vectors/v1", None),
             ("POST", "/collections/fixed/vectors/delete", {"ids": ["v1"]})]
    for method, path, body in paths:
        resp = other_api.call(method, path, body)
        assert resp.status_code == 404, (method, path, resp.text)
    assert other_api.call("GET", "/collections").json()["items"] == []
    # The other tenant's own collection of the same name is its own.
    assert other_api.call("POST", "/collections", {"name": "fixed", "dimension": 4}).status_code == 201
    assert other_api.search("fixed", fixed[0]) == []
    assert api.call("GET", "/collections/fixed").json()["count"] == 10
    assert api.ids("fixed", fixed[1], k=1) == ["v1"]
