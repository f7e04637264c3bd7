"""tus 1.0 uploads end to end: real gunicorn (two processes), real Redis, file:// blobs."""
from __future__ import annotations

import os
import random
import socket
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import redis as redis_lib
import requests

from tests.e2e.test_core import key_for
from tests.metrics_util import scrape, value
from tests.procs import Stack, wait_until
from tests.uploads import tus

MiB = 1024 * 1024


@pytest.fixture
def blob_dir(tmp_path: Path) -> Path:
    return tmp_path / "blobs"


@pytest.fixture
def web(make_stack: Callable[..., Stack], blob_dir: Path) -> Stack:
    """gunicorn alone, with a JSON body limit far below one PATCH."""
    stack = make_stack(HOOKLINE_BLOB_URL=f"file://{blob_dir}", HOOKLINE_MAX_BODY_BYTES="65536",
                       HOOKLINE_MAX_UPLOAD_BYTES=str(200 * MiB))
    stack.start_web()
    return stack


@pytest.fixture
def auth(web: Stack) -> dict[str, str]:  # type: ignore[override]
    return key_for(web)


def stored(blob_dir: Path, url: str) -> bytes:
    return (blob_dir / "uploads" / url.rsplit("/", 1)[1]).read_bytes()


def test_options_announce_the_protocol_without_a_key(web: Stack) -> None:
    for path in ("/uploads", "/uploads/up_anything"):
        resp = requests.options(web.url + path, timeout=5)
        assert resp.status_code == 204
        assert resp.headers["Tus-Version"] == "1.0.0"
        assert set(resp.headers["Tus-Extension"].split(",")) == {"creation", "termination"}
        assert resp.headers["Tus-Max-Size"] == str(200 * MiB)


def test_create_patch_head_delete(web: Stack, auth: dict[str, str], blob_dir: Path) -> None:
    data = np.random.default_rng(1).random((1000, 16), dtype=np.float32).tobytes()
    # Given a new f32 upload
    resp = tus.create(web.url, auth, len(data), format="f32", dimension=16)
    assert resp.status_code == 201 and resp.headers["Tus-Resumable"] == "1.0.0"
    assert resp.headers["Location"].startswith("/uploads/up_")
    url = web.url + resp.headers["Location"]
    head = tus.head(url, auth)
    assert head.status_code == 200 and head.headers["Upload-Offset"] == "0"
    assert head.headers["Upload-Length"] == str(len(data)) and head.headers["Cache-Control"] == "no-store"
    # When it is sent in two PATCHes
    first = tus.patch(url, auth, 0, data[:10_000])
    assert first.status_code == 204 and first.headers["Upload-Offset"] == "10000"
    assert requests.get(url, headers=auth, timeout=5).json()["state"] == "open"
    second = tus.patch(url, auth, 10_000, data[10_000:])
    assert second.status_code == 204 and second.headers["Upload-Offset"] == str(len(data))
    # Then it is complete, and the store holds exactly the bytes sent
    assert tus.offset(url, auth) == len(data)
    view = requests.get(url, headers=auth, timeout=5).json()
    assert {k: view[k] for k in ("state", "rows", "dimension", "format", "length")} == {
        "state": "complete", "rows": 1000, "dimension": 16, "format": "f32", "length": len(data)}
    assert stored(blob_dir, url) == data
    # And DELETE removes the record and the bytes
    gone = requests.delete(url, headers={**auth, **tus.TUS}, timeout=5)
    assert gone.status_code == 204
    assert tus.head(url, auth).status_code == 404
    assert not list((blob_dir / "uploads").iterdir())


def test_a_64_mib_patch_is_not_held_to_the_json_body_limit(web: Stack, auth: dict[str, str],
                                                           blob_dir: Path) -> None:
    data = random.Random(2).randbytes(64 * MiB)
    url = tus.created(web.url, auth, len(data), format="f32", dimension=256)
    resp = tus.patch(url, auth, 0, data)
    assert resp.status_code == 204, resp.text
    assert resp.headers["Upload-Offset"] == str(len(data))
    assert stored(blob_dir, url) == data
    # while a JSON body is still held to HOOKLINE_MAX_BODY_BYTES
    big = requests.post(f"{web.url}/tasks", headers={**auth, "Content-Type": "application/json"},
                        data=b'{"vector_data": [' + b"0.5," * 20_000 + b"0.5]}", timeout=10)
    assert big.status_code == 413


def test_an_upload_resumes_after_a_broken_connection(web: Stack, auth: dict[str, str],
                                                     blob_dir: Path) -> None:
    data = random.Random(3).randbytes(6 * MiB)
    url = tus.created(web.url, auth, len(data), format="f32", dimension=4)
    # Given a client that sends 2.5 MiB of a 6 MiB PATCH and then goes away
    sock = tus.open_patch(url, auth, 0, len(data))
    sent = 5 * MiB // 2
    sock.sendall(data[:sent])
    sock.close()
    # Then the offset shows the bytes that reached the store
    wait_until(lambda: tus.offset(url, auth) == sent, 20, "the offset reaches the bytes sent")
    # And the client resumes from there, and the upload is whole and exact
    resp = tus.patch(url, auth, sent, data[sent:])
    assert resp.status_code == 204, resp.text
    assert tus.offset(url, auth) == len(data)
    assert stored(blob_dir, url) == data


def test_a_wrong_offset_is_409_and_changes_nothing(web: Stack, auth: dict[str, str]) -> None:
    url = tus.created(web.url, auth, 400, format="f32", dimension=1)
    assert tus.patch(url, auth, 0, b"\0" * 100).status_code == 204
    for wrong in (0, 50, 200):
        resp = tus.patch(url, auth, wrong, b"\0" * 100)
        assert resp.status_code == 409
        assert resp.headers["Content-Type"] == "application/problem+json"
        assert resp.headers["Upload-Offset"] == "100"
    assert tus.offset(url, auth) == 100


def test_a_second_patch_while_one_streams_is_refused(web: Stack, auth: dict[str, str],
                                                     blob_dir: Path) -> None:
    data = random.Random(4).randbytes(2 * MiB)
    url = tus.created(web.url, auth, len(data), format="f32", dimension=2)
    # Given a PATCH that has sent half its body and waits
    sock = tus.open_patch(url, auth, 0, len(data))
    sock.sendall(data[: MiB])
    wait_until(lambda: (blob_dir / "uploads").exists(), 10, "the first PATCH is writing")
    # When another PATCH at the same offset arrives
    racing = tus.patch(url, auth, 0, random.Random(5).randbytes(len(data)))
    # Then it is refused, and the first one finishes with its own bytes
    assert racing.status_code == 423, racing.text
    sock.sendall(data[MiB:])
    status, _ = tus.read_status(sock)
    sock.close()
    assert status == 204
    assert tus.offset(url, auth) == len(data)
    assert stored(blob_dir, url) == data


def test_a_missing_or_wrong_tus_version_is_412(web: Stack, auth: dict[str, str]) -> None:
    url = tus.created(web.url, auth, 40, format="f32", dimension=1)
    for version in (None, "0.2.2"):
        extra = {} if version is None else {"Tus-Resumable": version}
        calls = [
            requests.post(f"{web.url}/uploads", timeout=5, headers={
                **auth, **extra, "Upload-Length": "40", "Upload-Metadata": tus.metadata(format="f32", dimension=1)}),
            requests.patch(url, data=b"x" * 4, timeout=5, headers={
                **auth, **extra, "Upload-Offset": "0", "Content-Type": tus.OCTETS}),
            requests.head(url, headers={**auth, **extra}, timeout=5),
            requests.delete(url, headers={**auth, **extra}, timeout=5),
        ]
        for resp in calls:
            assert resp.status_code == 412
            assert resp.headers["Tus-Version"] == "1.0.0"
    assert tus.offset(url, auth) == 0


def test_over_the_upload_limit_is_413_at_creation(web: Stack, auth: dict[str, str]) -> None:
    resp = tus.create(web.url, auth, 200 * MiB + 1, format="f32", dimension=1)
    assert resp.status_code == 413
    assert resp.headers["Content-Type"] == "application/problem+json"
    assert resp.json()["status"] == 413
    # And a PATCH longer than what the upload lacks is refused before a byte is stored
    url = tus.created(web.url, auth, 40, format="f32", dimension=1)
    assert tus.patch(url, auth, 0, b"\0" * 44).status_code == 413
    assert tus.offset(url, auth) == 0


@pytest.mark.parametrize("headers, status", [
    ({"Upload-Metadata": tus.metadata(format="csv")}, 422),
    ({"Upload-Metadata": tus.metadata(format="f32")}, 422),
    ({"Upload-Metadata": tus.metadata(format="f32", dimension=3)}, 422),  # 40 bytes: not rows of 12
    ({"Upload-Metadata": tus.metadata(format="f32", dimension=99999)}, 422),
    ({"Upload-Metadata": "format !!notbase64"}, 422),
    ({"Upload-Length": "-1"}, 400),
    ({"Upload-Length": ""}, 400),
    ({"Upload-Defer-Length": "1"}, 400),
])
def test_bad_creations_are_4xx_problems(web: Stack, auth: dict[str, str],
                                        headers: dict[str, str], status: int) -> None:
    sent = {**auth, **tus.TUS, "Upload-Length": "40",
            "Upload-Metadata": tus.metadata(format="f32", dimension=1), **headers}
    resp = requests.post(f"{web.url}/uploads", headers=sent, timeout=5)
    assert resp.status_code == status, resp.text
    assert resp.headers["Content-Type"] == "application/problem+json"


def test_a_bad_npy_header_is_refused_at_the_first_bytes(web: Stack, auth: dict[str, str]) -> None:
    # Given an 8 MiB .npy in Fortran order
    data = tus.npy_bytes(np.asfortranarray(np.zeros((2048, 1024), dtype="<f4")))
    url = tus.created(web.url, auth, len(data), format="npy")
    # When only its first 4 KiB are sent of a PATCH that announces all of it
    sock = tus.open_patch(url, auth, 0, len(data))
    sock.sendall(data[:4096])
    sock.settimeout(10)
    # Then the refusal comes at once, before the rest is sent
    status, answer = tus.read_status(sock)
    sock.close()
    assert status == 422
    assert b"application/problem+json" in answer
    assert tus.offset(url, auth) == 0


@pytest.mark.parametrize("array, length_delta", [
    (np.zeros((10, 4), dtype=">f8"), 0),
    (np.zeros((10, 4), dtype="<i8"), 0),
    (np.zeros((2, 5, 4), dtype="<f4"), 0),
    (np.zeros((10, 4), dtype="<f4"), 16),  # Upload-Length disagrees with the shape
])
def test_npy_rules(web: Stack, auth: dict[str, str], array: np.ndarray, length_delta: int) -> None:
    data = tus.npy_bytes(array) + b"\0" * length_delta
    url = tus.created(web.url, auth, len(data), format="npy")
    resp = tus.patch(url, auth, 0, data)
    assert resp.status_code == 422
    assert resp.json()["errors"]["npy"]
    assert tus.offset(url, auth) == 0


def test_a_good_npy_upload_shows_its_layout(web: Stack, auth: dict[str, str], blob_dir: Path) -> None:
    data = tus.npy_bytes(np.ones((300, 24), dtype="<f8"))
    url = tus.created(web.url, auth, len(data), format="npy")
    # A first PATCH shorter than the header is refused: the header comes whole
    assert tus.patch(url, auth, 0, data[:50]).status_code == 422
    assert tus.patch(url, auth, 0, data[:1000]).status_code == 204
    assert tus.patch(url, auth, 1000, data[1000:]).status_code == 204
    view = requests.get(url, headers=auth, timeout=5).json()
    assert {k: view[k] for k in ("state", "rows", "dimension", "dtype")} == {
        "state": "complete", "rows": 300, "dimension": 24, "dtype": "<f8"}
    assert stored(blob_dir, url) == data


def test_uploads_belong_to_their_tenant(web: Stack, auth: dict[str, str]) -> None:
    url = tus.created(web.url, auth, 40, format="f32", dimension=1)
    other = key_for(web, "umbrella")
    assert tus.head(url, other).status_code == 404
    assert requests.get(url, headers=other, timeout=5).status_code == 404
    assert tus.patch(url, other, 0, b"\0" * 40).status_code == 404
    assert requests.delete(url, headers={**other, **tus.TUS}, timeout=5).status_code == 404
    assert tus.offset(url, auth) == 0
    assert tus.patch(url, auth, 0, b"\0" * 40).status_code == 204


def test_uploaded_bytes_are_counted(web: Stack, auth: dict[str, str]) -> None:
    before = value(scrape(web.url + "/metrics"), "hookline_upload_bytes_total")
    url = tus.created(web.url, auth, 4000, format="f32", dimension=10)
    tus.patch(url, auth, 0, b"\0" * 1000)
    tus.patch(url, auth, 1000, b"\0" * 3000)
    assert value(scrape(web.url + "/metrics"), "hookline_upload_bytes_total") - before == 4000


def test_an_unused_upload_is_deleted_after_its_time_to_live(
        make_stack: Callable[..., Stack], blob_dir: Path) -> None:
    stack = make_stack(HOOKLINE_BLOB_URL=f"file://{blob_dir}", HOOKLINE_UPLOAD_TTL="2")
    stack.start_web()
    auth = key_for(stack)
    url = tus.created(stack.url, auth, 400, format="f32", dimension=1)
    assert tus.patch(url, auth, 0, b"\0" * 100).status_code == 204
    assert (blob_dir / "uploads").exists() and list((blob_dir / "uploads").iterdir())
    # When its time to live has passed, the next sweep deletes the record and the bytes
    wait_until(lambda: tus.head(url, auth).status_code == 404, 20, "the upload is swept")
    assert not list((blob_dir / "uploads").iterdir())


def test_a_disconnect_before_any_byte_changes_nothing(web: Stack, auth: dict[str, str]) -> None:
    url = tus.created(web.url, auth, 4000, format="f32", dimension=10)
    sock = tus.open_patch(url, auth, 0, 4000)
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    wait_until(lambda: tus.patch(url, auth, 0, b"\0" * 4000).status_code == 204, 10,
               "the upload takes a PATCH from offset 0")


def test_bytes_lost_with_the_machine_are_sent_again(web: Stack, auth: dict[str, str],
                                                    blob_dir: Path) -> None:
    data = random.Random(8).randbytes(3 * MiB)
    url = tus.created(web.url, auth, len(data), format="f32", dimension=8)
    assert tus.patch(url, auth, 0, data[: 2 * MiB]).status_code == 204
    # Given a machine that went down before the page cache reached the disk
    # (appends are not synced one by one): the file is shorter than its record
    partial = blob_dir / "uploads" / (url.rsplit("/", 1)[1] + ".partial")
    os.truncate(partial, MiB + 5)
    # When the client sends the next piece at the recorded offset
    resp = tus.patch(url, auth, 2 * MiB, data[2 * MiB :])
    # Then it is told where the stored bytes end, and resuming there makes it whole
    assert resp.status_code == 409 and resp.headers["Upload-Offset"] == str(MiB + 5)
    assert tus.offset(url, auth) == MiB + 5
    assert tus.patch(url, auth, MiB + 5, data[MiB + 5 :]).status_code == 204
    assert stored(blob_dir, url) == data


def test_a_whole_upload_found_unsealed_and_short_resumes_from_its_bytes(
        web: Stack, auth: dict[str, str], blob_dir: Path, redis: redis_lib.Redis) -> None:
    data = random.Random(9).randbytes(MiB)
    url = tus.created(web.url, auth, len(data), format="f32", dimension=4)
    assert tus.patch(url, auth, 0, data).status_code == 204
    # Given the machine went down after the last PATCH recorded its offset but
    # before the blob was sealed, and with part of the bytes
    upload_id = url.rsplit("/", 1)[1]
    sealed = blob_dir / "uploads" / upload_id
    partial = sealed.with_name(upload_id + ".partial")
    sealed.rename(partial)
    os.truncate(partial, 1000)
    redis.hset(f"hl:upload:{upload_id}", "state", "open")
    # Then HEAD says where the stored bytes end, and the client finishes from there
    assert tus.offset(url, auth) == 1000
    assert tus.patch(url, auth, 1000, data[1000:]).status_code == 204
    assert requests.get(url, headers=auth, timeout=5).json()["state"] == "complete"
    assert stored(blob_dir, url) == data
