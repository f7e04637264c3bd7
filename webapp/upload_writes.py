"""Writes to an upload: PATCH (streamed to the blob store) and DELETE.

A PATCH reads its body into one buffer of ``READ_CHUNK`` bytes, again and
again, and appends each fill as it comes, so no process ever holds a whole
upload, and each byte is copied once on its way from the socket to the
store (``webapp.body_into`` lets it go from the socket straight into the
buffer). The upload's lock and
the offset compare-and-set (``hookline.uploads``) keep one writer at a time.
A ``.npy`` header is checked as soon as its bytes arrive.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from flask import Response, request
from werkzeug.exceptions import ClientDisconnected

from hookline import metrics
from hookline.blobs import BlobConflict, BlobError, BlobStore
from hookline.config import Config
from hookline.npy import PREAMBLE_BYTES, NpyHeaderError, header_size, parse_header
from hookline.upload_retention import RetentionSweeper
from hookline.uploads import Upload, UploadStore
from webapp.problems import Problem, not_found, unprocessable

log = logging.getLogger("hookline.uploads")

OFFSET_TYPE = "application/offset+octet-stream"
#: Bytes of a PATCH body handed to the store at a time: the memory one upload
#: request holds (one buffer, filled again for each piece).
READ_CHUNK = 1024 * 1024
#: Seconds between renewals of a writer's lock while it streams.
RENEW_EVERY = 5.0


@dataclass
class UploadServices:
    """What the uploads API needs, built once by the app factory."""

    store: UploadStore
    blobs: BlobStore
    sweeper: RetentionSweeper
    config: Config


def header_int(name: str, status: int = 400) -> int:
    """A header that holds a whole number of bytes; ``status`` when it does not."""
    raw = request.headers.get(name, "")
    if not raw.isdigit() or not raw.isascii():
        raise Problem(status, "Bad Request", f"{name} must be a whole number of bytes.")
    return int(raw)


def invalid(field: str, message: str) -> Problem:
    return unprocessable(message, errors={field: [message]})


def delete(svc: UploadServices, upload: Upload) -> Response:
    """tus termination: the bytes, then the record.

    Raises:
        Problem: 409 while a task reads the upload, 423 while a PATCH writes it.
    """
    if upload.task:
        raise Problem(409, "Conflict", "A task reads this upload; it goes when the task does.")
    token = svc.store.lock(upload.id)
    if token is None:
        raise locked()
    try:
        svc.blobs.delete(upload.blob_key)
        svc.store.forget(upload.id)
    finally:
        svc.store.unlock(upload.id, token)
    log.info("upload deleted", extra={"upload_id": upload.id})
    return Response(status=204)


def locked() -> Problem:
    return Problem(423, "Locked", "Another request is writing this upload; retry when it ends.",
                   headers={"Retry-After": "1"})


def conflict(upload: Upload, offset: int) -> Problem:
    return Problem(409, "Conflict",
                   f"Upload-Offset is {offset} but the upload holds {upload.offset} bytes; "
                   "resume from there (HEAD gives it).",
                   headers={"Upload-Offset": str(upload.offset)})


class _Body:
    """The PATCH body, read in pieces; a client that goes away ends it early."""

    def __init__(self, stream: IO[bytes], length: int) -> None:
        self.stream = stream
        self.left = length
        self.disconnected = False
        self.buffer = bytearray(READ_CHUNK)

    def read(self, size: int) -> bytes:
        """At most ``size`` bytes (the ``.npy`` header's few)."""
        piece = self.fill(size)
        return bytes(piece)

    def fill(self, size: int = READ_CHUNK) -> memoryview:
        """The next (up to) ``size`` bytes, in the one buffer: valid until the next call.

        Empty at the end of the body, or once the client has gone.
        """
        view = memoryview(self.buffer)[: min(size, len(self.buffer), max(0, self.left))]
        filled = 0
        while filled < len(view) and not self.disconnected:
            try:
                count = self.stream.readinto(view[filled:])  # type: ignore[attr-defined]
            except (ClientDisconnected, OSError):
                count = 0
            if not count:
                self.disconnected = True
            filled += count or 0
        self.left -= filled
        return view[:filled]


def _pieces(svc: UploadServices, upload: Upload, token: str, first: bytes, body: _Body,
            lost: list[bool]) -> Iterator[bytes | memoryview]:
    """``first``, then the body, renewing the lock; stops if the lock is lost.

    Each piece of the body is valid until the next is asked for (the store
    writes or copies it first).
    """
    renewed = time.monotonic()
    if first:
        yield first
    while True:
        data = body.fill()
        if not data:
            return
        if time.monotonic() - renewed > RENEW_EVERY:
            if not svc.store.renew(upload.id, token):
                lost.append(True)
                return
            renewed = time.monotonic()
        yield data


def _npy_header(svc: UploadServices, upload: Upload, body: _Body) -> tuple[bytes, dict[str, int | str]]:
    """Read and check the header from the first bytes of the body.

    Returns the bytes read and the layout fields, or ``b""`` if the client
    went away first.

    Raises:
        Problem: 422 for a header that breaks a rule, before anything is stored.
    """
    head = bytearray()
    try:
        while len(head) < PREAMBLE_BYTES and not body.disconnected and body.left:
            head += body.read(PREAMBLE_BYTES - len(head))
        if body.disconnected:
            return b"", {}
        total = header_size(bytes(head))
        while len(head) < total and not body.disconnected and body.left:
            head += body.read(total - len(head))
        if body.disconnected:
            return b"", {}
        if len(head) < total:
            raise NpyHeaderError(f"The first PATCH must carry the whole .npy header ({total} bytes).")
        layout = parse_header(bytes(head[:total]), upload.length, svc.config.max_dimension)
    except NpyHeaderError as exc:
        raise invalid("npy", str(exc)) from None
    return bytes(head), {"rows": layout.rows, "dimension": layout.dimension,
                         "dtype": layout.dtype, "data_offset": layout.data_offset}


def repair(svc: UploadServices, upload: Upload, token: str) -> Problem:
    """The store holds fewer bytes than the record says (lost with a machine,
    since appends are not synced one by one): take the offset back to what
    is stored, and tell the client to resume from there.
    """
    stored = min(svc.blobs.size(upload.blob_key), upload.offset)
    if upload.format == "npy" and stored < upload.data_offset:
        stored = 0  # the header is checked again from the first byte
    svc.store.advance(upload, token, stored)
    log.warning("upload shorter than its record; offset taken back",
                extra={"upload_id": upload.id, "recorded": upload.offset, "stored": stored})
    return Problem(409, "Conflict", f"The store holds {stored} bytes of this upload; resume from there.",
                   headers={"Upload-Offset": str(stored)})


def patch(svc: UploadServices, upload: Upload) -> Response:
    """Append the request's body at its ``Upload-Offset``; 204 with the new offset.

    Raises:
        Problem: 409 (another offset, or the lock was lost), 411, 413 (longer
            than the upload lacks), 415, 422 (a bad ``.npy`` header), 423
            (another PATCH is writing).
        BlobError: the blob store failed (503).
    """
    if request.mimetype != OFFSET_TYPE:
        raise Problem(415, "Unsupported Media Type", f"Send the bytes as Content-Type: {OFFSET_TYPE}.")
    offset = header_int("Upload-Offset")
    if offset != upload.offset:
        raise conflict(upload, offset)
    length = request.content_length
    if length is None:
        raise Problem(411, "Length Required", "Send Content-Length with each PATCH.")
    remaining = upload.length - upload.offset
    if length > remaining:
        raise Problem(413, "Payload Too Large",
                      f"The body is {length} bytes but the upload lacks only {remaining}.")
    token = svc.store.lock(upload.id)
    if token is None:
        raise locked()
    try:
        # Read again under the lock: a PATCH that held it may have moved the offset.
        current = svc.store.get(upload.id)
        if current is None:
            raise not_found("upload")
        if current.offset != offset:
            raise conflict(current, offset)
        # The body may be far larger than the limit for JSON bodies.
        request.max_content_length = remaining
        body = _Body(request.stream, length)
        first: bytes = b""
        fields: dict[str, int | str] = {}
        if current.format == "npy" and current.offset == 0 and length:
            first, fields = _npy_header(svc, current, body)
            if not first:
                return Response(status=400)  # the client went away before the header
        lost: list[bool] = []
        try:
            new_offset = svc.blobs.append(current.blob_key, current.offset,
                                          _pieces(svc, current, token, first, body, lost))
        except BlobConflict:
            raise repair(svc, current, token) from None
        if lost:
            raise Problem(409, "Conflict", "This PATCH stalled and another took over the upload.")
        if new_offset > current.length:  # the body is bounded above; this is a broken store
            raise BlobError(f"{new_offset} bytes stored for an upload of {current.length}")
        outcome = svc.store.advance(current, token, new_offset, **fields)
        if outcome == -3:
            raise not_found("upload")
        if outcome != 1:
            raise Problem(409, "Conflict", "Another request took over the upload; HEAD gives its offset.")
        metrics.upload_bytes.inc(new_offset - current.offset)
        if new_offset == current.length:
            svc.blobs.seal(current.blob_key, current.length)
            svc.store.mark_complete(current.id)
            log.info("upload complete", extra={"upload_id": current.id, "bytes": current.length})
    finally:
        svc.store.unlock(upload.id, token)
    if body.disconnected:
        # Nobody reads this answer; the bytes that arrived are recorded.
        return Response(status=400)
    return Response(status=204, headers={"Upload-Offset": str(new_offset)})
