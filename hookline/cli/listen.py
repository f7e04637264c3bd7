"""``hookline listen --forward-to URL``: a webhook relay for local development.

It starts an HTTP receiver on 127.0.0.1, registers it as a callback, and for
every webhook that arrives: verifies the signature with the callback's
secret, prints the event, forwards the same body and ``webhook-*`` headers to
URL, and answers the platform with the class of the forward's status (so a
failing local app gets retried). Ctrl-C or SIGTERM deletes the callback.

The platform must be allowed to deliver to 127.0.0.1
(``HOOKLINE_CALLBACK_ALLOW=127.0.0.0/8``, which ``dev.py run`` sets).
"""
from __future__ import annotations

import datetime
import json
import signal
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

import click
import requests

from callbacks import SignatureError, verify
from hookline.cli.context import client
from hookline.cli.output import json_option, wants_json

#: Headers passed on to the forward target as they arrived.
FORWARDED_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature", "content-type", "user-agent")
#: Seconds a forward may take: under the platform's own attempt timeout (15 s by default).
FORWARD_TIMEOUT = 10.0
#: Largest webhook body read, in bytes.
MAX_BODY_BYTES = 16 * 1024 * 1024


def answer_for(status: int | None) -> int:
    """The status the platform gets: the forward's class (200, 400, 500); 502 if it got none."""
    if status is None or not 200 <= status < 600 or 300 <= status < 400:
        return 502
    return status // 100 * 100


class Relay:
    """The receiver: verify, print, forward, answer."""

    def __init__(self, forward_to: str, secret: str, emit: Callable[[dict[str, Any]], None]) -> None:
        self.forward_to = forward_to
        self.secret = secret
        self.emit = emit
        self.session = requests.Session()
        self.session.trust_env = False
        self.lock = threading.Lock()

    def handle(self, body: bytes, headers: dict[str, str]) -> int:
        """One webhook: the status to answer the platform with."""
        now = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        line: dict[str, Any] = {"at": now, "webhook_id": headers.get("webhook-id")}
        try:
            event = verify(body, headers, self.secret)
        except SignatureError as exc:
            self.emit({**line, "error": f"signature rejected: {exc}", "answered": 400})
            return 400
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        line.update(type=event.get("type"), task_id=data.get("task_id"), status=data.get("status"))
        forward = {k: headers[k] for k in FORWARDED_HEADERS if k in headers}
        try:
            resp = self.session.post(self.forward_to, data=body, headers=forward, timeout=FORWARD_TIMEOUT,
                                     allow_redirects=False)
            line["forward_status"] = resp.status_code
            resp.close()
        except requests.RequestException as exc:
            line["forward_status"] = None
            line["error"] = f"forward failed: {type(exc).__name__}"
        line["answered"] = answer_for(line["forward_status"])
        self.emit(line)
        return int(line["answered"])

    def server(self, host: str, port: int) -> ThreadingHTTPServer:
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    status = 413
                    self.close_connection = True
                else:
                    body = self.rfile.read(length)
                    status = relay.handle(body, {k.lower(): v for k, v in self.headers.items()})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        server = ThreadingHTTPServer((host, port), Handler)
        server.daemon_threads = True
        return server


class Stop(BaseException):
    """SIGTERM arrived: leave as Ctrl-C does, removing the callback.

    Not an ``Exception``, for the same reason as ``KeyboardInterrupt``: the
    signal can arrive while the server takes a request, and ``socketserver``
    reports any ``Exception`` raised there and goes on serving.
    """


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise Stop()


@click.command()
@click.option("--forward-to", required=True,
              help="Where to forward each webhook (e.g. http://localhost:5000/hook).")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="The relay's port on 127.0.0.1 (0: any free port).")
@json_option
@click.pass_context
def listen(ctx: click.Context, forward_to: str, port: int) -> None:
    """Relay webhooks to a local app while developing; Ctrl-C stops and unregisters.

    Submit tasks with the callback id it prints (hookline submit FILE --callback ID).
    """
    api = client(ctx)
    as_json = wants_json(ctx)
    out_lock = threading.Lock()

    def emit(line: dict[str, Any]) -> None:
        with out_lock:
            if as_json:
                click.echo(json.dumps(line))
            elif "type" in line:
                click.echo(f"{line['at']}  {line['type']}  {line['task_id']}  -> {line['forward_status']} "
                           f"{forward_to}" + (f"  ({line['error']})" if line.get("error") else ""))
            else:
                click.echo(f"{line['at']}  {line.get('error')}")

    relay = Relay(forward_to, "", emit)
    server = relay.server("127.0.0.1", port)
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    callback = None
    previous = signal.signal(signal.SIGTERM, _raise_stop)
    try:
        callback = api.callbacks.create(url, description=f"hookline listen -> {forward_to}")
        relay.secret = callback["secret"]
        ready = {"event": "ready", "callback_id": callback["id"], "url": url, "forward_to": forward_to,
                 "secret": callback["secret"]}
        if as_json:
            emit(ready)
        else:
            emit_ready(ready)
        server.serve_forever(poll_interval=0.2)
    except (KeyboardInterrupt, Stop):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
        if callback is not None:
            api.callbacks.delete(callback["id"])
            if not as_json:
                click.echo(f"Removed callback {callback['id']}.", err=True)
            else:
                emit({"event": "stopped", "callback_id": callback["id"]})


def emit_ready(ready: dict[str, Any]) -> None:
    click.echo(f"Relaying webhooks for callback {ready['callback_id']} to {ready['forward_to']}.")
    click.echo(f"Submit with: hookline submit FILE --callback {ready['callback_id']}")
    click.echo(f"Signing secret (to verify in your app): {ready['secret']}")
    click.echo("Ctrl-C stops and removes the callback.", err=True)


COMMANDS = (listen,)
