"""Read your writes: a task's vectors are searchable once it is SUCCESS, on every
web process, and when its webhook arrives; a deleted vector never comes back."""
from __future__ import annotations

from typing import Any

import numpy as np
import requests

from tests.collections.conftest import Api, unit_rows
from tests.procs import Receiver, Stack, wait_until


def test_search_finds_a_task_right_after_success_on_every_web_process(
    api: Api, search_stack: Stack
) -> None:
    # Given: two web processes (gunicorn workers) and jobs into one collection
    rng = np.random.default_rng(11)
    for round_ in range(3):
        rows = unit_rows(rng, 30, 12)
        task_id = api.submit(rows, collection="docs")
        # When: the task is seen SUCCESS
        api.wait_success(task_id)
        # Then: the very next searches (over fresh connections, so both
        # processes answer some of them) find its vectors as the best match
        for row in (0, 17, 29):
            fresh = requests.post(f"{search_stack.url}/collections/docs/search",
                                  json={"vector": rows[row].tolist(), "k": 1},
                                  headers=dict(api.session.headers), timeout=10)
            assert fresh.status_code == 200, fresh.text
            (hit,) = fresh.json()["items"]
            assert hit == {"id": f"{task_id}:{row}", "task_id": task_id, "score": hit["score"]}
            assert hit["score"] > 0.99, round_


def test_search_at_webhook_receipt_sees_the_task(api: Api, receiver: Receiver) -> None:
    # Given: a registered callback whose receiver searches as the webhook arrives
    callback = api.call("POST", "/callbacks", {"url": receiver.url("/hook")}).json()
    rows = unit_rows(np.random.default_rng(12), 40, 8)
    seen: list[Any] = []

    def on_webhook(count: int) -> tuple[int, dict[str, str], float]:
        seen.append(api.search("hooked", rows[5], k=1))
        return 204, {}, 0.0

    receiver.script["/hook"] = on_webhook
    # When: a job runs to its end
    task_id = api.submit(rows, collection="hooked", callback_id=callback["id"])
    wait_until(lambda: seen, 60, "the webhook arrives")
    # Then: the search made on receipt already found the task's vector
    assert seen[0][0]["id"] == f"{task_id}:5"


def test_a_deleted_vector_is_never_returned(api: Api) -> None:
    rows = unit_rows(np.random.default_rng(13), 50, 8)
    task_id = api.submit(rows, collection="gone")
    api.wait_success(task_id)
    victim = f"{task_id}:7"
    assert api.ids("gone", rows[7], k=1) == [victim]
    # When: it is deleted
    resp = api.call("POST", "/collections/gone/vectors/delete", {"ids": [victim]})
    assert resp.json() == {"deleted": 1}
    # Then: no search returns it, even asking for every vector, and it cannot be read
    assert victim not in api.ids("gone", rows[7], k=1000)
    assert len(api.ids("gone", rows[7], k=1000)) == 49
    assert api.call("GET", f"/collections/gone/vectors/{victim}").status_code == 404


def test_a_search_that_does_not_wait_for_the_index_still_sees_the_task(
    make_stack: object, api_key: str
) -> None:
    # Given: searches that never wait for the index process, and jobs large
    # enough that it is still adding their vectors when the task is SUCCESS
    stack: Stack = make_stack(HOOKLINE_INDEX_WAIT_SECONDS="0")  # type: ignore[operator]
    stack.start_index()
    stack.start()
    api = Api(stack.url, api_key)
    rng = np.random.default_rng(14)
    for _ in range(3):
        rows = unit_rows(rng, 3000, 64)
        task_id = api.submit(rows, collection="eager")
        api.wait_success(task_id)
        # Then: the changes the index has not applied are scored by the search itself
        assert api.ids("eager", rows[2999], k=1) == [f"{task_id}:2999"]
