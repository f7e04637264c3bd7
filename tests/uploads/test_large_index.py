"""A job from an upload indexes its chunks into its collection; a failed one leaves nothing."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import redis as redis_lib

from tests.collections.conftest import Api, unit_rows
from tests.e2e.test_core import key_for
from tests.e2e.test_webhooks import register
from tests.procs import Receiver, Stack, wait_until
from tests.uploads import tus

CHUNK = 50


@pytest.fixture
def stack(make_stack: Callable[..., Stack], tmp_path: Path) -> Stack:
    """Web, one single-threaded job worker (chunks run in order), callbacks, the index."""
    stack = make_stack(HOOKLINE_BLOB_URL=f"file://{tmp_path / 'blobs'}",
                       HOOKLINE_CHUNK_VECTORS=str(CHUNK))
    stack.start_index()
    stack.start_web()
    stack.start_worker(threads=1)
    stack.start_callbacks()
    return stack


def api_of(stack: Stack) -> Api:
    return Api(stack.url, key_for(stack)["Authorization"].removeprefix("Bearer "))


def upload(api: Api, array: np.ndarray) -> str:
    auth = dict(api.session.headers)
    data = tus.npy_bytes(array)
    url = tus.created(api.base, auth, len(data), format="npy")
    assert tus.patch(url, auth, 0, data).status_code == 204
    return url.rsplit("/", 1)[1]


def ended(api: Api, task_id: str) -> dict:
    def check() -> dict | None:
        body = api.call("GET", f"/tasks/{task_id}").json()
        return body if body["status"] in ("SUCCESS", "FAILURE", "REVOKED") else None

    return wait_until(check, 60, f"task {task_id} ends")  # type: ignore[no-any-return]


def test_each_chunk_indexes_its_vectors_into_the_named_collection(stack: Stack) -> None:
    api = api_of(stack)
    # Given 175 vectors: four chunks of at most 50
    rows = unit_rows(np.random.default_rng(31), 175, 8).astype("<f4")
    resp = api.call("POST", "/tasks", {"upload_id": upload(api, rows), "collection": "big"})
    assert resp.status_code == 202, resp.text
    task_id = resp.json()["task_id"]
    # When the task succeeds
    done = ended(api, task_id)
    assert done["status"] == "SUCCESS", done
    assert done["result"]["status"] == "indexed" and done["result"]["collection"] == "big"
    # Then every vector is in the collection once, under its global row
    shown = api.call("GET", "/collections/big").json()
    assert (shown["count"], shown["dimension"]) == (175, 8)
    stored = api.call("GET", f"/collections/big/vectors/{task_id}:120").json()
    assert np.allclose(stored["vector"], rows[120], atol=1e-6)
    assert api.search("big", rows[170], k=1)[0]["id"] == f"{task_id}:170"
    # And the task's ids cover every chunk: filter and delete by task see all 175
    assert len(api.search("big", rows[0], k=200, filter={"task_id": task_id})) == 175
    deleted = api.call("POST", "/collections/big/vectors/delete", {"task_id": task_id})
    assert deleted.json() == {"deleted": 175}


def test_a_job_whose_late_chunk_fails_leaves_no_vectors_behind(
        stack: Stack, receiver: Receiver, redis: redis_lib.Redis) -> None:
    api = api_of(stack)
    callback = register(stack, dict(api.session.headers), receiver.url())
    rng = np.random.default_rng(32)
    # Given a collection that already holds an inline job's vectors
    kept = api.submit(unit_rows(rng, 7, 6), collection="shared")
    api.wait_success(kept)
    version = api.call("GET", "/collections/shared").json()["version"]
    # And a job of five chunks whose last one holds a NaN
    rows = unit_rows(rng, 5 * CHUNK, 6)
    rows[4 * CHUNK + 13, 2] = np.nan
    resp = api.call("POST", "/tasks", {"upload_id": upload(api, rows), "collection": "shared",
                                       "callback_id": callback["id"]})
    task_id = resp.json()["task_id"]
    # When it ends, its FAILURE webhook sent
    hook = wait_until(lambda: receiver.received("/hook"), 60, "the webhook arrives")[0]
    assert json.loads(hook["body"])["type"] == "task.failed"
    done = ended(api, task_id)
    assert done["status"] == "FAILURE"
    assert done["error"].startswith(f"chunk 4 (rows 200-249): row {4 * CHUNK + 13} ")
    assert done["chunks"]["done"] == 4
    # Then the collection is back to what it was: its earlier chunks' vectors
    # were indexed (two versions: a write, then the removal) and are gone
    shown = api.call("GET", "/collections/shared").json()
    assert shown["count"] == 7
    assert shown["version"] >= version + 2
    assert api.call("GET", f"/collections/shared/vectors/{task_id}:10").status_code == 404
    hits = api.search("shared", rows[10], k=50)
    assert len(hits) == 7 and all(h["task_id"] == kept for h in hits)
    assert api.search("shared", rows[10], k=50, filter={"task_id": task_id}) == []
    assert not redis.hexists("hl:ctask:acme:shared", task_id)


def ids_upload(api: Api, ids: list[str], auth: dict[str, str] | None = None) -> str:
    data = "".join(f"{i}\n" for i in ids).encode()
    url = tus.created(api.base, auth or dict(api.session.headers), len(data), format="ids")
    assert tus.patch(url, auth or dict(api.session.headers), 0, data).status_code == 204
    return url.rsplit("/", 1)[1]


def test_ids_from_an_upload_name_the_vectors_of_every_chunk(stack: Stack) -> None:
    api = api_of(stack)
    rows = unit_rows(np.random.default_rng(33), 120, 4).astype("<f4")
    ids = [f"doc-{n}" for n in range(120)]
    resp = api.call("POST", "/tasks", {"upload_id": upload(api, rows), "collection": "named",
                                       "ids_upload_id": ids_upload(api, ids)})
    assert resp.status_code == 202, resp.text
    task_id = resp.json()["task_id"]
    assert ended(api, task_id)["status"] == "SUCCESS"
    stored = api.call("GET", "/collections/named/vectors/doc-77").json()
    assert stored["task_id"] == task_id and np.allclose(stored["vector"], rows[77], atol=1e-6)
    assert api.search("named", rows[110], k=1)[0]["id"] == "doc-110"
    found = api.search("named", rows[0], k=200, filter={"task_id": task_id})
    assert sorted(h["id"] for h in found) == sorted(ids)


def test_an_ids_upload_that_does_not_fit_is_refused_at_submit(
        make_stack: Callable[..., Stack], tmp_path: Path) -> None:
    stack = make_stack(HOOKLINE_BLOB_URL=f"file://{tmp_path / 'blobs'}",
                       HOOKLINE_CHUNK_VECTORS=str(CHUNK))
    stack.start_web()
    api, other = api_of(stack), key_for(stack, "umbrella")
    vectors = upload(api, np.ones((3, 4), dtype="<f4"))
    unfinished = tus.created(stack.url, dict(api.session.headers), 10, format="ids")
    cases = [
        (ids_upload(api, ["a", "b"]), 422, "holds 2 ids for 3 vectors"),
        (ids_upload(api, ["a", "b", "c", "d"]), 422, "holds more than 3 ids"),
        (ids_upload(api, ["a", "x" * 129, "c"]), 422, "an id of 129 characters"),
        (ids_upload(api, ["a", "b", "a"]), 422, "repeats the id 'a'"),
        (ids_upload(api, ["a", "b", "c"], other), 404, "No upload with that id"),
        (unfinished.rsplit("/", 1)[1], 422, "finish it first"),
        (vectors, 422, "not of format ids"),
    ]
    for ids_id, status, detail in cases:
        resp = api.call("POST", "/tasks", {"upload_id": vectors, "ids_upload_id": ids_id})
        assert resp.status_code == status, resp.text
        assert resp.headers["Content-Type"] == "application/problem+json"
        assert detail in resp.json()["detail"], resp.text
    named_as_vectors = api.call("POST", "/tasks", {"upload_id": ids_upload(api, ["a"])})
    assert named_as_vectors.status_code == 422
    # Nothing changed: no task, and no upload is pinned by one
    assert api.call("GET", "/tasks").json()["items"] == []
    deleted = api.session.delete(f"{stack.url}/uploads/{vectors}", headers=tus.TUS, timeout=5)
    assert deleted.status_code == 204
