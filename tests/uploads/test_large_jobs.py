"""Jobs from an upload, end to end: gunicorn, two job worker processes, webhooks, real Redis."""
from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import redis as redis_lib
import requests

from tests.e2e.test_core import finished, key_for
from tests.e2e.test_webhooks import register
from tests.metrics_util import scrape, value
from tests.procs import Receiver, Stack, settled, wait_until
from tests.uploads import tus


def uploaded(stack: Stack, auth: dict[str, str], array: np.ndarray) -> str:
    data = tus.npy_bytes(array)
    url = tus.created(stack.url, auth, len(data), format="npy")
    assert tus.patch(url, auth, 0, data).status_code == 204
    return url.rsplit("/", 1)[1]


def test_a_job_from_an_upload_runs_as_chunks_and_ends_once(
        large: Stack, receiver: Receiver, redis: redis_lib.Redis) -> None:
    auth = key_for(large)
    callback = register(large, auth, receiver.url())
    # Given 3,500 vectors (35 times the inline limit here): four chunks of at most 1,000
    vectors = np.random.default_rng(5).standard_normal((3_500, 16)).astype("<f4")
    upload_id = uploaded(large, auth, vectors)
    # When a task names the upload
    resp = requests.post(f"{large.url}/tasks", headers=auth, timeout=5, json={
        "upload_id": upload_id, "callback_id": callback["id"], "metadata": {"run": "large"}})
    assert resp.status_code == 202, resp.text
    task_id = resp.json()["task_id"]
    # Then it ends in SUCCESS with every vector counted once, across its chunks
    done = wait_until(lambda: finished(large, auth, task_id), 60, "the task ends")
    assert done["status"] == "SUCCESS", done
    assert done["progress"] == {"done": 3_500, "total": 3_500}
    assert done["chunks"] == {"done": 4, "failed": 0, "total": 4}
    result = done["result"]
    assert (result["processed_vectors"], result["dimension"], result["chunks"]) == (3_500, 16, 4)
    assert result["metadata_processed"] == {"run": "large"}
    assert (result["status"], result["collection"]) == ("indexed", "default")
    norms = np.linalg.norm(vectors.astype(np.float64), axis=1)
    assert result["norms"]["norm_mean"] == pytest.approx(norms.mean(), rel=1e-5)
    assert result["norms"]["norm_max"] == pytest.approx(norms.max(), rel=1e-5)
    # And its webhook goes out once
    wait_until(lambda: receiver.received("/hook"), 30, "the webhook arrives")
    wait_until(lambda: settled(redis, "callbacks") and settled(redis, "jobs"), 30, "queues settle")
    hooks = receiver.received("/hook")
    assert len(hooks) == 1
    assert json.loads(hooks[0]["body"])["data"]["task_id"] == task_id
    # And the chunks are counted in the metrics, once each
    samples = scrape(large.url + "/metrics")
    assert value(samples, "hookline_task_chunks_total", outcome="success") == 4
    assert value(samples, "hookline_tasks_finished_total", outcome="success") == 1
    # And the upload may not be deleted while the task reads it
    gone = requests.delete(f"{large.url}/uploads/{upload_id}", headers={**auth, **tus.TUS}, timeout=5)
    assert gone.status_code == 409


def test_a_non_finite_value_fails_the_task_naming_its_chunk_and_row(
        large: Stack, receiver: Receiver, redis: redis_lib.Redis) -> None:
    auth = key_for(large)
    callback = register(large, auth, receiver.url())
    vectors = np.ones((3_000, 4), dtype="<f8")
    vectors[2_345, 1] = np.inf
    upload_id = uploaded(large, auth, vectors)
    resp = requests.post(f"{large.url}/tasks", headers=auth, timeout=5,
                         json={"upload_id": upload_id, "callback_id": callback["id"]})
    task_id = resp.json()["task_id"]
    done = wait_until(lambda: finished(large, auth, task_id), 60, "the task ends")
    assert done["status"] == "FAILURE"
    assert done["error"] == "chunk 2 (rows 2000-2999): row 2345 holds a value that is not a finite number"
    assert done["chunks"]["failed"] == 1
    wait_until(lambda: settled(redis, "callbacks") and settled(redis, "jobs"), 30, "queues settle")
    assert len(receiver.received("/hook")) == 1


def test_tasks_name_only_complete_uploads_of_their_own_tenant(large: Stack) -> None:
    auth = key_for(large)
    other = key_for(large, "umbrella")
    upload_id = uploaded(large, auth, np.ones((10, 4), dtype="<f4"))
    unfinished = tus.created(large.url, auth, 4000, format="f32", dimension=4).rsplit("/", 1)[1]
    cases = [
        (other, {"upload_id": upload_id}, 404),
        (auth, {"upload_id": "up_nothing"}, 404),
        (auth, {"upload_id": unfinished}, 422),
        (auth, {"upload_id": upload_id, "vector_data": [1.0]}, 422),
        (auth, {"upload_id": upload_id, "surprise": 1}, 422),
        (auth, {"upload_id": 7}, 422),
    ]
    for key, body, status in cases:
        resp = requests.post(f"{large.url}/tasks", headers=key, json=body, timeout=5)
        assert resp.status_code == status, (body, resp.text)
        assert resp.headers["Content-Type"] == "application/problem+json"
    listed = requests.get(f"{large.url}/tasks", headers=auth, timeout=5).json()["items"]
    assert listed == []


def test_a_task_from_an_upload_is_made_once_per_idempotency_key(large: Stack) -> None:
    auth = key_for(large)
    upload_id = uploaded(large, auth, np.ones((10, 4), dtype="<f4"))
    headers = {**auth, "Idempotency-Key": "from-upload"}
    first, again = (requests.post(f"{large.url}/tasks", headers=headers, timeout=5,
                                  json={"upload_id": upload_id}) for _ in range(2))
    assert first.status_code == again.status_code == 202, (first.text, again.text)
    assert again.json()["task_id"] == first.json()["task_id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    listed = requests.get(f"{large.url}/tasks", headers=auth, timeout=5).json()["items"]
    assert [t["task_id"] for t in listed] == [first.json()["task_id"]]


def many_chunks(make_stack: Callable[..., Stack], tmp_path: Path, receiver: Receiver,
                ) -> tuple[Stack, dict[str, str], str, dict]:
    """A stack without job workers, and a task of 300 chunks of 10 vectors, accepted."""
    stack = make_stack(HOOKLINE_BLOB_URL=f"file://{tmp_path / 'blobs'}", HOOKLINE_CHUNK_VECTORS="10")
    stack.start_web()
    stack.start_callbacks()
    auth = key_for(stack)
    callback = register(stack, auth, receiver.url())
    upload_id = uploaded(stack, auth, np.random.default_rng(9).standard_normal((3_000, 8)).astype("<f4"))
    resp = requests.post(f"{stack.url}/tasks", headers=auth, timeout=5,
                         json={"upload_id": upload_id, "callback_id": callback["id"]})
    assert resp.status_code == 202
    return stack, auth, resp.json()["task_id"], callback


def chunks_of(stack: Stack, auth: dict[str, str], task_id: str) -> dict:
    return requests.get(f"{stack.url}/tasks/{task_id}", headers=auth, timeout=5).json().get("chunks") or {}


def test_cancel_stops_the_chunks_and_ends_the_task_once(
        make_stack: Callable[..., Stack], tmp_path: Path, receiver: Receiver,
        redis: redis_lib.Redis) -> None:
    stack, auth, task_id, _ = many_chunks(make_stack, tmp_path, receiver)
    stack.start_worker(processes=1, threads=1)
    wait_until(lambda: chunks_of(stack, auth, task_id).get("done", 0) >= 5, 60, "chunks run")
    # When the task is cancelled while its chunks run
    resp = requests.post(f"{stack.url}/tasks/{task_id}/cancel", headers=auth, timeout=5)
    assert resp.status_code == 202
    # Then it ends REVOKED, with the chunks that had not run left unrun
    done = wait_until(lambda: finished(stack, auth, task_id), 60, "the task ends")
    assert done["status"] == "REVOKED", done
    assert done["chunks"]["done"] < 300, "the cancel came too late to test anything"
    assert done["progress"]["done"] < 3_000
    # And the vectors its chunks had indexed are gone again
    shown = requests.get(f"{stack.url}/collections/default", headers=auth, timeout=5).json()
    assert shown["count"] == 0 and shown["version"] >= 2, shown
    wait_until(lambda: settled(redis, "callbacks") and settled(redis, "jobs"), 60, "queues settle")
    hooks = receiver.received("/hook")
    assert len(hooks) == 1 and json.loads(hooks[0]["body"])["type"] == "task.revoked"


@pytest.mark.slow
def test_a_worker_killed_mid_job_loses_nothing_and_counts_nothing_twice(
        make_stack: Callable[..., Stack], tmp_path: Path, receiver: Receiver,
        redis: redis_lib.Redis) -> None:
    stack, auth, task_id, _ = many_chunks(make_stack, tmp_path, receiver)
    first = stack.start_worker("worker", processes=2, threads=2)
    wait_until(lambda: chunks_of(stack, auth, task_id).get("done", 0) >= 20, 60, "chunks run")
    # When every job worker process is SIGKILLed mid-job
    os.killpg(first.pid, signal.SIGKILL)
    first.proc.wait(timeout=10)
    assert chunks_of(stack, auth, task_id)["done"] < 300, "the kill came too late to test anything"
    # Then a new worker finishes it: each vector counted once, one ending, one webhook
    stack.start_worker("worker2", processes=2, threads=2)
    done = wait_until(lambda: finished(stack, auth, task_id), 120, "the task ends")
    assert done["status"] == "SUCCESS", done
    assert done["progress"] == {"done": 3_000, "total": 3_000}
    assert done["chunks"] == {"done": 300, "failed": 0, "total": 300}
    assert done["result"]["processed_vectors"] == 3_000
    wait_until(lambda: settled(redis, "callbacks") and settled(redis, "jobs"), 60, "queues settle")
    assert len(receiver.received("/hook")) == 1
