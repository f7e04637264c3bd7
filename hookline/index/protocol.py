"""How a web process asks the index process for candidates, over a Unix socket.

A frame is ``<I header bytes> <I payload bytes>``, a JSON header, then the
payload. A search sends ``{"op": "search", "tenant", "name", "dim", "seq",
"count"}`` and the query rows as float32; the answer is ``{"ok": true,
"behind", "width"}`` and the candidates' keys as int64 rows of ``width``
(-1 pads; ``count`` per part of the index), or ``{"ok": false, "error"}``. ``behind`` is ``null`` when the index has applied change
``seq``; else the stream position it has reached, after which the caller
must look at the changes itself.
"""
from __future__ import annotations

import socket
import struct
import threading
from typing import Any

import numpy as np
import orjson

_FRAME = struct.Struct("<II")
#: Seconds a web process waits for the index process's answer.
CLIENT_TIMEOUT = 10.0


class IndexUnavailable(Exception):
    """The index process cannot answer now (down, starting, or behind)."""


def _read_exact(conn: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = conn.recv(min(left, 1 << 20))
        if not chunk:
            raise ConnectionError("connection closed mid-frame")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(conn: socket.socket) -> tuple[dict[str, Any], bytes] | None:
    """The next frame, or ``None`` when the peer closed between frames."""
    head = conn.recv(_FRAME.size, socket.MSG_WAITALL)
    if not head:
        return None
    if len(head) < _FRAME.size:
        raise ConnectionError("connection closed mid-frame")
    header_len, payload_len = _FRAME.unpack(head)
    header = orjson.loads(_read_exact(conn, header_len))
    return header, _read_exact(conn, payload_len)


def write_frame(conn: socket.socket, header: dict[str, Any], payload: bytes = b"") -> None:
    raw = orjson.dumps(header)
    conn.sendall(_FRAME.pack(len(raw), len(payload)) + raw + payload)


class IndexClient:
    """One connection per thread to the index process at ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()

    def _connection(self) -> socket.socket:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.settimeout(CLIENT_TIMEOUT)
            try:
                conn.connect(self.path)
            except OSError:
                conn.close()
                raise
            self._local.conn = conn
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local.conn = None

    def applied(self) -> int:
        """The number of the last change the index has applied (``hl:vseq``).

        Raises:
            IndexUnavailable: the index process is down or still loading.
        """
        try:
            conn = self._connection()
            write_frame(conn, {"op": "ping"})
            answer = read_frame(conn)
        except OSError as exc:
            self._drop()
            raise IndexUnavailable(f"index process unreachable: {type(exc).__name__}") from None
        if answer is None or not answer[0].get("ready"):
            self._drop()
            raise IndexUnavailable("the index is loading")
        return int(answer[0]["applied"])

    def search(self, tenant: str, name: str, queries: np.ndarray, count: int,
               seq: int) -> tuple[np.ndarray, str | None]:
        """Candidate keys (int64, ``(rows, count or more)``, -1 pads), and where the index is
        if it has not applied change ``seq`` within its wait (else ``None``).

        Raises:
            IndexUnavailable: the index process is down or did not catch up in time.
        """
        header = {"op": "search", "tenant": tenant, "name": name, "dim": int(queries.shape[1]),
                  "seq": seq, "count": count}
        payload = np.ascontiguousarray(queries, dtype=np.float32).tobytes()
        answer: tuple[dict[str, Any], bytes] | None = None
        for attempt in (1, 2):
            try:
                conn = self._connection()
                write_frame(conn, header, payload)
                answer = read_frame(conn)
                if answer is None:
                    raise ConnectionError("index process closed the connection")
                break
            except OSError as exc:
                # A connection left from before an index restart fails once.
                self._drop()
                if attempt == 2:
                    raise IndexUnavailable(f"index process unreachable: {type(exc).__name__}") from None
        assert answer is not None
        reply, body = answer
        if not reply.get("ok"):
            raise IndexUnavailable(str(reply.get("error", "index error")))
        keys = np.frombuffer(body, dtype=np.int64).reshape(len(queries), int(reply.get("width", count)))
        return keys, reply.get("behind")
