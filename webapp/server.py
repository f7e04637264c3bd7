"""The gunicorn worker class of the ``web`` process (``deploy/gunicorn.conf.py``).

gunicorn's threaded worker, with one change for ``reuse_port``: each worker
listens on a socket of its own, and the kernel keeps sending new connections
to a socket for as long as it is open. A worker that stops alone (a ``HUP``
reload, ``TTOU``) would keep its socket open while it finishes its requests
and lingers for its kept-alive clients (about two seconds), and then reset
every connection that had queued on it meanwhile. This worker takes what
has already queued and closes its sockets as soon as it stops accepting, so
new connections go to its siblings from then on. (Only a connection that
arrives in the instant between the two can still be reset; Linux 5.14 and
newer hand it to a sibling with ``net.ipv4.tcp_migrate_req=1``.)

It gives the application a large body's socket to read into its own buffer
(``webapp.body_into``: tus PATCHes of 64 MiB at about twice the rate).

It also answers the requests gunicorn refuses before the application sees
them (a bad request line or headers, bad framing, a request line or headers
over gunicorn's limits) with a problem document, as the application answers
its own errors, instead of gunicorn's HTML page. gunicorn picks the status
(400, 414, 431, 501, ...); this worker only changes the body.
"""
from __future__ import annotations

import select
from typing import Any

from gunicorn import util
from gunicorn.workers.gthread import ThreadWorker as GThreadWorker

from webapp.body_into import DirectBody
from webapp.problems import Problem


class _Answer:
    """Stands in for the client's socket while gunicorn writes its error page.

    gunicorn's ``handle_error`` decides the status, logs and writes the
    access line; the page it writes is kept here instead of being sent.
    """

    def __init__(self) -> None:
        self.data = b""

    def gettimeout(self) -> float:
        return 0.0

    def sendall(self, data: bytes) -> None:
        self.data += data

    def status(self) -> tuple[int, str]:
        """The status code and reason gunicorn chose (500 if it wrote nothing)."""
        line = self.data.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
        if len(line) == 3 and line[1].isdigit():
            return int(line[1]), line[2]
        return 500, "Internal Server Error"


class ThreadWorker(GThreadWorker):
    def load_wsgi(self) -> None:
        super().load_wsgi()
        app: Any = self.wsgi  # type: ignore[has-type]

        def direct_body(environ: dict[str, Any], start_response: Any) -> Any:
            length = environ.get("CONTENT_LENGTH")
            environ["wsgi.input"] = DirectBody.wrap(
                environ["wsgi.input"], environ["gunicorn.socket"],
                int(length) if length and length.isdigit() else None)
            return app(environ, start_response)

        self.wsgi = direct_body

    def set_accept_enabled(self, enabled: bool) -> None:
        super().set_accept_enabled(enabled)
        if enabled or self.alive or not self.cfg.reuse_port:
            return
        for listener in self.sockets:
            # Served like any other, with "Connection: close" as the worker stops.
            ready = select.poll()  # not select(): any descriptor number
            ready.register(listener, select.POLLIN)
            try:
                while ready.poll(0):
                    self.accept(listener)
            except OSError as exc:  # out of file descriptors, say: stop taking
                self.log.warning("Connections left on a closing socket: %s", exc)
            listener.close()

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        answer = _Answer()
        super().handle_error(req, answer, addr, exc)
        status, reason = answer.status()
        body = Problem(status, reason, self._detail(status, reason)).body()
        head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
                "Content-Type: application/problem+json\r\n"
                "X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        try:
            util.write_nonblock(client, head.encode("latin-1") + body)
        except Exception:  # the client is gone: nothing to tell it
            self.log.debug("Failed to send error message.")

    def _detail(self, status: int, reason: str) -> str:
        # Fixed sentences: gunicorn's own message quotes what the client sent.
        cfg = self.cfg
        if status == 414:
            return (f"The request line is longer than this server accepts "
                    f"({cfg.limit_request_line} bytes).")
        if status == 431:
            return (f"The request's headers are larger than this server accepts (at most "
                    f"{cfg.limit_request_fields} headers of {cfg.limit_request_field_size} bytes).")
        if status == 400:
            return "The request could not be read as HTTP: its request line, headers or framing."
        if status == 501:
            return "The request uses a transfer coding this server does not implement."
        if status == 500:
            return "An unexpected error occurred."
        return reason + "."
