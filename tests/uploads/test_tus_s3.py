"""The S3 path end to end: gunicorn streams tus PATCHes into a real S3 API (moto's server)."""
from __future__ import annotations

import random
from collections.abc import Callable

import boto3
import numpy as np
import pytest
import requests

from tests.e2e.test_core import finished, key_for
from tests.procs import Stack, wait_until
from tests.uploads import tus
from tests.uploads.conftest import S3Server

MiB = 1024 * 1024


def test_an_upload_lands_whole_in_s3_across_parts_and_a_broken_connection(
        make_stack: Callable[..., Stack], s3_server: S3Server, s3_bucket: str,
        s3_env: dict[str, str]) -> None:
    stack = make_stack(HOOKLINE_BLOB_URL=f"s3://{s3_bucket}/hl", HOOKLINE_S3_ENDPOINT_URL=s3_server.url,
                       **s3_env)
    stack.start_web()
    auth = key_for(stack)
    s3 = boto3.session.Session().client("s3", endpoint_url=s3_server.url)
    data = random.Random(7).randbytes(20 * MiB + 12)
    url = tus.created(stack.url, auth, len(data), format="f32", dimension=1)
    key = "hl/uploads/" + url.rsplit("/", 1)[1]
    # Given a small first PATCH (less than a part), then one cut off mid-way
    assert tus.patch(url, auth, 0, data[: 3 * MiB]).status_code == 204
    sock = tus.open_patch(url, auth, 3 * MiB, 10 * MiB)
    sock.sendall(data[3 * MiB : 9 * MiB])
    sock.close()
    wait_until(lambda: tus.offset(url, auth) == 9 * MiB, 30, "the cut-off PATCH's bytes are recorded")
    # When the client resumes in pieces of any size
    for start, end in ((9 * MiB, 9 * MiB + 5), (9 * MiB + 5, 17 * MiB), (17 * MiB, len(data))):
        resp = tus.patch(url, auth, start, data[start:end])
        assert resp.status_code == 204, resp.text
    # Then the object in S3 is exactly the bytes sent, with nothing left over beside it
    assert tus.offset(url, auth) == len(data)
    assert requests.get(url, headers=auth, timeout=5).json()["state"] == "complete"
    assert s3.get_object(Bucket=s3_bucket, Key=key)["Body"].read() == data
    listed = s3.list_objects_v2(Bucket=s3_bucket, Prefix="hl/")
    assert [item["Key"] for item in listed["Contents"]] == [key]
    assert not s3.list_multipart_uploads(Bucket=s3_bucket).get("Uploads")
    # And DELETE removes it from S3
    assert requests.delete(url, headers={**auth, **tus.TUS}, timeout=5).status_code == 204
    assert s3.list_objects_v2(Bucket=s3_bucket, Prefix="hl/").get("KeyCount") == 0
    s3.close()


def test_a_job_reads_its_chunks_from_s3(make_stack: Callable[..., Stack], s3_server: S3Server,
                                        s3_bucket: str, s3_env: dict[str, str]) -> None:
    stack = make_stack(HOOKLINE_BLOB_URL=f"s3://{s3_bucket}/hl", HOOKLINE_S3_ENDPOINT_URL=s3_server.url,
                       HOOKLINE_CHUNK_VECTORS="1000", **s3_env)
    stack.start_web()
    stack.start_worker(processes=1, threads=2)
    auth = key_for(stack)
    vectors = np.random.default_rng(11).standard_normal((2_500, 6)).astype("<f4")
    url = tus.created(stack.url, auth, vectors.nbytes, format="f32", dimension=6)
    assert tus.patch(url, auth, 0, vectors.tobytes()).status_code == 204
    resp = requests.post(f"{stack.url}/tasks", headers=auth, timeout=5,
                         json={"upload_id": url.rsplit("/", 1)[1]})
    task_id = resp.json()["task_id"]
    done = wait_until(lambda: finished(stack, auth, task_id), 60, "the task ends")
    assert done["status"] == "SUCCESS", done
    assert done["chunks"] == {"done": 3, "failed": 0, "total": 3}
    norms = np.linalg.norm(vectors.astype(np.float64), axis=1)
    assert done["result"]["norms"]["norm_min"] == pytest.approx(norms.min(), rel=1e-5)
