"""The URL guard, table-driven, at the library, at registration and at delivery."""
from __future__ import annotations

import socket
from collections.abc import Callable

import pytest
import requests
from flask.testing import FlaskClient

from callbacks import UnsafeUrlError, UrlGuard
from tests.procs import Receiver, Stack, wait_until

REFUSED = [
    "http://127.0.0.1/hook", "http://localhost/hook", "http://10.1.2.3/", "http://172.16.0.1/",
    "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data/", "http://100.64.0.1/",
    "http://0.0.0.0/", "http://[::1]/", "http://[fe80::1]/", "http://[fc00::1]/",
    "http://[::ffff:127.0.0.1]/", "http://2130706433/", "http://0x7f.1/", "http://0177.0.0.1/",
    "http://127.1/", "http://[64:ff9b::7f00:1]/", "http://[2002:7f00:1::]/", "http://224.0.0.1/",
    "http://198.18.0.1/", "http://192.0.2.10/", "http://[2001:db8::1]/", "http://[::]/",
    "ftp://example.com/", "file:///etc/passwd", "gopher://example.com/", "javascript:alert(1)",
    "http://user:pass@93.184.215.14/", "http:///nohost", "not a url",
]


def fake_resolver(table: dict[str, list[str]]) -> Callable[..., list]:
    def resolve(host: str, port: int, *args: object, **kwargs: object) -> list:
        if host not in table:
            raise socket.gaierror("unknown host")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in table[host]]
    return resolve


@pytest.mark.parametrize("url", REFUSED)
def test_library_refuses(url: str) -> None:
    with pytest.raises(UnsafeUrlError) as info:
        UrlGuard(resolver=fake_resolver({})).check(url)
    assert str(info.value)


def test_public_literals_pass_and_the_address_is_kept() -> None:
    checked = UrlGuard().check("https://93.184.215.14:8443/hooks?x=1")
    assert checked.addresses == ("93.184.215.14",) and checked.port == 8443
    assert checked.path_with_query == "/hooks?x=1"
    assert UrlGuard().check("http://[2606:2800:220:1:248:1893:25c8:1946]/").addresses


def test_every_resolved_address_must_be_public() -> None:
    guard = UrlGuard(resolver=fake_resolver({
        "good.example": ["93.184.215.14"], "mixed.example": ["93.184.215.14", "10.0.0.5"],
        "rebind.example": ["::ffff:169.254.169.254"]}))
    assert guard.check("https://good.example/x").addresses == ("93.184.215.14",)
    for host in ("mixed.example", "rebind.example", "missing.example"):
        with pytest.raises(UnsafeUrlError):
            guard.check(f"https://{host}/x")


def test_allow_list_opens_networks_and_names() -> None:
    guard = UrlGuard(["127.0.0.0/8", "::1", "internal.test"],
                     resolver=fake_resolver({"internal.test": ["10.9.9.9"]}))
    assert guard.check("http://127.0.0.1:9000/").addresses == ("127.0.0.1",)
    assert guard.check("http://[::1]:9000/").addresses == ("::1",)
    assert guard.check("http://internal.test/").addresses == ("10.9.9.9",)
    with pytest.raises(UnsafeUrlError):
        guard.check("http://10.0.0.1/")


@pytest.mark.parametrize("url", REFUSED)
def test_registration_refuses_with_a_clear_422(config, auth: dict, url: str) -> None:  # type: ignore[no-untyped-def]
    from webapp import create_app

    client: FlaskClient = create_app(config.replace(callback_allow=())).test_client()
    resp = client.post("/callbacks", json={"url": url}, headers=auth)
    assert resp.status_code == 422, url
    problem = resp.get_json()
    assert resp.mimetype == "application/problem+json"
    assert problem["errors"]["url"] and problem["detail"]
    assert client.get("/callbacks", headers=auth).get_json()["items"] == []


def test_delivery_checks_again_and_refuses(make_stack: Callable[..., Stack], receiver: Receiver) -> None:
    # The API lets loopback in (as when DNS pointed elsewhere at registration);
    # the delivery worker does not, so the attempt is refused and nothing is sent.
    stack = make_stack(HOOKLINE_WEBHOOK_RETRY_SCHEDULE="")
    stack.start_web()
    stack.start_worker()
    stack.start_callbacks(HOOKLINE_CALLBACK_ALLOW="")
    import subprocess
    import sys

    from tests.procs import ROOT

    out = subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", "keys", "create", "acme"],
                         env=stack.env, capture_output=True, text=True, check=True, cwd=ROOT)
    auth = {"Authorization": f"Bearer {out.stdout.strip().splitlines()[-1]}"}
    cb = requests.post(f"{stack.url}/callbacks", json={"url": receiver.url("/x")}, headers=auth,
                       timeout=5).json()
    task_id = requests.post(f"{stack.url}/tasks", json={"vector_data": [1.0], "callback_id": cb["id"]},
                            headers=auth, timeout=5).json()["task_id"]

    def attempts() -> list:
        return requests.get(f"{stack.url}/tasks/{task_id}/deliveries", headers=auth,
                            timeout=5).json()["items"]

    log = wait_until(attempts, 30, "the attempt is recorded")
    assert log[0]["status_code"] is None
    assert log[0]["error"].startswith("refused:") and "loopback" in log[0]["error"]
    assert receiver.received() == []
