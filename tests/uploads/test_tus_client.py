"""An existing tus client (tuspy, the protocol's Python client) against real gunicorn."""
from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import requests
from tusclient.client import TusClient

from tests.e2e.test_core import key_for
from tests.procs import Stack
from tests.uploads import tus

MiB = 1024 * 1024


def test_tuspy_uploads_and_resumes_a_npy_file(make_stack: Callable[..., Stack], tmp_path: Path) -> None:
    blob_dir = tmp_path / "blobs"
    stack = make_stack(HOOKLINE_BLOB_URL=f"file://{blob_dir}")
    stack.start_web()
    auth = key_for(stack)
    data = tus.npy_bytes(np.random.default_rng(4).standard_normal((20_000, 64)).astype("<f4"))
    client = TusClient(f"{stack.url}/uploads", headers=auth)
    # Given a client that sends two 1 MiB chunks and stops
    first = client.uploader(file_stream=io.BytesIO(data), chunk_size=MiB, metadata={"format": "npy"})
    first.upload_chunk()
    first.upload_chunk()
    assert first.url is not None and first.offset == 2 * MiB
    # When another client resumes from the upload's URL (it asks HEAD for the offset)
    resumed = client.uploader(file_stream=io.BytesIO(data), chunk_size=3 * MiB, url=first.url)
    assert resumed.offset == 2 * MiB
    resumed.upload()
    # Then the upload is complete and exactly the file
    view = requests.get(first.url, headers=auth, timeout=5).json()
    assert (view["state"], view["rows"], view["dimension"]) == ("complete", 20_000, 64)
    assert (blob_dir / "uploads" / first.url.rsplit("/", 1)[1]).read_bytes() == data
