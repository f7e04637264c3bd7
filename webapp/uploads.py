"""Resumable uploads on tus 1.0 (core, creation, termination): ``/uploads``.

Creation, discovery (OPTIONS), HEAD and the record as JSON live here; the
writes (PATCH, DELETE) in ``webapp.upload_writes``. The body of a PATCH is
bounded by what the upload still lacks, not by ``HOOKLINE_MAX_BODY_BYTES``
(which is for JSON bodies).
"""
from __future__ import annotations

import base64
import binascii
import logging

import redis
from flask import Blueprint, Flask, Response, current_app, request

from hookline.blobs import BlobConflict, BlobError, open_blob_store
from hookline.config import Config
from hookline.ids import isoformat
from hookline.npy import PREAMBLE_BYTES
from hookline.upload_retention import RetentionSweeper
from hookline.uploads import FORMATS, Upload, UploadStore
from webapp.auth import authenticate, tenant
from webapp.jsonio import reply
from webapp.problems import Problem, not_found, unprocessable
from webapp.upload_writes import UploadServices, delete, header_int, invalid, patch, repair

log = logging.getLogger("hookline.uploads")

bp = Blueprint("uploads", __name__)

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination"
#: Seconds a client should wait before retrying when the blob store fails.
BLOB_RETRY_AFTER = 5


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
            message = f"The value of {key[:64]!r} is not base64 of UTF-8 text."
            raise unprocessable(f"Upload-Metadata: {message}",
                                errors={"Upload-Metadata": [message]}) from None
    return pairs


@bp.route("/uploads", methods=["POST", "OPTIONS"], provide_automatic_options=False)
def create() -> Response:
    if request.method == "OPTIONS":
        return _options()
    svc = _svc()
    if "Upload-Defer-Length" in request.headers:
        raise Problem(400, "Bad Request", "Send Upload-Length; a deferred length is not supported.")
    length = header_int("Upload-Length")
    # What the request says it is comes first: a malformed request is a 4xx
    # for that, whatever its length.
    meta = _metadata()
    fmt = meta.get("format", "")
    if fmt not in FORMATS:
        raise invalid("format", "Upload-Metadata must give format: npy, f32 or ids.")
    if length > svc.config.max_upload_bytes:
        raise Problem(413, "Payload Too Large",
                      f"Upload-Length is over this server's {svc.config.max_upload_bytes} bytes.")
    dimension = rows = 0
    if fmt == "f32":
        raw = meta.get("dimension", "")
        dimension = int(raw) if raw.isdigit() and raw.isascii() else 0
        if not 1 <= dimension <= svc.config.max_dimension:
            raise invalid("dimension", f"f32 needs a dimension from 1 to {svc.config.max_dimension}.")
        rows, rest = divmod(length, 4 * dimension)
        if rows < 1 or rest:
            raise invalid("Upload-Length", f"An f32 upload is a whole number (at least one) of "
                                             f"rows of {4 * dimension} bytes.")
    elif fmt == "npy" and length <= PREAMBLE_BYTES:
        raise invalid("Upload-Length", "Too short for a .npy file.")
    elif length < 1:
        raise invalid("Upload-Length", "An ids upload holds at least one id.")
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
        return patch(svc, upload)
    if request.method == "DELETE":
        return delete(svc, upload)
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
    between recording its offset and sealing the blob. If the blob turns out
    shorter than its record (bytes lost with the machine), the offset is
    taken back to what is stored, and the client resumes from there.
    """
    if upload.complete or upload.offset != upload.length:
        return upload
    token = svc.store.lock(upload.id)
    if token is None:
        return upload  # a writer holds it, and will seal it
    try:
        current = svc.store.get(upload.id)
        if current is None or current.complete or current.offset != current.length:
            return current or upload
        try:
            svc.blobs.seal(current.blob_key, current.length)
        except BlobConflict:
            repair(svc, current, token)
        else:
            svc.store.mark_complete(current.id)
    finally:
        svc.store.unlock(upload.id, token)
    return svc.store.get(upload.id) or upload


