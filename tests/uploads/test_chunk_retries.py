"""A chunk that meets a transient error runs again later, through the schedule, up to a limit."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import redis as redis_lib
import requests

from tests.e2e.test_core import finished, key_for
from tests.metrics_util import scrape, value
from tests.procs import Stack, wait_until
from tests.uploads.test_large_jobs import uploaded


def started_job(make_stack: Callable[..., Stack], tmp_path: Path, **env: str) -> tuple[Stack, dict, str, Path]:
    """A job of 3 chunks accepted while no job worker runs, and where its upload's bytes are."""
    blobs = tmp_path / "blobs"
    stack = make_stack(HOOKLINE_BLOB_URL=f"file://{blobs}", HOOKLINE_CHUNK_VECTORS="10", **env)
    stack.start_web()
    auth = key_for(stack)
    upload_id = uploaded(stack, auth, np.random.default_rng(8).standard_normal((30, 4)).astype("<f4"))
    resp = requests.post(f"{stack.url}/tasks", headers=auth, json={"upload_id": upload_id}, timeout=5)
    assert resp.status_code == 202, resp.text
    return stack, auth, resp.json()["task_id"], blobs / "uploads" / upload_id


def scheduled_chunks(redis: redis_lib.Redis, task_id: str) -> list[bytes]:
    return [m for m in redis.zrange("hl:schedule", 0, -1) if m.startswith(f"chunk:{task_id}:".encode())]


def test_a_blob_store_outage_delays_the_chunks_and_the_job_still_succeeds(
        make_stack: Callable[..., Stack], tmp_path: Path, redis: redis_lib.Redis) -> None:
    stack, auth, task_id, blob = started_job(make_stack, tmp_path)
    # Given the upload's bytes out of reach when the chunks first run
    hidden = blob.with_name(blob.name + ".away")
    blob.rename(hidden)
    stack.start_worker(processes=1, threads=1)
    # Then each chunk waits on the schedule for its next run, the task still running
    wait_until(lambda: len(scheduled_chunks(redis, task_id)) == 3, 30, "the chunks wait to run again")
    assert finished(stack, auth, task_id) is None
    # When the store is back, the chunks run again and the task succeeds
    hidden.rename(blob)
    done = wait_until(lambda: finished(stack, auth, task_id), 60, "the task ends")
    assert done["status"] == "SUCCESS", done
    assert done["chunks"] == {"done": 3, "failed": 0, "total": 3}
    samples = scrape(stack.url + "/metrics")
    assert value(samples, "hookline_task_retries_total", actor="process_chunk") >= 3


def test_a_chunk_gives_up_after_its_retries(make_stack: Callable[..., Stack], tmp_path: Path) -> None:
    stack, auth, task_id, blob = started_job(make_stack, tmp_path, HOOKLINE_JOB_MAX_RETRIES="1")
    blob.unlink()
    stack.start_worker(processes=1, threads=2)
    done = wait_until(lambda: finished(stack, auth, task_id), 60, "the task ends")
    assert done["status"] == "FAILURE"
    assert done["error"].endswith(": gave up after 2 attempts; last: BlobNotFound"), done
