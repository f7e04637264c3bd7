"""Fixtures for uploads: a real S3 API (moto's server mode) and blob stores of each kind."""
from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from hookline.blobs import BlobStore
from hookline.blobs.files import FileBlobStore
from hookline.blobs.s3 import MIN_PART_SIZE, S3BlobStore
from tests.procs import BIN, Stack, free_port, wait_until

#: Credentials moto accepts; they reach boto3 through its usual variables.
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "hookline-test",
    "AWS_SECRET_ACCESS_KEY": "hookline-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class S3Server:
    """moto's S3-compatible server on loopback, on a free port."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self._log = open(log_dir / "moto.log", "ab")
        self.proc = subprocess.Popen(
            [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_until(lambda: requests.get(self.url, timeout=1).status_code < 500, 60,
                   "moto's S3 server answers")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)
        self._log.close()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server(tmp_path_factory.mktemp("moto"))
    yield server
    server.stop()


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name, value in S3_ENV.items():
        monkeypatch.setenv(name, value)
    return dict(S3_ENV)


_buckets = iter(range(1_000_000))


@pytest.fixture
def s3_bucket(s3_server: S3Server, s3_env: dict[str, str]) -> str:
    """A fresh, empty bucket on the S3 server."""
    import boto3

    name = f"hookline-{next(_buckets)}"
    client = boto3.session.Session().client("s3", endpoint_url=s3_server.url)
    client.create_bucket(Bucket=name)
    client.close()
    return name


@pytest.fixture(params=["file", "s3"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    """The same contract, run against each store."""
    if request.param == "file":
        yield FileBlobStore(tmp_path / "blobs")
        return
    server: S3Server = request.getfixturevalue("s3_server")
    bucket = request.getfixturevalue("s3_bucket")
    # The smallest part S3 allows, so that a few MiB cross part boundaries.
    store = S3BlobStore(bucket, "pre/fix", endpoint_url=server.url, part_size=MIN_PART_SIZE)
    yield store
    store.client.close()


#: Vectors per chunk of the ``large`` stack's jobs.
LARGE_CHUNK = 1000


@pytest.fixture
def large(make_stack: Callable[..., Stack], tmp_path: Path) -> Stack:
    """Web, two job worker processes of two threads, callbacks; chunks of ``LARGE_CHUNK``."""
    stack = make_stack(HOOKLINE_BLOB_URL=f"file://{tmp_path / 'blobs'}",
                       HOOKLINE_CHUNK_VECTORS=str(LARGE_CHUNK), HOOKLINE_MAX_VECTORS="100")
    stack.start_web()
    stack.start_worker(processes=2, threads=2)
    stack.start_callbacks()
    return stack
