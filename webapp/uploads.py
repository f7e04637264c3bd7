"""Resumable uploads on tus 1.0 (core, creation, termination): ``/uploads``.

A PATCH streams its body to the blob store in pieces of ``READ_CHUNK`` bytes,
so no process ever holds a whole upload. The body of a PATCH is bounded by
what the upload still lacks, not by ``HOOKLINE_MAX_BODY_BYTES`` (which is for
JSON bodies). A ``.npy`` header is checked as soon as its bytes arrive.
"""
from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

import redis
from flask import Blueprint, Flask, Response, current_app, request
from werkzeug.exceptions import ClientDisconnected

from hookline import metrics
from hookline.blobs import BlobConflict, BlobError, BlobStore, open_blob_store
from hookline.config import Config
from hookline.ids import isoformat
from hookline.npy import PREAMBLE_BYTES, NpyHeaderError, header_size, parse_header
from hookline.upload_retention import RetentionSweeper
from hookline.uploads import FORMATS, Upload, UploadStore
from webapp.auth import authenticate, tenant
from webapp.jsonio import reply
from webapp.problems import Problem, not_found

log = logging.getLogger("hookline.uploads")

bp = Blueprint("uploads", __name__)

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination"
OFFSET_TYPE = "application/offset+octet-stream"
#: Bytes read from a PATCH body at a time: the memory one upload request holds.
READ_CHUNK = 1024 * 1024
#: Seconds between renewals of a writer's lock while it streams.
RENEW_EVERY = 5.0
#: Seconds a client should wait before retrying when the blob store fails.
BLOB_RETRY_AFTER = 5


@dataclass
class UploadServices:
    store: UploadStore
    blobs: BlobStore
    sweeper: RetentionSweeper
    config: Config


def register(app: Flask, config: Config, client: redis.Redis) -> None:
    """Build what the uploads API needs and register its blueprint."""
    store = UploadStore(client)
    blobs = open_blob_store(config.blob_url, s3_endpoint_url=config.s3_endpoint_url)
    app.extensions["hookline_uploads"] = UploadServices(
        store=store, blobs=blobs, sweeper=RetentionSweeper(store, blobs, config.upload_ttl),
        config=config)
    app.register_blueprint(bp)


def _svc() -> UploadServices:
    return current_app.extensions["hookline_uploads"]  # type: ignore[no-any-return]


@bp.before_request
def _tus_request() -> None:
    if request.method == "OPTIONS":
        return  # discovery, as tus clients and browsers' preflights send it: no key
    authenticate()
    if request.method != "GET" and request.headers.get("Tus-Resumable") != TUS_VERSION:
        raise Problem(412, "Precondition Failed",
                      f"Send Tus-Resumable: {TUS_VERSION}; it is the protocol version this server speaks.",
                      headers={"Tus-Version": TUS_VERSION})
    _svc().sweeper.start()


@bp.after_request
def _tus_response(resp: Response) -> Response:
    if request.method != "OPTIONS":
        resp.headers["Tus-Resumable"] = TUS_VERSION
    return resp


@bp.errorhandler(BlobError)
def _blob_failed(exc: BlobError) -> Response:
    log.warning("blob store failed: %s", exc)
    return Problem(503, "Service Unavailable", "The blob store failed; retry later.",
                   headers={"Retry-After": str(BLOB_RETRY_AFTER)}).response()


def _options() -> Response:
    return Response(status=204, headers={
        "Tus-Resumable": TUS_VERSION, "Tus-Version": TUS_VERSION, "Tus-Extension": TUS_EXTENSIONS,
        "Tus-Max-Size": str(_svc().config.max_upload_bytes),
    })


def _header_int(name: str, status: int = 400) -> int:
    raw = request.headers.get(name, "")
    if not raw.isdigit() or not raw.isascii():
        raise Problem(status, "Bad Request", f"{name} must be a whole number of bytes.")
    return int(raw)


def _metadata() -> dict[str, str]:
    """``Upload-Metadata``: comma-separated ``key base64(value)`` pairs."""
    pairs: dict[str, str] = {}
    for item in request.headers.get("Upload-Metadata", "").split(","):
        if not item.strip():
            continue
        key, _, encoded = item.strip().partition(" ")
        try:
            pairs[key] = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise Problem(400, "Bad Request",
                          f"Upload-Metadata value of {key!r} is not base64 of UTF-8 text.") from None
    return pairs


def _invalid(field: str, message: str) -> Problem:
    return Problem(422, "Unprocessable Content", message, errors={field: [message]})


@bp.route("/uploads", methods=["POST", "OPTIONS"], provide_automatic_options=False)
def create() -> Response:
    if request.method == "OPTIONS":
        return _options()
    svc = _svc()
    if "Upload-Defer-Length" in request.headers:
        raise Problem(400, "Bad Request", "Send Upload-Length; a deferred length is not supported.")
    length = _header_int("Upload-Length")
    if length > svc.config.max_upload_bytes:
        raise Problem(413, "Payload Too Large",
                      f"Upload-Length is over this server's {svc.config.max_upload_bytes} bytes.")
    meta = _metadata()
    fmt = meta.get("format", "")
    if fmt not in FORMATS:
        raise _invalid("format", "Upload-Metadata must give format: npy or f32.")
    dimension = rows = 0
    if fmt == "f32":
        raw = meta.get("dimension", "")
        dimension = int(raw) if raw.isdigit() and raw.isascii() else 0
        if not 1 <= dimension <= svc.config.max_dimension:
            raise _invalid("dimension", f"f32 needs a dimension from 1 to {svc.config.max_dimension}.")
        rows, rest = divmod(length, 4 * dimension)
        if rows < 1 or rest:
            raise _invalid("Upload-Length", f"An f32 upload is a whole number (at least one) of "
                                             f"rows of {4 * dimension} bytes.")
    elif length <= PREAMBLE_BYTES:
        raise _invalid("Upload-Length", "Too short for a .npy file.")
    upload = svc.store.create(tenant(), length, fmt, dimension=dimension, rows=rows)
    log.info("upload created", extra={"upload_id": upload.id, "bytes": length, "format": fmt})
    return Response(status=201, headers={"Location": f"/uploads/{upload.id}"})


@bp.route("/uploads/<upload_id>", methods=["HEAD", "GET", "PATCH", "DELETE", "OPTIONS"],
          provide_automatic_options=False)
def resource(upload_id: str) -> Response:
    if request.method == "OPTIONS":
        return _options()
    svc = _svc()
    upload = svc.store.get(upload_id, tenant())
    if upload is None:
        raise not_found("upload")
    upload = _finish_if_whole(svc, upload)
    if request.method == "PATCH":
        return _patch(svc, upload)
    if request.method == "DELETE":
        return _delete(svc, upload)
    if request.method == "HEAD":
        return Response(status=200, headers={
            "Upload-Offset": str(upload.offset), "Upload-Length": str(upload.length),
            "Cache-Control": "no-store"})
    return reply(_view(upload))


def _view(upload: Upload) -> dict[str, object]:
    return {
        "id": upload.id, "format": upload.format, "length": upload.length,
        "offset": upload.offset, "state": upload.state,
        "rows": upload.rows or None, "dimension": upload.dimension or None,
        "dtype": upload.dtype if upload.rows else None,
        "created_at": isoformat(upload.created),
    }


def _finish_if_whole(svc: UploadServices, upload: Upload) -> Upload:
    """Seal an upload whose last byte is recorded but that is not yet complete.

    The last PATCH seals it; this finishes the job if that PATCH was cut off
    between recording its offset and sealing the blob.
    """
    if upload.complete or upload.offset != upload.length:
        return upload
    svc.blobs.seal(upload.blob_key, upload.length)
    svc.store.mark_complete(upload.id)
    return svc.store.get(upload.id) or upload


def _delete(svc: UploadServices, upload: Upload) -> Response:
    if upload.task:
        raise Problem(409, "Conflict", "A task reads this upload; it goes when the task does.")
    token = svc.store.lock(upload.id)
    if token is None:
        raise _locked()
    try:
        svc.blobs.delete(upload.blob_key)
        svc.store.forget(upload.id)
    finally:
        svc.store.unlock(upload.id, token)
    log.info("upload deleted", extra={"upload_id": upload.id})
    return Response(status=204)


def _locked() -> Problem:
    return Problem(423, "Locked", "Another request is writing this upload; retry when it ends.",
                   headers={"Retry-After": "1"})


def _conflict(upload: Upload, offset: int) -> Problem:
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

    def read(self, size: int) -> bytes:
        if self.left <= 0 or self.disconnected:
            return b""
        try:
            data = self.stream.read(min(size, self.left))
        except (ClientDisconnected, OSError):
            data = b""
        if not data:
            self.disconnected = True
        self.left -= len(data)
        return data


def _pieces(svc: UploadServices, upload: Upload, token: str, first: bytes, body: _Body,
            lost: list[bool]) -> Iterator[bytes]:
    """``first``, then the body, renewing the lock; stops if the lock is lost."""
    renewed = time.monotonic()
    if first:
        yield first
    while True:
        data = body.read(READ_CHUNK)
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
        raise _invalid("npy", str(exc)) from None
    return bytes(head), {"rows": layout.rows, "dimension": layout.dimension,
                         "dtype": layout.dtype, "data_offset": layout.data_offset}


def _repair(svc: UploadServices, upload: Upload, token: str) -> Problem:
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


def _patch(svc: UploadServices, upload: Upload) -> Response:
    if request.mimetype != OFFSET_TYPE:
        raise Problem(415, "Unsupported Media Type", f"Send the bytes as Content-Type: {OFFSET_TYPE}.")
    offset = _header_int("Upload-Offset")
    if offset != upload.offset:
        raise _conflict(upload, offset)
    length = request.content_length
    if length is None:
        raise Problem(411, "Length Required", "Send Content-Length with each PATCH.")
    remaining = upload.length - upload.offset
    if length > remaining:
        raise Problem(413, "Payload Too Large",
                      f"The body is {length} bytes but the upload lacks only {remaining}.")
    token = svc.store.lock(upload.id)
    if token is None:
        raise _locked()
    try:
        # Read again under the lock: a PATCH that held it may have moved the offset.
        current = svc.store.get(upload.id)
        if current is None:
            raise not_found("upload")
        if current.offset != offset:
            raise _conflict(current, offset)
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
            raise _repair(svc, current, token) from None
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
