"""The blob store's contract, run against file:// and a real S3 API (moto's server)."""
from __future__ import annotations

import random
from collections.abc import Iterator

import pytest

from hookline.blobs import BlobConflict, BlobNotFound, BlobStore, open_blob_store
from hookline.blobs.files import FileBlobStore
from hookline.blobs.s3 import S3BlobStore

MiB = 1024 * 1024


def payload(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def pieces(data: bytes, *sizes: int) -> Iterator[bytes]:
    at = 0
    for size in sizes:
        yield data[at : at + size]
        at += size


def test_put_then_read_ranges_size_and_delete(blobs: BlobStore) -> None:
    data = payload(300_000)
    assert blobs.put("up_1", pieces(data, 100_000, 200_000)) == 300_000
    assert blobs.size("up_1") == 300_000
    assert blobs.read("up_1", 0, 300_000) == data
    assert blobs.read("up_1", 123_456, 1000) == data[123_456:124_456]
    assert blobs.read("up_1", 299_990, 100) == data[299_990:]
    assert blobs.read("up_1", 400_000, 10) == b""
    blobs.delete("up_1")
    assert blobs.size("up_1") == 0
    with pytest.raises(BlobNotFound):
        blobs.read("up_1", 0, 10)


def test_appends_of_any_size_cross_part_boundaries(blobs: BlobStore) -> None:
    # Given pieces smaller and larger than an S3 part (5 MiB here), unaligned
    data = payload(12 * MiB + 77, seed=2)
    offset = 0
    for size in (1 * MiB, 7 * MiB, 3, 4 * MiB - 3, 77):
        # When each piece is appended by a separate call, as separate PATCHes are
        offset = blobs.append("up_2", offset, pieces(data[offset : offset + size], size // 2 + 1, size))
    assert offset == len(data)
    assert blobs.size("up_2") == len(data)
    blobs.seal("up_2", len(data))
    # Then the sealed blob is the bytes in order, and any range reads back
    assert blobs.read("up_2", 0, len(data)) == data
    assert blobs.read("up_2", 5 * MiB - 10, 20) == data[5 * MiB - 10 : 5 * MiB + 10]
    blobs.seal("up_2", len(data))  # a second seal changes nothing
    assert blobs.read("up_2", len(data) - 5, 5) == data[-5:]


def test_an_unsealed_blob_cannot_be_read(blobs: BlobStore) -> None:
    blobs.append("up_3", 0, [b"abc"])
    with pytest.raises(BlobNotFound):
        blobs.read("up_3", 0, 3)
    with pytest.raises(BlobNotFound):
        blobs.read("never", 0, 3)


def test_append_past_the_stored_end_is_a_conflict(blobs: BlobStore) -> None:
    blobs.append("up_4", 0, [b"x" * 10])
    with pytest.raises(BlobConflict):
        blobs.append("up_4", 20, [b"y"])
    assert blobs.size("up_4") == 10


def test_bytes_beyond_the_recorded_offset_are_dropped(blobs: BlobStore) -> None:
    # Given a writer that stored 6 MiB past offset 3 MiB but died before recording them
    first, lost, second = payload(3 * MiB, 3), payload(6 * MiB, 4), payload(4 * MiB, 5)
    blobs.append("up_5", 0, [first])
    blobs.append("up_5", len(first), [lost])
    # When the next writer appends at the recorded offset
    end = blobs.append("up_5", len(first), [second])
    blobs.seal("up_5", end)
    # Then the blob holds what was recorded, then the new bytes
    assert blobs.read("up_5", 0, end) == first + second


def test_a_broken_stream_keeps_what_it_gave(blobs: BlobStore) -> None:
    data = payload(6 * MiB, 6)

    def broken() -> Iterator[bytes]:
        yield data[: 2 * MiB]
        yield data[2 * MiB : 5 * MiB + 3]
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        blobs.append("up_6", 0, broken())
    stored = blobs.size("up_6")
    assert stored == 5 * MiB + 3
    end = blobs.append("up_6", stored, [data[stored:]])
    blobs.seal("up_6", end)
    assert blobs.read("up_6", 0, end) == data


def test_seal_takes_the_recorded_size(blobs: BlobStore) -> None:
    blobs.append("up_7", 0, [b"abcdef"])
    with pytest.raises(BlobConflict):
        blobs.seal("up_7", 7)
    with pytest.raises(BlobNotFound):
        blobs.seal("missing", 5)
    # Bytes past the recorded size came from a writer that was cut off.
    blobs.seal("up_7", 5)
    assert blobs.read("up_7", 0, 10) == b"abcde"
    with pytest.raises(BlobConflict):
        blobs.seal("up_7", 6)


def test_delete_removes_unfinished_blobs_and_ignores_missing_ones(blobs: BlobStore) -> None:
    blobs.append("up_8", 0, [payload(6 * MiB, 8)])
    blobs.delete("up_8")
    blobs.delete("up_8")
    assert blobs.size("up_8") == 0
    with pytest.raises(BlobConflict):
        blobs.append("up_8", 6 * MiB, [b"more"])


def test_an_empty_blob(blobs: BlobStore) -> None:
    assert blobs.put("up_9", []) == 0
    assert blobs.read("up_9", 0, 10) == b""


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "a//b", "a/../b", "", "sp ace"])
def test_keys_cannot_escape(blobs: BlobStore, key: str) -> None:
    with pytest.raises(ValueError):
        blobs.append(key, 0, [b"x"])


def test_open_blob_store_reads_the_url() -> None:
    files = open_blob_store("file:///tmp/hl-blobs")
    assert isinstance(files, FileBlobStore) and str(files.root) == "/tmp/hl-blobs"
    s3 = open_blob_store("s3://bucket/some/prefix/", s3_endpoint_url="http://127.0.0.1:9")
    assert isinstance(s3, S3BlobStore)
    assert (s3.bucket, s3.prefix, s3.endpoint_url) == ("bucket", "some/prefix", "http://127.0.0.1:9")
    with pytest.raises(ValueError):
        open_blob_store("ftp://x")
