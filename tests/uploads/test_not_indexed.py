"""``"index": false``: a job processed and summarised into its result, kept in no collection.

End to end, for an inline job and for a job from an upload (in chunks of
1,000), with gunicorn, two job worker processes, a callbacks worker and real
Redis (the ``large`` stack of ``tests/uploads/conftest.py``).
"""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import redis as redis_lib
import requests

from hookline import keys
from tests.e2e.test_core import finished, key_for
from tests.e2e.test_webhooks import register
from tests.procs import Receiver, Stack, wait_until
from tests.uploads.test_large_jobs import uploaded


def no_collection_written(stack: Stack, auth: dict[str, str], redis: redis_lib.Redis) -> None:
    listed = requests.get(f"{stack.url}/collections", headers=auth, timeout=5).json()
    assert listed["items"] == []
    assert not redis.keys("hl:cvec:*") and not redis.keys("hl:ctask:*")
    assert not redis.exists(keys.VECTOR_LOG) and int(redis.get(keys.VECTOR_SEQ) or 0) == 0


def submitted(stack: Stack, auth: dict[str, str], body: dict[str, Any]) -> str:
    resp = requests.post(f"{stack.url}/tasks", headers=auth, json=body, timeout=5)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["task_id"])


def test_a_job_from_an_upload_sent_with_index_false_is_summarised_and_kept_nowhere(
        large: Stack, receiver: Receiver, redis: redis_lib.Redis) -> None:
    # Given 2,500 vectors in an upload: three chunks
    vectors = np.random.default_rng(7).standard_normal((2_500, 24)).astype("<f4")
    auth = key_for(large)
    upload_id, callback = uploaded(large, auth, vectors), register(large, auth, receiver.url())
    # When a task names it with "index": false
    task_id = submitted(large, auth, {"upload_id": upload_id, "callback_id": callback["id"],
                                      "index": False, "metadata": {"run": "summary"}})
    # Then it ends in SUCCESS, summarised, every chunk counted
    done = wait_until(lambda: finished(large, auth, task_id), 60, "the task ends")
    assert done["status"] == "SUCCESS", done
    assert done["progress"] == {"done": 2_500, "total": 2_500}
    assert done["chunks"] == {"done": 3, "failed": 0, "total": 3}
    result = done["result"]
    assert (result["status"], result["collection"]) == ("processed", None)
    assert (result["processed_vectors"], result["dimension"], result["chunks"]) == (2_500, 24, 3)
    assert result["metadata_processed"] == {"run": "summary"}
    norms = np.linalg.norm(vectors.astype(np.float64), axis=1)
    assert result["norms"]["norm_mean"] == pytest.approx(norms.mean(), rel=1e-5)
    assert result["norms"]["norm_min"] == pytest.approx(norms.min(), rel=1e-5)
    # And its webhook carries that result, once
    wait_until(lambda: receiver.received("/hook"), 30, "the webhook arrives")
    hooks = receiver.received("/hook")
    assert len(hooks) == 1
    assert json.loads(hooks[0]["body"])["data"]["result"]["status"] == "processed"
    # And no collection was made or written
    no_collection_written(large, auth, redis)


def test_an_inline_job_sent_with_index_false_is_summarised_and_kept_nowhere(
        large: Stack, redis: redis_lib.Redis) -> None:
    auth = key_for(large)
    task_id = submitted(large, auth, {"vector_data": [[3.0, 4.0], [0.0, 2.0]], "index": False})
    done = wait_until(lambda: finished(large, auth, task_id), 30, "the task ends")
    assert done["status"] == "SUCCESS", done
    result = done["result"]
    assert (result["status"], result["collection"], result["processed_vectors"]) == (
        "processed", None, 2)
    assert result["norms"] == {"norm_mean": 3.5, "norm_min": 2.0, "norm_max": 5.0}
    no_collection_written(large, auth, redis)
    # And the same job indexed (the default) goes into "default", as before
    indexed = submitted(large, auth, {"vector_data": [[3.0, 4.0]], "index": True})
    done = wait_until(lambda: finished(large, auth, indexed), 30, "the task ends")
    assert (done["result"]["status"], done["result"]["collection"]) == ("indexed", "default")


def test_a_bad_index_is_a_422_problem(large: Stack, redis: redis_lib.Redis) -> None:
    auth = key_for(large)
    vectors = np.ones((2, 3), dtype="<f4")
    upload_id = uploaded(large, auth, vectors)
    # Each body, inline and from the upload: the field the problem names
    cases: list[tuple[dict[str, Any], str]] = [
        ({"index": "false"}, "index"), ({"index": 0}, "index"), ({"index": None}, "index"),
        ({"index": False, "collection": "docs"}, "collection"),
        ({"index": False, "metadata": {"collection": "docs"}}, "metadata"),
    ]
    bodies = [({"vector_data": vectors.tolist(), **extra}, field) for extra, field in cases]
    bodies += [({"upload_id": upload_id, **extra}, field) for extra, field in cases]
    bodies += [({"vector_data": vectors.tolist(), "index": False, "ids": ["a", "b"]}, "ids"),
               ({"upload_id": upload_id, "index": False, "ids_upload_id": upload_id},
                "ids_upload_id")]
    for body, field in bodies:
        resp = requests.post(f"{large.url}/tasks", headers=auth, json=body, timeout=5)
        assert resp.status_code == 422, (body, resp.text)
        assert resp.headers["Content-Type"] == "application/problem+json"
        assert field in resp.json()["errors"], (body, resp.json())
    assert not redis.keys("hl:task:*")
