"""``s3://bucket/prefix``: blobs in any S3-compatible store, through boto3.

S3 has no append. A blob being written is a multipart upload of parts of
exactly ``part_size`` bytes, plus *tail* objects ``<key>.tail.<start>``, each
holding bytes from ``start`` (a multiple of the part size) up to where an
append ended (fewer than ``part_size``). Every part but the last must be at
least 5 MiB, and a tus client may send pieces of any size, so an ``append``
reads the tail of its part back (at most one part), adds its stream to it,
uploads each whole part as soon as it has one, and writes the rest as the
tail of the part where it ended. ``seal`` uploads that tail as the last part
and completes the upload. Memory per writer is bounded by one part.

Which part holds a byte follows from its offset alone (byte ``o`` is in part
``o // part_size + 1``), and the bytes before a recorded offset never change,
so a writer that got further than its caller could record (killed, or cut
off) leaves nothing to repair: the next append at the recorded offset reads
the prefix it needs from the tail of that part (a tail only ever grows from
its start, or is written afresh by a later writer with the same prefix) and
uploads the same part numbers again (S3 keeps the last upload of a part
number). Tails of parts before the recorded offset are no longer needed and
are deleted by the next append. The multipart upload id is found by listing
the key's uploads, so nothing of S3's lives in Redis.

Credentials and region come from boto3's usual chain (``AWS_*`` variables,
the shared files, an instance role).
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from hookline.blobs import BlobConflict, BlobError, BlobNotFound, BlobStore, check_key

#: Bytes per multipart part; S3 wants at least 5 MiB for all parts but the last.
DEFAULT_PART_SIZE = 8 * 1024 * 1024
#: The smallest part S3 accepts before the last, in bytes.
MIN_PART_SIZE = 5 * 1024 * 1024
_TAIL = ".tail"
_MISSING = frozenset({"NoSuchKey", "404", "NotFound", "NoSuchUpload"})


class S3BlobStore(BlobStore):
    """Blobs under ``prefix`` in ``bucket``; ``endpoint_url`` for non-AWS stores."""

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 part_size: int = DEFAULT_PART_SIZE, client: Any = None) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part_size must be at least {MIN_PART_SIZE} bytes")
        self.bucket = bucket
        self.prefix = prefix
        self.part_size = part_size
        self.endpoint_url = endpoint_url
        self._client = client

    @property
    def client(self) -> Any:
        # Made on first use: building a boto3 client reads files and takes
        # ~100 ms, and nothing may connect at import or configuration time.
        if self._client is None:
            import boto3
            from botocore.config import Config as BotoConfig

            self._client = boto3.session.Session().client(
                "s3", endpoint_url=self.endpoint_url,
                config=BotoConfig(
                    retries={"max_attempts": 4, "mode": "standard"},
                    connect_timeout=5, read_timeout=60, max_pool_connections=32,
                    # Other S3-compatible stores often lack the newer default
                    # checksums; path-style addressing works with any endpoint.
                    request_checksum_calculation="when_required",
                    response_checksum_validation="when_required",
                    s3={"addressing_style": "path"} if self.endpoint_url else None,
                ),
            )
        return self._client

    def _full(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    @contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING:
                raise BlobNotFound(key) from None
            raise BlobError(f"S3 {code or 'error'} on {key}") from exc
        except BotoCoreError as exc:
            raise BlobError(f"S3 unreachable: {type(exc).__name__}") from exc

    def _get(self, full: str) -> bytes | None:
        try:
            with self._errors(full):
                return self.client.get_object(Bucket=self.bucket, Key=full)["Body"].read()  # type: ignore[no-any-return]
        except BlobNotFound:
            return None

    def _exists(self, full: str) -> int | None:
        try:
            with self._errors(full):
                return int(self.client.head_object(Bucket=self.bucket, Key=full)["ContentLength"])
        except BlobNotFound:
            return None

    def _uploads(self, full: str) -> list[str]:
        with self._errors(full):
            listed = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=full)
        return [u["UploadId"] for u in listed.get("Uploads", []) if u["Key"] == full]

    def _upload_id(self, full: str) -> str:
        """The key's unfinished multipart upload; one is started if there is none."""
        ids = self._uploads(full)
        if ids:
            return ids[0]
        with self._errors(full):
            return str(self.client.create_multipart_upload(Bucket=self.bucket, Key=full)["UploadId"])

    def _abort_uploads(self, full: str) -> None:
        for upload_id in self._uploads(full):
            try:
                with self._errors(full):
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id)
            except BlobNotFound:
                pass

    def _parts(self, full: str, upload_id: str) -> dict[int, tuple[str, int]]:
        """Part number -> (ETag, size) of an unfinished upload."""
        found: dict[int, tuple[str, int]] = {}
        marker = 0
        while True:
            with self._errors(full):
                page = self.client.list_parts(Bucket=self.bucket, Key=full, UploadId=upload_id,
                                              PartNumberMarker=marker)
            for part in page.get("Parts", []):
                found[int(part["PartNumber"])] = (part["ETag"], int(part["Size"]))
            if not page.get("IsTruncated"):
                return found
            marker = int(page["NextPartNumberMarker"])

    def _upload_part(self, full: str, upload_id: str, number: int, body: bytes) -> str:
        with self._errors(full):
            answer = self.client.upload_part(Bucket=self.bucket, Key=full, UploadId=upload_id,
                                             PartNumber=number, Body=body)
        return str(answer["ETag"])

    def _tails(self, full: str) -> dict[int, str]:
        """Start offset -> key of every tail object of ``full``."""
        found: dict[int, str] = {}
        pages = self.client.get_paginator("list_objects_v2")
        with self._errors(full):
            for page in pages.paginate(Bucket=self.bucket, Prefix=full + _TAIL):
                for item in page.get("Contents", []):
                    start = item["Key"][len(full + _TAIL):]
                    if start.isdigit():
                        found[int(start)] = item["Key"]
        return found

    def _drop(self, keys: Iterable[str]) -> None:
        for target in keys:
            with self._errors(target):
                self.client.delete_object(Bucket=self.bucket, Key=target)

    def append(self, key: str, offset: int, chunks: Iterable[bytes | memoryview]) -> int:
        full = self._full(key)
        size = self.part_size
        base = offset - offset % size
        buffer = bytearray()
        upload_id: str | None = None
        if offset == 0:
            # A new blob, or one started again: nothing earlier may survive.
            self.delete(key)
        else:
            tails = self._tails(full)
            self._drop(k for start, k in tails.items() if start < base)
            if offset > base:
                tail = self._get(tails.get(base, f"{full}{_TAIL}{base}"))
                if tail is None or len(tail) < offset - base:
                    raise BlobConflict(f"the stored tail does not reach offset {offset}")
                buffer += tail[: offset - base]
            if offset >= size:
                ids = self._uploads(full)
                if not ids:
                    raise BlobConflict(f"no multipart upload holds the parts before {offset}")
                upload_id = ids[0]
        number = base // size + 1
        position = offset
        try:
            for chunk in chunks:
                buffer += chunk
                position += len(chunk)
                while len(buffer) >= size:
                    if upload_id is None:
                        upload_id = self._upload_id(full)
                    self._upload_part(full, upload_id, number, bytes(buffer[:size]))
                    del buffer[:size]
                    number += 1
        except BlobError:
            # The store failed: the caller's offset stays where it was, and
            # the tail of that offset's part is untouched.
            raise
        except BaseException:
            # The stream broke: what it gave is kept, as on a file.
            self._put_tail(full, position - len(buffer), buffer)
            raise
        self._put_tail(full, position - len(buffer), buffer)
        return position

    def _put_tail(self, full: str, start: int, buffer: bytearray) -> None:
        with self._errors(full):
            self.client.put_object(Bucket=self.bucket, Key=f"{full}{_TAIL}{start}", Body=bytes(buffer))

    def seal(self, key: str, size: int) -> None:
        full = self._full(key)
        tails = self._tails(full)
        stored = self._exists(full)
        if stored is not None:
            # Sealed already (perhaps cut short before its tails were deleted).
            self._drop(tails.values())
            if stored != size:
                raise BlobConflict(f"sealed blob holds {stored} bytes, not {size}")
            return
        if not tails:
            raise BlobNotFound(key)
        whole, rest = divmod(size, self.part_size)
        tail = self._get(tails.get(whole * self.part_size, "")) if whole * self.part_size in tails else None
        if tail is None or len(tail) < rest:
            raise BlobConflict(f"the stored bytes do not reach {size}")
        tail = tail[:rest]
        if whole == 0:
            with self._errors(full):
                self.client.put_object(Bucket=self.bucket, Key=full, Body=tail)
            self._abort_uploads(full)
        else:
            ids = self._uploads(full)
            if not ids:
                raise BlobConflict("no multipart upload holds this blob's parts")
            parts = self._parts(full, ids[0])
            wanted = []
            for number in range(1, whole + 1):
                etag, part_size = parts.get(number, ("", -1))
                if part_size != self.part_size:
                    raise BlobConflict(f"part {number} is missing or of the wrong size")
                wanted.append({"PartNumber": number, "ETag": etag})
            if rest:
                wanted.append({"PartNumber": whole + 1,
                               "ETag": self._upload_part(full, ids[0], whole + 1, tail)})
            with self._errors(full):
                self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=full, UploadId=ids[0],
                    MultipartUpload={"Parts": wanted})
        self._drop(tails.values())

    def read(self, key: str, start: int, length: int) -> bytes:
        full = self._full(key)
        if length <= 0:
            return b""
        from botocore.exceptions import ClientError

        try:
            with self._errors(full):
                answer = self.client.get_object(Bucket=self.bucket, Key=full,
                                                Range=f"bytes={start}-{start + length - 1}")
                return answer["Body"].read()  # type: ignore[no-any-return]
        except BlobError as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") == "InvalidRange":
                return b""
            raise

    def size(self, key: str) -> int:
        full = self._full(key)
        stored = self._exists(full)
        if stored is not None:
            return stored
        ends = [start + (self._exists(tail) or 0) for start, tail in self._tails(full).items()]
        return max(ends, default=0)

    def delete(self, key: str) -> None:
        full = self._full(key)
        self._abort_uploads(full)
        self._drop([full, *self._tails(full).values()])
