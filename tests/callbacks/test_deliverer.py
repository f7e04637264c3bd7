"""One delivery attempt, against a real HTTP server on 127.0.0.1."""
from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Receiver, answer_with

from callbacks import AttemptResult, Deliverer, UrlGuard
from tests.procs import free_port

BODY = b'{"type": "task.succeeded", "data": {"task_id": "t1"}}'
HEADERS = {"content-type": "application/json", "webhook-id": "msg_1",
           "webhook-timestamp": "1700000000", "webhook-signature": "v1,abc"}


def resolver_for(table: dict[str, str]):  # type: ignore[no-untyped-def]
    def resolve(host: str, port: int, *args: object, **kwargs: object) -> list:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (table[host], port))]
    return resolve


@pytest.fixture
def deliverer() -> Iterator[Deliverer]:
    with Deliverer(UrlGuard(["127.0.0.0/8"]), connect_timeout=2, timeout=5, max_read=100) as d:
        yield d


def test_a_2xx_is_recorded_with_what_was_sent(deliverer: Deliverer, http_receiver: Receiver) -> None:
    http_receiver.routes["/ok"] = answer_with(200, b"thanks", {"Retry-After": "3", "X-Other": "y"})
    result = deliverer.send(http_receiver.url("/ok"), BODY, HEADERS)
    assert result == AttemptResult(200, None, result.duration_ms, "thanks", {"retry-after": "3"})
    assert not result.refused and 0 < result.duration_ms < 5000
    (seen,) = http_receiver.seen
    assert seen.body == BODY
    assert seen.headers["host"] == f"127.0.0.1:{http_receiver.port}"
    assert seen.headers["user-agent"] == "hookline/0.1.0"
    assert seen.headers["content-length"] == str(len(BODY))
    for name, value in HEADERS.items():
        assert seen.headers[name] == value


def test_a_5xx_is_an_answer_with_its_headers(deliverer: Deliverer, http_receiver: Receiver) -> None:
    http_receiver.routes["/fail"] = answer_with(
        500, b"boom", {"Webhook-Delivery": "abort-message", "Retry-After": "120"})
    result = deliverer.send(http_receiver.url("/fail"), BODY, HEADERS)
    assert (result.status_code, result.error, result.response_excerpt) == (500, None, "boom")
    assert result.headers == {"retry-after": "120", "webhook-delivery": "abort-message"}


def test_redirects_are_recorded_not_followed(deliverer: Deliverer, http_receiver: Receiver) -> None:
    http_receiver.routes["/moved"] = answer_with(302, b"", {"Location": http_receiver.url("/target")})
    http_receiver.routes["/moved-307"] = answer_with(307, b"", {"Location": "/target"})
    assert deliverer.send(http_receiver.url("/moved"), BODY, HEADERS).status_code == 302
    assert deliverer.send(http_receiver.url("/moved-307"), BODY, HEADERS).status_code == 307
    # send() returns only when it is done, so a followed redirect would be seen by now.
    assert http_receiver.paths() == ["/moved", "/moved-307"]


def test_a_receiver_that_never_answers_times_out(http_receiver: Receiver) -> None:
    http_receiver.routes["/hang"] = lambda handler: http_receiver.release.wait(30) and None
    with Deliverer(UrlGuard(["127.0.0.0/8"]), connect_timeout=0.5, timeout=0.5) as d:
        result = d.send(http_receiver.url("/hang"), BODY, HEADERS)
    assert (result.status_code, result.error) == (None, "timeout after 0.5s")
    assert 450 <= result.duration_ms < 3000


def test_the_deadline_covers_an_answer_that_trickles_in(http_receiver: Receiver) -> None:
    # Each header line arrives well within the socket timeout, but the whole
    # answer would never end: the attempt's one deadline stops it.
    def trickle(handler) -> None:  # type: ignore[no-untyped-def]
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
        while not http_receiver.release.wait(0.05):
            try:
                handler.wfile.write(b"X-Slow: 1\r\n")
                handler.wfile.flush()
            except OSError:
                return

    http_receiver.routes["/trickle"] = trickle
    with Deliverer(UrlGuard(["127.0.0.0/8"]), timeout=0.6) as d:
        result = d.send(http_receiver.url("/trickle"), BODY, HEADERS)
    assert (result.status_code, result.error) == (None, "timeout after 0.6s")
    assert result.duration_ms < 3000


def test_only_the_first_bytes_of_an_answer_are_read(deliverer: Deliverer, http_receiver: Receiver) -> None:
    big = b"y" * 5_000_000

    def huge(handler) -> None:  # type: ignore[no-untyped-def]
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(big)))
        handler.end_headers()
        try:
            handler.wfile.write(big)
        except OSError:  # the deliverer hung up after its excerpt
            handler.close_connection = True

    http_receiver.routes["/huge"] = huge
    result = deliverer.send(http_receiver.url("/huge"), BODY, HEADERS)
    assert (result.status_code, result.response_excerpt) == (200, "y" * 100)
    assert deliverer.idle_connections() == 0  # the rest is never read, so the socket is not reused


def test_a_chunked_answer_is_cut_too(deliverer: Deliverer, http_receiver: Receiver) -> None:
    def chunked(handler) -> None:  # type: ignore[no-untyped-def]
        handler.send_response(500)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        for _ in range(50):
            handler.wfile.write(b"40\r\n" + "é".encode() * 32 + b"\r\n")
        handler.wfile.write(b"0\r\n\r\n")

    http_receiver.routes["/chunked"] = chunked
    result = deliverer.send(http_receiver.url("/chunked"), BODY, HEADERS)
    assert result.status_code == 500
    assert result.response_excerpt == "é" * 50  # 100 bytes, decoded


def test_an_excerpt_that_is_not_utf8_is_replaced_not_raised(deliverer: Deliverer,
                                                             http_receiver: Receiver) -> None:
    http_receiver.routes["/latin1"] = answer_with(400, "café".encode("latin-1"))
    result = deliverer.send(http_receiver.url("/latin1"), BODY, HEADERS)
    assert (result.status_code, result.response_excerpt) == (400, "caf\ufffd")


def test_connections_are_kept_alive_and_reused(deliverer: Deliverer, http_receiver: Receiver) -> None:
    for n in range(5):
        result = deliverer.send(http_receiver.url(f"/ok?n={n}"), BODY, HEADERS)
        assert (result.status_code, result.error) == (204, None)
    assert len({seen.client_port for seen in http_receiver.seen}) == 1
    assert http_receiver.connections == 1
    assert deliverer.idle_connections() == 1


def test_a_connection_the_receiver_closed_is_not_a_failure(deliverer: Deliverer,
                                                           http_receiver: Receiver) -> None:
    # The receiver drops the kept-alive connection after answering, without
    # saying so; the next attempt must go out on a fresh one.
    http_receiver.routes["/bye"] = answer_with(200, b"ok", close=True)
    assert deliverer.send(http_receiver.url("/bye"), BODY, HEADERS).status_code == 200
    assert http_receiver.wait_for(lambda: http_receiver.closed_connections == 1)
    result = deliverer.send(http_receiver.url("/again"), BODY, HEADERS)
    assert (result.status_code, result.error) == (204, None)
    assert http_receiver.paths() == ["/bye", "/again"] and http_receiver.connections == 2


def test_a_kept_connection_that_dies_unanswered_is_retried_once_on_a_fresh_one(
        deliverer: Deliverer, http_receiver: Receiver) -> None:
    # The receiver drops the kept-alive connection when the next request
    # arrives on it, without answering (as when its idle timeout strikes just
    # then): the request goes out once more, on a new connection.
    dropped: list[int] = []

    def drop_once(handler) -> None:  # type: ignore[no-untyped-def]
        if not dropped:
            dropped.append(1)
            handler.close_connection = True
            return
        answer_with(204)(handler)

    http_receiver.routes["/drop"] = drop_once
    assert deliverer.send(http_receiver.url("/warm"), BODY, HEADERS).status_code == 204
    result = deliverer.send(http_receiver.url("/drop"), BODY, HEADERS)
    assert (result.status_code, result.error) == (204, None)
    assert http_receiver.paths() == ["/warm", "/drop", "/drop"] and http_receiver.connections == 2


def test_kept_connections_a_restarted_receiver_closed_cost_one_retry_not_a_failure(
        deliverer: Deliverer, http_receiver: Receiver) -> None:
    # Several kept connections, then the receiver closes them all (a restart):
    # the first attempt meets a dead one and goes again on a new connection;
    # the others are dropped with it, so no later attempt meets one.
    barrier = threading.Barrier(4)

    def together(handler) -> None:  # type: ignore[no-untyped-def]
        barrier.wait(timeout=5)
        answer_with(204)(handler)

    http_receiver.routes["/together"] = together
    threads = [threading.Thread(target=deliverer.send,
                                args=(http_receiver.url("/together"), BODY, HEADERS))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert deliverer.idle_connections() == 4
    http_receiver.server.close_open_connections()
    assert http_receiver.wait_for(lambda: http_receiver.closed_connections == 4)
    results = [deliverer.send(http_receiver.url("/after"), BODY, HEADERS) for _ in range(4)]
    assert [(r.status_code, r.error) for r in results] == [(204, None)] * 4
    assert http_receiver.connections == 5  # the four, and one new one for every attempt after
    assert deliverer.idle_connections() == 1


def test_a_fresh_connection_that_dies_unanswered_is_not_retried(deliverer: Deliverer,
                                                                http_receiver: Receiver) -> None:
    def drop(handler) -> None:  # type: ignore[no-untyped-def]
        handler.close_connection = True

    http_receiver.routes["/drop"] = drop
    result = deliverer.send(http_receiver.url("/drop"), BODY, HEADERS)
    assert (result.status_code, result.error) == (None, "connection closed without an answer")
    assert http_receiver.paths() == ["/drop"]


def test_connection_close_answers_are_read_in_full(deliverer: Deliverer, http_receiver: Receiver) -> None:
    http_receiver.routes["/close"] = answer_with(200, b"last words", {"Connection": "close"})
    result = deliverer.send(http_receiver.url("/close"), BODY, HEADERS)
    assert (result.status_code, result.response_excerpt) == (200, "last words")
    assert deliverer.idle_connections() == 0


def test_many_threads_share_one_deliverer(deliverer: Deliverer, http_receiver: Receiver) -> None:
    results: list[AttemptResult] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        for i in range(20):
            result = deliverer.send(http_receiver.url(f"/ok?t={n}&i={i}"), BODY, HEADERS)
            with lock:
                results.append(result)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(results) == 160 and {(r.status_code, r.error) for r in results} == {(204, None)}
    assert len(http_receiver.seen) == 160
    assert http_receiver.connections <= 8 < len(http_receiver.seen)


def test_a_closed_port_is_connection_refused(deliverer: Deliverer) -> None:
    result = deliverer.send(f"http://127.0.0.1:{free_port()}/", BODY, HEADERS)
    assert (result.status_code, result.error, result.refused) == (None, "connection refused", False)


def test_a_refused_url_makes_no_connection(http_receiver: Receiver) -> None:
    with Deliverer(UrlGuard()) as d:  # no allow list: loopback is refused
        result = d.send(http_receiver.url("/ok"), BODY, HEADERS)
    assert result.refused and result.status_code is None
    assert result.error == ("refused: callback URL host 127.0.0.1 is a loopback address; "
                            "only public addresses are allowed")
    assert http_receiver.connections == 0 and http_receiver.seen == []


def test_the_checked_address_is_used_with_the_original_host(http_receiver: Receiver,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # "receiver.test" exists only in the guard's resolver: a second lookup
    # by the system resolver would fail. Proxy settings must play no part.
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, dead_proxy)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    guard = UrlGuard(["receiver.test"], resolver=resolver_for({"receiver.test": "127.0.0.1"}))
    with Deliverer(guard, timeout=5) as d:
        result = d.send(f"http://receiver.test:{http_receiver.port}/named", BODY, HEADERS)
    assert (result.status_code, result.error) == (204, None)
    assert http_receiver.seen[0].headers["host"] == f"receiver.test:{http_receiver.port}"


def test_the_next_checked_address_is_tried_when_one_cannot_connect(http_receiver: Receiver) -> None:
    closed = free_port()

    def resolve(host: str, port: int, *args: object, **kwargs: object) -> list:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    # 127.0.0.2 has no listener on the receiver's port; 127.0.0.1 has.
    with Deliverer(UrlGuard(["receiver.test"], resolver=resolve), timeout=5) as d:
        result = d.send(f"http://receiver.test:{http_receiver.port}/x", BODY, HEADERS)
        assert (result.status_code, result.error) == (204, None)
        result = d.send(f"http://receiver.test:{closed}/x", BODY, HEADERS)
        assert (result.status_code, result.error) == (None, "connection refused")


def test_caller_headers_cannot_override_the_host(deliverer: Deliverer, http_receiver: Receiver) -> None:
    result = deliverer.send(http_receiver.url("/h"), BODY,
                            {**HEADERS, "Host": "evil.example", "User-Agent": "custom/1"})
    assert result.status_code == 204
    seen = http_receiver.seen[0].headers
    assert seen["host"] == f"127.0.0.1:{http_receiver.port}" and seen["user-agent"] == "custom/1"


def test_an_answer_that_is_not_http_is_an_error(deliverer: Deliverer, http_receiver: Receiver) -> None:
    def garbage(handler) -> None:  # type: ignore[no-untyped-def]
        handler.wfile.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        handler.close_connection = True

    def silent(handler) -> None:  # type: ignore[no-untyped-def]
        handler.close_connection = True

    http_receiver.routes["/garbage"] = garbage
    http_receiver.routes["/silent"] = silent
    result = deliverer.send(http_receiver.url("/garbage"), BODY, HEADERS)
    assert (result.status_code, result.error) == (None, "invalid answer (not HTTP)")
    result = deliverer.send(http_receiver.url("/silent"), BODY, HEADERS)
    assert (result.status_code, result.error) == (None, "connection closed without an answer")


def test_an_interim_answer_is_skipped(deliverer: Deliverer, http_receiver: Receiver) -> None:
    def interim(handler) -> None:  # type: ignore[no-untyped-def]
        handler.wfile.write(b"HTTP/1.1 100 Continue\r\nX-Early: 1\r\n\r\n"
                            b"HTTP/1.1 201 Created\r\nRetry-After: 7\r\nContent-Length: 2\r\n\r\nok")

    http_receiver.routes["/interim"] = interim
    result = deliverer.send(http_receiver.url("/interim"), BODY, HEADERS)
    assert (result.status_code, result.error, result.response_excerpt) == (201, None, "ok")
    assert result.headers == {"retry-after": "7"}
    assert deliverer.idle_connections() == 1  # read to its end, so the socket is kept


def test_a_protocol_switch_is_an_answer_not_an_interim(deliverer: Deliverer, http_receiver: Receiver) -> None:
    def switch(handler) -> None:  # type: ignore[no-untyped-def]
        handler.wfile.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                            b"Connection: Upgrade\r\n\r\n")
        handler.close_connection = True

    http_receiver.routes["/switch"] = switch
    result = deliverer.send(http_receiver.url("/switch"), BODY, HEADERS)
    assert (result.status_code, result.error) == (101, None)
    assert deliverer.idle_connections() == 0


def test_an_answer_cut_short_keeps_its_status(deliverer: Deliverer, http_receiver: Receiver) -> None:
    def cut(handler) -> None:  # type: ignore[no-untyped-def]
        handler.wfile.write(b"HTTP/1.1 503 Busy\r\nContent-Length: 50\r\n\r\nabc")
        handler.close_connection = True

    http_receiver.routes["/cut"] = cut
    result = deliverer.send(http_receiver.url("/cut"), BODY, HEADERS)
    assert (result.status_code, result.error) == (503, "answer cut short while reading the answer")
    assert deliverer.idle_connections() == 0


def test_an_answer_without_a_length_runs_until_the_connection_closes(
        deliverer: Deliverer, http_receiver: Receiver) -> None:
    def unframed(handler) -> None:  # type: ignore[no-untyped-def]
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n\r\nhello")
        handler.close_connection = True

    http_receiver.routes["/unframed"] = unframed
    result = deliverer.send(http_receiver.url("/unframed"), BODY, HEADERS)
    assert (result.status_code, result.error, result.response_excerpt) == (200, None, "hello")
    assert deliverer.idle_connections() == 0


def test_an_endless_head_is_refused(deliverer: Deliverer, http_receiver: Receiver) -> None:
    def endless(handler) -> None:  # type: ignore[no-untyped-def]
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
        try:
            for n in range(2000):
                handler.wfile.write(f"X-Filler-{n}: {'a' * 60}\r\n".encode())
        except OSError:  # the deliverer hung up
            pass
        handler.close_connection = True

    http_receiver.routes["/endless"] = endless
    result = deliverer.send(http_receiver.url("/endless"), BODY, HEADERS)
    assert (result.status_code, result.error) == (None, "invalid answer (headers too long)")


def test_a_header_that_cannot_be_sent_is_the_callers_bug(deliverer: Deliverer,
                                                         http_receiver: Receiver) -> None:
    assert deliverer.send(http_receiver.url("/warm"), BODY, HEADERS).status_code == 204
    with pytest.raises(ValueError):
        deliverer.send(http_receiver.url("/bad"), BODY, {**HEADERS, "x-bad": "a\r\nInjected: 1"})
    with pytest.raises(ValueError):
        deliverer.send(http_receiver.url("/bad"), BODY, {**HEADERS, "x bad": "1"})
    assert deliverer.send(http_receiver.url("/after"), BODY, HEADERS).status_code == 204
    # Nothing of the refused requests went out, and the kept connection still serves.
    assert http_receiver.paths() == ["/warm", "/after"] and http_receiver.connections == 1


# --- https, with a certificate made for the test ---------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        if os.environ.get("CI"):  # a skipped TLS test must not pass for a tested one in CI
            raise RuntimeError("the openssl command is needed to make a test certificate")
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=receiver.test",
         "-addext", "subjectAltName=DNS:receiver.test"],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


@pytest.fixture
def tls_receiver(certificate: tuple[Path, Path]) -> Iterator[tuple[Receiver, list[str]]]:
    cert, key = certificate
    names: list[str] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: names.append(name) and None  # type: ignore[func-returns-value]
    server = Receiver()
    server.server.socket = context.wrap_socket(server.server.socket, server_side=True)
    yield server, names
    server.close()


def test_https_sends_the_host_name_and_verifies_the_certificate_against_it(
        certificate: tuple[Path, Path], tls_receiver: tuple[Receiver, list[str]]) -> None:
    receiver, names = tls_receiver
    dns = resolver_for({"receiver.test": "127.0.0.1", "other.test": "127.0.0.1"})
    guard = UrlGuard(["receiver.test", "other.test"], resolver=dns)
    with Deliverer(guard, timeout=5, ca_certs=str(certificate[0])) as d:
        result = d.send(f"https://receiver.test:{receiver.port}/tls", BODY, HEADERS)
        assert (result.status_code, result.error) == (204, None)
        assert names == ["receiver.test"]
        assert receiver.seen[0].headers["host"] == f"receiver.test:{receiver.port}"
        # The same address under a name the certificate does not carry is refused.
        wrong = d.send(f"https://other.test:{receiver.port}/tls", BODY, HEADERS)
        assert wrong.status_code is None and (wrong.error or "").startswith("tls certificate error")
    with Deliverer(guard, timeout=5) as d:  # the default bundle does not trust the test's certificate
        untrusted = d.send(f"https://receiver.test:{receiver.port}/tls", BODY, HEADERS)
        assert untrusted.status_code is None and (untrusted.error or "").startswith("tls certificate error")
    assert receiver.paths() == ["/tls"]


def test_https_answers_are_not_followed_and_are_cut_at_max_read(
        certificate: tuple[Path, Path], tls_receiver: tuple[Receiver, list[str]]) -> None:
    receiver, names = tls_receiver
    receiver.routes["/moved"] = answer_with(302, b"", {"Location": receiver.url("/target", "receiver.test",
                                                                                 "https")})
    receiver.routes["/long"] = answer_with(500, b"z" * 10_000)
    guard = UrlGuard(["receiver.test"], resolver=resolver_for({"receiver.test": "127.0.0.1"}))
    with Deliverer(guard, timeout=5, max_read=64, ca_certs=str(certificate[0])) as d:
        moved = d.send(f"https://receiver.test:{receiver.port}/moved", BODY, HEADERS)
        long = d.send(f"https://receiver.test:{receiver.port}/long", BODY, HEADERS)
    assert (moved.status_code, moved.error) == (302, None)
    assert (long.status_code, long.error, long.response_excerpt) == (500, None, "z" * 64)
    assert receiver.paths() == ["/moved", "/long"]
    assert set(names) == {"receiver.test"}
