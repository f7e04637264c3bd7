"""Resumable uploads, tus 1.0 core, creation and termination (SPEC §9): ``Client.uploads``."""
from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any, cast
from urllib.parse import quote

from hookline.client.errors import Conflict, Locked, TransportError
from hookline.client.models import UploadState
from hookline.client.transport import Transport

TUS_VERSION = "1.0.0"
#: Bytes per PATCH: under the API's default 10 MiB body limit, with room to spare.
DEFAULT_CHUNK_BYTES = 8 * 1024 * 1024
#: Times ``upload()`` picks up again after a broken connection or a wrong offset.
MAX_RESUMES = 10
#: Seconds before the first resume, doubled for each one after it (at most 30 s).
RESUME_BACKOFF = 0.5


def _path(upload_id: str) -> str:
    return "/uploads/" + quote(upload_id, safe="")


def _metadata(pairs: dict[str, str]) -> str:
    """``Upload-Metadata``: ``key base64(value)`` pairs, comma-separated."""
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode('ascii')}" for k, v in pairs.items())


class Uploads:
    """Create an upload, send its bytes in chunks, ask how far it got, delete it."""

    def __init__(self, transport: Transport) -> None:
        self._http = transport

    def create(self, length: int, *, format: str = "npy", dimension: int | None = None) -> str:
        """``POST /uploads``: a new, empty upload of ``length`` bytes; its id.

        ``format`` is ``npy`` or ``f32`` (raw little-endian float32, which needs ``dimension``).

        Raises:
            PayloadTooLarge: ``length`` is over the server's upload limit.
        """
        meta = {"format": format}
        if dimension is not None:
            meta["dimension"] = str(dimension)
        resp = self._http.request("POST", "/uploads", headers={
            "Tus-Resumable": TUS_VERSION, "Upload-Length": str(length), "Upload-Metadata": _metadata(meta),
        })
        return resp.headers["Location"].rstrip("/").rsplit("/", 1)[-1]

    def patch(self, upload_id: str, offset: int, data: bytes) -> int:
        """``PATCH /uploads/{id}``: append ``data`` at ``offset``; the new offset.

        Raises:
            Conflict: ``offset`` is not where the upload stands.
        """
        resp = self._http.request("PATCH", _path(upload_id), data=data, headers={
            "Tus-Resumable": TUS_VERSION, "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
        })
        return int(resp.headers["Upload-Offset"])

    def head(self, upload_id: str) -> UploadState:
        """``HEAD /uploads/{id}``: bytes received and bytes expected."""
        resp = self._http.request("HEAD", _path(upload_id), headers={"Tus-Resumable": TUS_VERSION})
        return {"offset": int(resp.headers["Upload-Offset"]), "length": int(resp.headers["Upload-Length"])}

    def get(self, upload_id: str) -> dict[str, Any]:
        """``GET /uploads/{id}``: the upload as JSON (offset, length, state, rows, dimension)."""
        return cast(dict[str, Any], self._http.json("GET", _path(upload_id)))

    def delete(self, upload_id: str) -> None:
        """``DELETE /uploads/{id}``."""
        self._http.request("DELETE", _path(upload_id), headers={"Tus-Resumable": TUS_VERSION})

    def upload(self, path: str | os.PathLike[str], *, format: str | None = None,
               dimension: int | None = None, upload_id: str | None = None,
               chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> str:
        """Send a file, resuming after a broken connection; the upload's id.

        ``format`` defaults from the suffix (``.npy``, else ``f32``). Pass the
        ``upload_id`` of an earlier, interrupted call to carry it on. After a
        broken connection, a ``409`` (wrong offset) or a ``423`` (a stalled
        earlier PATCH still holds the upload) the upload's offset is asked for
        with ``HEAD`` and sending continues from there, up to ``MAX_RESUMES`` times.

        Raises:
            TransportError, Conflict, Locked: still failing after the resumes.
        """
        file = Path(path)
        length = file.stat().st_size
        if upload_id is None:
            fmt = format or ("npy" if file.suffix.lower() == ".npy" else "f32")
            upload_id = self.create(length, format=fmt, dimension=dimension)
            offset = 0
        else:
            offset = self.head(upload_id)["offset"]
        resumes = 0
        with file.open("rb") as stream:
            while offset < length:
                stream.seek(offset)
                chunk = stream.read(chunk_bytes)
                try:
                    offset = self.patch(upload_id, offset, chunk)
                except (TransportError, Conflict, Locked):
                    resumes += 1
                    if resumes > MAX_RESUMES:
                        raise
                    # The server may still be writing the broken chunk; its offset settles soon.
                    self._http.sleep(min(30.0, RESUME_BACKOFF * 2 ** (resumes - 1)))
                    offset = self.head(upload_id)["offset"]
        return upload_id
