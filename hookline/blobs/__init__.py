"""The blob store: where the bytes of uploads live, behind one small interface.

Redis holds only references and small records; the bytes are here. A blob is
written front to back by ``append`` (a resumable upload adds one piece per
request), made whole by ``seal``, then read by byte ranges (a chunk of a
large job reads only its own rows). Two implementations:

* ``file:///path``: one file per blob (:mod:`hookline.blobs.files`);
* ``s3://bucket/prefix``: any S3-compatible store through boto3
  (:mod:`hookline.blobs.s3`).

:func:`open_blob_store` picks one from ``HOOKLINE_BLOB_URL``.
"""
from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable

#: Blob keys: letters, digits and ``_.-``, with ``/`` between parts.
_KEY_RE = re.compile(r"^[A-Za-z0-9_.-]{1,200}(/[A-Za-z0-9_.-]{1,200}){0,4}$")


class BlobError(Exception):
    """The root of the blob store's errors."""


class BlobNotFound(BlobError):
    """No blob (or no sealed blob, for a read) under that key."""


class BlobConflict(BlobError):
    """The blob's stored size is not what the caller says it is."""


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe blob key.

    Raises:
        ValueError: it could escape its folder or prefix (``..``, a leading ``/``).
    """
    if not _KEY_RE.match(key) or any(part in (".", "..") for part in key.split("/")):
        raise ValueError(f"not a blob key: {key!r}")
    return key


class BlobStore(ABC):
    """Blobs written front to back, then read by byte range.

    Every method is safe to call from several threads and processes, as long
    as one writer at a time appends to a given blob (the upload's lock sees
    to that).
    """

    @abstractmethod
    def append(self, key: str, offset: int, chunks: Iterable[bytes | memoryview]) -> int:
        """Write ``chunks`` at ``offset`` and return the blob's new size.

        Each chunk is written (or copied) before the next is taken: a caller
        may hand the same buffer over again, filled anew.

        ``offset`` is the size the caller last recorded; bytes stored beyond
        it (a writer killed before it could record them) are dropped first.
        If ``chunks`` raises, the bytes it gave before are kept, and the
        exception propagates: ``size`` then says how many are stored.

        Raises:
            BlobConflict: fewer than ``offset`` bytes are stored.
            BlobError: the store failed.
        """

    @abstractmethod
    def seal(self, key: str, size: int) -> None:
        """Make the first ``size`` bytes the whole blob, readable; a no-op once done.

        Bytes stored beyond ``size`` (a writer that got further than its
        caller recorded) are dropped, as ``append`` drops them.

        Raises:
            BlobConflict: fewer than ``size`` bytes are stored, or the blob
                was sealed at another size.
            BlobNotFound: nothing is stored under ``key``.
        """

    @abstractmethod
    def read(self, key: str, start: int, length: int) -> bytes:
        """``length`` bytes of a sealed blob from ``start`` (fewer at its end).

        Raises:
            BlobNotFound: no sealed blob under ``key``.
        """

    @abstractmethod
    def size(self, key: str) -> int:
        """Bytes stored under ``key``, sealed or not (0 when there is none)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove the blob and anything kept for its unfinished writes; no error if absent."""

    def put(self, key: str, chunks: Iterable[bytes]) -> int:
        """Store ``chunks`` as the whole blob, in one go, and return its size."""
        self.delete(key)
        size = self.append(key, 0, chunks)
        self.seal(key, size)
        return size


def open_blob_store(url: str, *, s3_endpoint_url: str = "") -> BlobStore:
    """The store for ``url`` (``HOOKLINE_BLOB_URL``).

    Raises:
        ValueError: the URL is neither ``file:///path`` nor ``s3://bucket/prefix``.
    """
    if url.startswith("file://"):
        from hookline.blobs.files import FileBlobStore

        return FileBlobStore(url[len("file://"):])
    if url.startswith("s3://"):
        from hookline.blobs.s3 import S3BlobStore

        bucket, _, prefix = url[len("s3://"):].partition("/")
        return S3BlobStore(bucket, prefix.strip("/"), endpoint_url=s3_endpoint_url or None)
    raise ValueError(f"unsupported blob URL: {url!r}")
