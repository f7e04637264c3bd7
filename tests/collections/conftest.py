"""Fixtures for collections: a full stack with the index process, and an API helper."""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import requests

from tests.procs import Stack, wait_until


class Api:
    """The HTTP API of a running stack, as one tenant."""

    def __init__(self, base: str, key: str) -> None:
        self.base = base
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {key}"

    def call(self, method: str, path: str, body: Any = None) -> requests.Response:
        return self.session.request(method, self.base + path, json=body, timeout=30)

    def submit(self, vectors: Any, **fields: Any) -> str:
        resp = self.call("POST", "/tasks", {"vector_data": np.asarray(vectors).tolist(), **fields})
        assert resp.status_code == 202, resp.text
        return str(resp.json()["task_id"])

    def wait_success(self, task_id: str, timeout: float = 60) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            body = self.call("GET", f"/tasks/{task_id}").json()
            assert body["status"] not in ("FAILURE", "REVOKED"), body
            return body if body["status"] == "SUCCESS" else None

        return wait_until(done, timeout, f"task {task_id} succeeds")  # type: ignore[no-any-return]

    def search(self, name: str, vector: Any, k: int = 10, **fields: Any) -> list[dict[str, Any]]:
        resp = self.call("POST", f"/collections/{name}/search",
                         {"vector": np.asarray(vector).tolist(), "k": k, **fields})
        assert resp.status_code == 200, resp.text
        return list(resp.json()["items"])

    def ids(self, name: str, vector: Any, k: int = 10) -> list[str]:
        return [hit["id"] for hit in self.search(name, vector, k)]


@pytest.fixture
def search_stack(make_stack: Callable[..., Stack]) -> Stack:
    """gunicorn (two workers), a job worker, a callbacks worker and the index process."""
    stack = make_stack()
    stack.start_index()
    return stack.start()


@pytest.fixture
def api(search_stack: Stack, api_key: str) -> Api:
    return Api(search_stack.url, api_key)


@pytest.fixture
def other_api(search_stack: Stack, other_key: str) -> Api:
    return Api(search_stack.url, other_key)


def index_vectors(stack: Stack) -> float:
    """``hookline_index_vectors`` as the stack's ``/metrics`` shows it (-1: absent)."""
    text = requests.get(stack.url + "/metrics", timeout=10).text
    found = re.search(r"^hookline_index_vectors(?:\{[^}]*\})? (\S+)$", text, re.M)
    return float(found.group(1)) if found else -1.0


def unit_rows(rng: np.random.Generator, count: int, dimension: int) -> np.ndarray:
    rows = rng.normal(size=(count, dimension))
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)
