"""The URL guard, table-driven, at the library, at registration and at delivery.

At the library, host names resolve through a resolver the test passes in.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import socket
import subprocess
import sys
from collections.abc import Callable

import pytest
import requests
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st

from callbacks import CheckedUrl, UnsafeUrlError, UrlGuard
from callbacks.urlguard import forbidden_reason
from hookline.config import Config
from tests.procs import ROOT, Receiver, Stack, wait_until

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"


class FakeDns:
    """A resolver with the signature of ``socket.getaddrinfo``, answering from a table."""

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table = table or {}
        self.asked: list[str] = []

    def __call__(self, host: str, port: int, *args: object, **kwargs: object) -> list:
        self.asked.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [((socket.AF_INET6 if ":" in a else socket.AF_INET), socket.SOCK_STREAM, 6, "",
                 (a, port, 0, 0) if ":" in a else (a, port)) for a in self.table[host]]


REFUSED: list[tuple[str, str]] = [
    # (url, what the message says)
    ("http://127.0.0.1/hook", "127.0.0.1 is a loopback address"),
    ("http://localhost/hook", "names this machine"),
    ("http://LOCALHOST./hook", "names this machine"),
    ("http://api.localhost/", "names this machine"),
    ("http://printer.local/", "names this machine"),
    ("http://metadata.google.internal/", "names this machine"),
    ("http://10.1.2.3/", "a private address"),
    ("http://172.16.0.1/", "a private address"),
    ("http://172.31.255.254/", "a private address"),
    ("http://192.168.1.1/", "a private address"),
    ("http://169.254.169.254/latest/meta-data/", "a cloud metadata address"),
    ("http://100.100.100.200/", "a cloud metadata address"),
    ("http://[fd00:ec2::254]/", "a cloud metadata address"),
    ("http://169.254.10.1/", "a link-local address"),
    ("http://100.64.0.1/", "a carrier-grade NAT address"),
    ("http://0.0.0.0/", "an unspecified address"),
    ("http://0.1.2.3/", "'this network' address"),
    ("http://224.0.0.1/", "a multicast address"),
    ("http://240.0.0.1/", "a reserved address"),
    ("http://255.255.255.255/", "a broadcast address"),
    ("http://192.0.2.10/", "a documentation address"),
    ("http://198.51.100.7/", "a documentation address"),
    ("http://203.0.113.9/", "a documentation address"),
    ("http://198.18.0.1/", "a benchmarking address"),
    ("http://198.19.255.1/", "a benchmarking address"),
    ("http://192.0.0.8/", "a reserved address"),
    ("http://[::1]/", "::1 is a loopback address"),
    ("http://[::]/", "an unspecified address"),
    ("http://[fe80::1]/", "a link-local address"),
    ("http://[fc00::1]/", "a unique local address"),
    ("http://[fd12:3456::1]/", "a unique local address"),
    ("http://[ff02::1]/", "a multicast address"),
    ("http://[2001:db8::1]/", "a documentation address"),
    ("http://[2001::1]/", "a Teredo address"),
    ("http://[100::1]/", "a discard-only address"),
    ("http://[64:ff9b:1::a]/", "NAT64 local-use"),
    ("http://[4000::1]/", "a reserved address"),
    # IPv6 forms judged by the IPv4 address inside
    ("http://[::ffff:127.0.0.1]/", "a form of 127.0.0.1, a loopback address"),
    ("http://[::ffff:7f00:1]/", "a form of 127.0.0.1, a loopback address"),
    ("http://[::ffff:169.254.169.254]/", "a form of 169.254.169.254, a cloud metadata address"),
    ("http://[::ffff:0:10.0.0.1]/", "a form of 10.0.0.1, a private address"),
    ("http://[64:ff9b::7f00:1]/", "a form of 127.0.0.1, a loopback address"),
    ("http://[64:ff9b::10.0.0.1]/", "a form of 10.0.0.1, a private address"),
    ("http://[2002:7f00:1::]/", "a form of 127.0.0.1, a loopback address"),
    ("http://[2002:a9fe:a9fe::1]/", "a form of 169.254.169.254"),
    ("http://[::127.0.0.1]/", "a form of 127.0.0.1, a loopback address"),
    ("http://[::10.0.0.1]/", "a form of 10.0.0.1, a private address"),
    # odd IPv4 spellings, read as a resolver reads them
    ("http://2130706433/", "2130706433 means 127.0.0.1, a loopback address"),
    ("http://0x7f.1/", "0x7f.1 means 127.0.0.1"),
    ("http://0x7F000001/", "means 127.0.0.1"),
    ("http://0177.0.0.1/", "0177.0.0.1 means 127.0.0.1"),
    ("http://127.1/", "127.1 means 127.0.0.1"),
    ("http://127.0.1/", "means 127.0.0.1"),
    ("http://0/", "0 means 0.0.0.0"),
    ("http://3232235777/", "means 192.168.1.1, a private address"),
    ("http://0xa9.0xfe.0xa9.0xfe/", "means 169.254.169.254, a cloud metadata address"),
    ("http://127.0.0.1./", "loopback"),
    ("http://999.1.1.1/", "not a valid IP address"),
    ("http://08.1.1.1/", "not a valid IP address"),
    # not http(s), not a usable URL
    ("ftp://example.com/", "http or https, not ftp:"),
    ("file:///etc/passwd", "http or https, not file:"),
    ("gopher://example.com/", "http or https, not gopher:"),
    ("gopher://", "http or https"),
    ("javascript:alert(1)", "http or https, not javascript:"),
    ("//example.com/x", "http or https, not no scheme"),
    ("example.com/x", "http or https"),
    ("not a url", "http or https"),
    ("", "1 to 2048 characters"),
    ("https://example.com/" + "a" * 2048, "1 to 2048 characters"),
    ("http:///nohost", "has no host"),
    ("http://:8080/", "has no host"),
    (f"http://user:pass@{PUBLIC_V4}/", "user name or password"),
    (f"http://user@{PUBLIC_V4}/", "user name or password"),
    (f"http://{PUBLIC_V4}:0/", "port 0"),
    (f"http://{PUBLIC_V4}:99999/", "not a valid URL"),
    (f"http://{PUBLIC_V4}:http/", "not a valid URL"),
    ("http://[::1/", "not a valid URL"),
    (f"http://{PUBLIC_V4}/a b", "spaces or control characters"),
    (f"http://{PUBLIC_V4}/\r\nX-Injected: 1", "spaces or control characters"),
    (f" http://{PUBLIC_V4}/", "spaces or control characters"),
    ("http://exa%mple.com/", "not a valid host name"),
    ("http://under_score-.example/", "not a valid host name"),
    ("http://does-not-resolve.example/", "could not resolve callback URL host does-not-resolve.example"),
]


@pytest.mark.parametrize("url,message", REFUSED, ids=[r[0][:60] for r in REFUSED])
def test_refused(url: str, message: str) -> None:
    with pytest.raises(UnsafeUrlError) as refusal:
        UrlGuard(resolver=FakeDns()).check(url)
    assert message in str(refusal.value)


def test_the_message_is_a_clear_sentence_for_the_user() -> None:
    dns = FakeDns({"hooks.example": ["127.0.0.1"]})
    with pytest.raises(UnsafeUrlError) as refusal:
        UrlGuard(resolver=dns).check("https://hooks.example/x")
    assert str(refusal.value) == ("callback URL host hooks.example resolves to 127.0.0.1, a loopback "
                                  "address; only public addresses are allowed")


def test_a_public_literal_passes_and_the_url_is_taken_apart() -> None:
    checked = UrlGuard().check(f"http://{PUBLIC_V4}/")
    assert checked == CheckedUrl(f"http://{PUBLIC_V4}/", "http", PUBLIC_V4, 80, "/", (PUBLIC_V4,))
    checked = UrlGuard().check(f"HTTPS://{PUBLIC_V4}:8443/hooks/done?x=1&y=%20#frag")
    assert (checked.scheme, checked.port, checked.path_with_query) == ("https", 8443, "/hooks/done?x=1&y=%20")
    assert checked.host_header == f"{PUBLIC_V4}:8443"
    v6 = UrlGuard().check(f"https://[{PUBLIC_V6}]/h")
    assert v6.addresses == (PUBLIC_V6,) and v6.host == PUBLIC_V6 and v6.host_header == f"[{PUBLIC_V6}]"
    with pytest.raises(dataclasses.FrozenInstanceError):
        checked.host = "elsewhere"  # type: ignore[misc]


def test_a_public_ipv4_inside_an_ipv6_form_passes() -> None:
    for url in (f"http://[::ffff:{PUBLIC_V4}]/", f"http://[64:ff9b::{PUBLIC_V4}]/"):
        (address,) = UrlGuard().check(url).addresses
        assert ipaddress.ip_address(address) == ipaddress.ip_address(url[8:-2])


def test_host_names_resolve_and_every_address_must_be_public() -> None:
    dns = FakeDns({
        "good.example": [PUBLIC_V4, PUBLIC_V6],
        "mixed.example": [PUBLIC_V4, "10.0.0.5"],
        "rebind.example": [f"::ffff:{PUBLIC_V4}", "::ffff:169.254.169.254"],
        "scoped.example": ["fe80::1%eth0"],
    })
    guard = UrlGuard(resolver=dns)
    checked = guard.check("https://Good.Example./hooks")
    assert checked.addresses == (PUBLIC_V4, PUBLIC_V6)
    assert checked.host == "good.example" and checked.host_header == "good.example"
    with pytest.raises(UnsafeUrlError, match="resolves to 10.0.0.5, a private address"):
        guard.check("https://mixed.example/x")
    with pytest.raises(UnsafeUrlError, match="169.254.169.254, a cloud metadata address"):
        guard.check("https://rebind.example/x")
    with pytest.raises(UnsafeUrlError, match="link-local"):
        guard.check("https://scoped.example/x")


def test_literals_and_local_names_are_judged_without_a_lookup() -> None:
    dns = FakeDns({"localhost": ["93.184.215.14"]})
    guard = UrlGuard(resolver=dns)
    for url in (f"http://{PUBLIC_V4}/", "http://2130706433/", "http://[::1]/", "http://localhost/"):
        try:
            guard.check(url)
        except UnsafeUrlError:
            pass
    assert dns.asked == []


def test_a_host_name_is_looked_up_again_at_every_check() -> None:
    """DNS can change between attempts: a name that turns private is refused at once."""
    dns = FakeDns({"moving.example": [PUBLIC_V4]})
    guard = UrlGuard(resolver=dns)
    assert guard.check("https://moving.example/x").addresses == (PUBLIC_V4,)
    assert guard.check("https://moving.example/x").addresses == (PUBLIC_V4,)
    dns.table["moving.example"] = ["10.0.0.5"]
    with pytest.raises(UnsafeUrlError, match="resolves to 10.0.0.5"):
        guard.check("https://moving.example/x")
    assert dns.asked == ["moving.example"] * 3


def test_a_literal_address_keeps_its_verdict_and_its_refusal() -> None:
    guard = UrlGuard(["127.0.0.0/8"], resolver=FakeDns())
    first = guard.check("http://127.0.0.1:9000/hook")
    assert guard.check("http://127.0.0.1:9000/hook") is first
    for _ in range(2):
        with pytest.raises(UnsafeUrlError, match="a private address"):
            guard.check("http://10.1.2.3/hook")
    # Each guard judges by its own allow list.
    with pytest.raises(UnsafeUrlError, match="loopback"):
        UrlGuard(resolver=FakeDns()).check("http://127.0.0.1:9000/hook")


def test_international_names_are_resolved_in_their_ascii_form() -> None:
    dns = FakeDns({"xn--bcher-kva.example": [PUBLIC_V4]})
    checked = UrlGuard(resolver=dns).check("https://bücher.example/hook/ü")
    assert checked.host == "xn--bcher-kva.example"
    assert checked.path_with_query == "/hook/%C3%BC"


def test_the_allow_list_opens_networks() -> None:
    guard = UrlGuard(["127.0.0.0/8", "::1"], resolver=FakeDns())
    assert guard.check("http://127.0.0.1:9000/").addresses == ("127.0.0.1",)
    assert guard.check("http://127.9.9.9/").addresses == ("127.9.9.9",)
    assert guard.check("http://2130706433/").addresses == ("127.0.0.1",)
    assert guard.check("http://[::1]:9000/").addresses == ("::1",)
    (mapped,) = guard.check("http://[::ffff:127.0.0.1]/").addresses
    assert ipaddress.ip_address(mapped) == ipaddress.ip_address("::ffff:127.0.0.1")
    for url in ("http://10.0.0.1/", "http://[::2]/", "http://169.254.169.254/"):
        with pytest.raises(UnsafeUrlError):
            guard.check(url)
    with pytest.raises(UnsafeUrlError, match="names this machine"):
        guard.check("http://localhost/")  # a network on the list does not open a name


def test_the_allow_list_opens_host_names_whatever_they_resolve_to() -> None:
    dns = FakeDns({"receiver.test": ["10.9.9.9"], "localhost": ["127.0.0.1", "::1"]})
    guard = UrlGuard([" Receiver.Test ", "localhost", "", "10.0.0.0/31"], resolver=dns)
    assert guard.check("http://receiver.test:8080/").addresses == ("10.9.9.9",)
    assert guard.check("http://RECEIVER.test./").addresses == ("10.9.9.9",)
    assert guard.check("http://localhost/").addresses == ("127.0.0.1", "::1")
    assert guard.check("http://10.0.0.1/").addresses == ("10.0.0.1",)
    with pytest.raises(UnsafeUrlError, match="could not resolve"):
        UrlGuard(["missing.test"], resolver=dns).check("http://missing.test/")
    with pytest.raises(UnsafeUrlError):
        guard.check("http://other.test/")  # not on the list, and does not resolve
    with pytest.raises(UnsafeUrlError, match="user name or password"):
        guard.check("http://u:p@receiver.test/")  # the list opens addresses, not the other rules


def test_an_empty_answer_or_a_broken_resolver_is_a_refusal() -> None:
    def empty(*args: object, **kwargs: object) -> list:
        return []

    def garbage(*args: object, **kwargs: object) -> list:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("not-an-ip", 80))]

    for resolver in (empty, garbage):
        with pytest.raises(UnsafeUrlError, match="could not resolve"):
            UrlGuard(resolver=resolver).check("https://hooks.example/")


def test_the_real_resolver_is_the_default() -> None:
    # "localhost" is refused by name; a name under .invalid never resolves (RFC 6761).
    with pytest.raises(UnsafeUrlError, match="could not resolve"):
        UrlGuard().check("https://no-such-host.invalid/")


@pytest.mark.parametrize("address", [PUBLIC_V4, "8.8.8.8", "1.1.1.1", PUBLIC_V6, "2001:4860:4860::8888"])
def test_public_addresses_have_no_reason_against_them(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is None


ANY_ADDRESS = st.one_of(
    st.integers(min_value=0, max_value=2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n))),
    st.integers(min_value=0, max_value=2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n))),
    st.sampled_from(["127.0.0.1", "::1", "::ffff:10.0.0.1", "64:ff9b::a00:1", "2002:a00:1::1"]),
)


@settings(max_examples=300, deadline=None)
@given(addresses=st.lists(ANY_ADDRESS, min_size=1, max_size=4))
def test_a_resolved_name_passes_only_if_every_address_is_public(addresses: list[str]) -> None:
    guard = UrlGuard(resolver=FakeDns({"hooks.example": addresses}))
    public = [forbidden_reason(ipaddress.ip_address(a)) is None for a in addresses]
    try:
        checked = guard.check("https://hooks.example/x")
    except UnsafeUrlError:
        assert not all(public)
    else:
        assert all(public)
        assert {ipaddress.ip_address(a) for a in checked.addresses} == {
            ipaddress.ip_address(a) for a in addresses}


@settings(max_examples=300, deadline=None)
@given(url=st.one_of(
    st.text(max_size=60),
    st.builds(lambda scheme, host, rest: f"{scheme}://{host}{rest}",
              st.sampled_from(["http", "https", "HTTP", "ftp", ""]),
              st.one_of(st.text(max_size=20), st.from_regex(r"[0-9a-fx.\[\]:]{1,20}", fullmatch=True)),
              st.text(max_size=20)),
))
def test_any_text_is_checked_or_refused_and_nothing_else(url: str) -> None:
    guard = UrlGuard(resolver=FakeDns())
    try:
        checked = guard.check(url)
    except UnsafeUrlError as refusal:
        assert str(refusal)
        return
    assert checked.scheme in ("http", "https") and checked.addresses
    assert all(forbidden_reason(ipaddress.ip_address(a)) is None for a in checked.addresses)


def test_callable_resolvers_of_any_kind_work() -> None:
    calls: list[tuple] = []

    def resolver(host: str, port: int, family: int = 0, type: int = 0) -> list:
        calls.append((host, port, type))
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (PUBLIC_V4, port))]

    resolve: Callable[..., list] = resolver
    assert UrlGuard(resolver=resolve).check("https://x.example/").addresses == (PUBLIC_V4,)
    assert calls == [("x.example", 443, socket.SOCK_STREAM)]


# --- at registration and at delivery ----------------------------------------------------------

REFUSED_AT_REGISTRATION = [
    "http://127.0.0.1/hook", "http://localhost/hook", "http://10.1.2.3/", "http://172.16.0.1/",
    "http://192.168.1.1/", "http://169.254.169.254/latest/meta-data/", "http://100.64.0.1/",
    "http://0.0.0.0/", "http://[::1]/", "http://[fe80::1]/", "http://[fc00::1]/",
    "http://[::ffff:127.0.0.1]/", "http://2130706433/", "http://0x7f.1/", "http://0177.0.0.1/",
    "http://127.1/", "http://[64:ff9b::7f00:1]/", "http://[2002:7f00:1::]/", "http://224.0.0.1/",
    "http://198.18.0.1/", "http://192.0.2.10/", "http://[2001:db8::1]/", "http://[::]/",
    "ftp://example.com/", "file:///etc/passwd", "gopher://example.com/", "javascript:alert(1)",
    f"http://user:pass@{PUBLIC_V4}/", "http:///nohost", "not a url",
]


@pytest.mark.parametrize("url", REFUSED_AT_REGISTRATION)
def test_registration_refuses_with_a_clear_422(config: Config, auth: dict, url: str) -> None:
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
    # the workers that deliver (the job worker's first attempt, the callbacks
    # worker's) do not, so the attempt is refused and nothing is sent.
    stack = make_stack(HOOKLINE_WEBHOOK_RETRY_SCHEDULE="")
    stack.start_web()
    stack.start_worker(HOOKLINE_CALLBACK_ALLOW="")
    stack.start_callbacks(HOOKLINE_CALLBACK_ALLOW="")
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
