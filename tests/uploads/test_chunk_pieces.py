"""A chunk's vectors reach Redis in commands of a bounded size, not one per chunk.

Redis refuses any argument over ``proto-max-bulk-len`` (at least 1 MiB). A
chunk of 5,000 float32 vectors of dimension 64 is about 1.5 MB of records,
so a chunk written in one command would never go in; its pieces of 1,024
vectors are about 320 KB each.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import redis as redis_lib

from hookline import vector_collections as colls
from hookline.vectorstore import PIECE_VECTORS
from tests.collections.conftest import unit_rows
from tests.procs import Stack
from tests.uploads.test_large_index import api_of, ended, upload

CHUNK = 5000
#: The least ``proto-max-bulk-len`` Redis takes.
MAX_ARGUMENT = 1024 * 1024


@pytest.fixture
def small_arguments(redis: redis_lib.Redis) -> Iterator[None]:
    """The test server refuses arguments over 1 MiB while the test runs."""
    before = cast("dict[str, str]", redis.config_get("proto-max-bulk-len"))["proto-max-bulk-len"]
    redis.config_set("proto-max-bulk-len", MAX_ARGUMENT)
    yield
    redis.config_set("proto-max-bulk-len", before)


@pytest.fixture
def stack(make_stack: Callable[..., Stack], tmp_path: Path, small_arguments: None) -> Stack:
    stack = make_stack(HOOKLINE_BLOB_URL=f"file://{tmp_path / 'blobs'}",
                       HOOKLINE_CHUNK_VECTORS=str(CHUNK), HOOKLINE_JOB_MAX_RETRIES="0")
    stack.start_index()
    stack.start_web()
    stack.start_worker(threads=2)
    return stack


def test_a_chunk_larger_than_any_command_redis_takes_is_indexed_in_pieces(
        stack: Stack, redis: redis_lib.Redis) -> None:
    api = api_of(stack)
    # Given a job of two chunks, the first one's records about 1.5 MB
    rows = unit_rows(np.random.default_rng(41), CHUNK + 1000, 64).astype("<f4")
    assert CHUNK * rows.shape[1] * 4 > MAX_ARGUMENT > 2 * PIECE_VECTORS * rows.shape[1] * 4
    resp = api.call("POST", "/tasks", {"upload_id": upload(api, rows), "collection": "wide"})
    assert resp.status_code == 202, resp.text
    task_id = resp.json()["task_id"]
    # When it ends
    done = ended(api, task_id)
    # Then it succeeded: no command of its chunks went over the limit
    assert done["status"] == "SUCCESS", done
    assert api.call("GET", "/collections/wide").json()["count"] == CHUNK + 1000
    stored = api.call("GET", f"/collections/wide/vectors/{task_id}:4321").json()
    assert np.allclose(stored["vector"], rows[4321], atol=1e-6)
    # And each piece made its own change for the index to follow
    log = cast("list[tuple[bytes, dict[bytes, Any]]]", redis.xrange(colls.LOG_KEY))
    changes = [f for _, f in log if f[b"op"] == b"u"]
    assert len(changes) == 5 + 1
    assert max(len(f[b"k"]) // 8 for f in changes) == PIECE_VECTORS
