"""Retry policy, one delivery attempt against a real HTTP server, and the registry in real Redis."""
from __future__ import annotations

import random
import threading
import time

import pytest
import redis as redis_lib

from callbacks import (
    CallbackRegistry,
    Deliverer,
    RetryPolicy,
    UrlGuard,
    Verdict,
    classify,
    parse_retry_after,
    status_class,
)
from tests.procs import Receiver


@pytest.mark.parametrize("status,headers,verdict", [
    (200, {}, Verdict.DELIVERED), (204, {}, Verdict.DELIVERED), (None, {}, Verdict.RETRY),
    (302, {}, Verdict.RETRY), (408, {}, Verdict.RETRY), (429, {}, Verdict.RETRY),
    (500, {}, Verdict.RETRY), (503, {}, Verdict.RETRY), (400, {}, Verdict.FINAL),
    (404, {}, Verdict.FINAL), (410, {}, Verdict.DISABLE),
    (200, {"Webhook-Delivery": "disable"}, Verdict.DISABLE),
    (500, {"webhook-delivery": "abort-message"}, Verdict.ABORT),
])
def test_classify(status: int | None, headers: dict, verdict: Verdict) -> None:
    assert classify(status, headers) is verdict


def test_status_classes() -> None:
    assert [status_class(s) for s in (200, 302, 404, 503, None)] == ["2xx", "3xx", "4xx", "5xx", "error"]


def test_schedule_jitter_floor_cap_and_exhaustion() -> None:
    policy = RetryPolicy([5, 300, 1800], jitter=0.2, retry_after_cap=600)
    rng = random.Random(7)
    assert policy.max_attempts == 4
    delays = [policy.delay_for(1, rng=rng) for _ in range(200)]
    assert all(4.0 <= d <= 6.0 for d in delays) and len(set(delays)) > 100
    assert 240 <= policy.delay_for(2, rng=rng) <= 360
    assert policy.delay_for(1, retry_after=60, rng=rng) == 60          # a floor
    assert policy.delay_for(1, retry_after=10**6, rng=rng) == 600      # up to the cap
    assert 1440 <= policy.delay_for(3, retry_after=1, rng=rng) <= 2160  # never below the schedule
    assert policy.delay_for(4) is None


def test_parse_retry_after() -> None:
    assert parse_retry_after("120") == 120
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


@pytest.fixture
def deliverer() -> Deliverer:
    return Deliverer(UrlGuard(["127.0.0.0/8"]), connect_timeout=1, timeout=1, max_read=100)


def test_attempt_success_reuses_the_connection(deliverer: Deliverer, receiver: Receiver) -> None:
    for _ in range(3):
        result = deliverer.send(receiver.url("/a"), b'{"x": 1}', {"content-type": "application/json"})
        assert result.status_code == 204 and result.error is None
    hooks = receiver.received("/a")
    assert [h["body"] for h in hooks] == [b'{"x": 1}'] * 3
    assert hooks[0]["headers"]["host"] == f"127.0.0.1:{receiver.port}"
    # Three requests, one connection: the receiver saw them all from one port
    assert len({h["peer"] for h in hooks}) == 1


def test_attempt_does_not_follow_redirects(deliverer: Deliverer, receiver: Receiver) -> None:
    receiver.script["/r"] = lambda n: (307, {"Location": receiver.url("/target")}, 0.0)
    result = deliverer.send(receiver.url("/r"), b"{}", {})
    assert result.status_code == 307
    assert receiver.received("/target") == []


def test_attempt_times_out(deliverer: Deliverer, receiver: Receiver) -> None:
    receiver.script["/slow"] = lambda n: (200, {}, 2.0)
    started = time.monotonic()
    result = deliverer.send(receiver.url("/slow"), b"{}", {})
    assert result.status_code is None and "timeout" in (result.error or "")
    assert time.monotonic() - started < 1.8


def test_attempt_reads_only_an_excerpt() -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Big(BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(500)
            self.send_header("Content-Length", str(10_000_000))
            self.send_header("Retry-After", "7")
            self.end_headers()
            try:
                self.wfile.write(b"y" * 10_000_000)
            except OSError:
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Big)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        d = Deliverer(UrlGuard(["127.0.0.0/8"]), timeout=5, max_read=100)
        result = d.send(f"http://127.0.0.1:{server.server_address[1]}/", b"{}", {})
        assert result.status_code == 500
        assert result.response_excerpt == "y" * 100
        assert result.headers == {"retry-after": "7"}
        d.close()
    finally:
        server.shutdown()
        server.server_close()


def test_refused_url_makes_no_connection(receiver: Receiver) -> None:
    result = Deliverer(UrlGuard()).send(receiver.url("/n"), b"{}", {})
    assert result.refused and result.status_code is None and result.error.startswith("refused:")
    assert receiver.received() == []


def test_connection_refused_is_an_error_not_an_exception(deliverer: Deliverer) -> None:
    from tests.procs import free_port

    result = deliverer.send(f"http://127.0.0.1:{free_port()}/", b"{}", {})
    assert result.status_code is None and result.error == "connection refused"


def test_registry_lifecycle_and_isolation(redis: redis_lib.Redis) -> None:
    now = [1000.0]
    reg = CallbackRegistry(redis, grace=100, clock=lambda: now[0])
    record, secret = reg.create("acme", "https://a.example/h", "orders")
    assert record["id"].startswith("cb_") and secret.startswith("whsec_")
    assert reg.get("umbrella", record["id"]) is None
    assert reg.find_by_url("acme", "https://a.example/h") == record["id"]
    assert reg.find_by_url("umbrella", "https://a.example/h") is None
    new = reg.rotate_secret("acme", record["id"])
    assert reg.get_for_delivery(record["id"])["secrets"] == [new, secret]
    now[0] += 101
    assert reg.get_for_delivery(record["id"])["secrets"] == [new]
    assert not reg.record_failure(record["id"], disable_after=50)
    now[0] += 60
    assert reg.record_failure(record["id"], disable_after=50)
    shown = reg.get("acme", record["id"])
    assert shown["disabled"] and shown["disabled_reason"] == "failing"
    assert not reg.disable(record["id"], "gone")  # already disabled: counted once
    assert reg.update("acme", record["id"], disabled=False)["disabled"] is False
    items, cursor = reg.list("acme", 10, None)
    assert [i["id"] for i in items] == [record["id"]] and cursor is None
    assert not reg.delete("umbrella", record["id"])
    assert reg.delete("acme", record["id"])
    assert reg.find_by_url("acme", "https://a.example/h") is None
