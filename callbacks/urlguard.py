"""The URL guard: webhooks go only to public addresses.

It runs at registration and again at every attempt, because DNS can change.
Only ``http`` and ``https`` URLs without credentials pass; odd IPv4 spellings
(``2130706433``, ``0x7f.1``, ``0177.0.0.1``, ``127.1``) are normalised the
way a resolver would read them before they are judged; every address a host
resolves to must be public, and IPv6 forms that carry an IPv4 address
(IPv4-mapped, IPv4-compatible, SIIT, NAT64, 6to4) are judged by that address.
The attempt then connects to an address that was checked, with no second
lookup. An allow list opens named hosts or networks (local development, tests).
"""
from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from callbacks.errors import UnsafeUrlError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: Anything called like ``socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)``.
Resolver = Callable[..., Iterable[tuple[Any, ...]]]

#: Longest callback URL accepted, in characters.
MAX_URL_LENGTH = 2048
#: Names that mean this machine or its local network; refused before any lookup.
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain"})
#: Suffixes of such names (RFC 6761 ``.localhost``, mDNS ``.local``, and the
#: ``.internal`` and ``.home.arpa`` zones that private networks use).
LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa")


def _table(*rows: tuple[str, str]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(net), reason) for net, reason in rows)


# First match wins, so the more specific (and more telling) rows come first.
_FORBIDDEN_V4 = _table(
    ("169.254.169.254/32", "a cloud metadata address"),
    ("100.100.100.200/32", "a cloud metadata address"),
    ("0.0.0.0/32", "an unspecified address"),
    ("0.0.0.0/8", "a 'this network' address"),
    ("127.0.0.0/8", "a loopback address"),
    ("10.0.0.0/8", "a private address"),
    ("172.16.0.0/12", "a private address"),
    ("192.168.0.0/16", "a private address"),
    ("100.64.0.0/10", "a carrier-grade NAT address"),
    ("169.254.0.0/16", "a link-local address"),
    ("192.0.0.0/24", "a reserved address"),
    ("192.0.2.0/24", "a documentation address"),
    ("198.51.100.0/24", "a documentation address"),
    ("203.0.113.0/24", "a documentation address"),
    ("198.18.0.0/15", "a benchmarking address"),
    ("192.88.99.0/24", "a reserved address"),
    ("224.0.0.0/4", "a multicast address"),
    ("255.255.255.255/32", "a broadcast address"),
    ("240.0.0.0/4", "a reserved address"),
)
_FORBIDDEN_V6 = _table(
    ("fd00:ec2::254/128", "a cloud metadata address"),
    ("::/128", "an unspecified address"),
    ("::1/128", "a loopback address"),
    ("fe80::/10", "a link-local address"),
    ("fec0::/10", "a site-local address"),
    ("fc00::/7", "a unique local address"),
    ("ff00::/8", "a multicast address"),
    ("2001:db8::/32", "a documentation address"),
    ("3fff::/20", "a documentation address"),
    ("2001:2::/48", "a benchmarking address"),
    ("2001::/32", "a Teredo address"),
    ("2001::/23", "a reserved address"),
    ("64:ff9b:1::/48", "a NAT64 local-use address"),
    ("100::/64", "a discard-only address"),
)
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
# IPv6 forms whose low 32 bits are an IPv4 address.
_LOW_32_V4 = tuple(ipaddress.IPv6Network(n) for n in (
    "::ffff:0:0/96",      # IPv4-mapped
    "::ffff:0:0:0/96",    # IPv4-translated (SIIT)
    "64:ff9b::/96",       # NAT64 well-known prefix
    "::/96",              # IPv4-compatible (deprecated); :: and ::1 are judged as IPv6
))
_SIX_TO_FOUR = ipaddress.IPv6Network("2002::/16")

# A host made only of numbers (decimal, octal or hex parts) is an IPv4 address
# to a resolver (inet_aton), and to the WHATWG URL standard.
_NUMERIC_HOST = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}")
_HOST_NAME = re.compile(r"(?=.{1,253}\Z)(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*"
                        r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_UNSAFE_CHARS = re.compile(r"[\x00-\x20\x7f]")
# Everything printable in ASCII stays as written; only other characters are encoded.
_PATH_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))


@dataclass(frozen=True)
class CheckedUrl:
    """A URL that passed the guard, and the addresses it may connect to."""

    url: str
    scheme: str
    host: str
    port: int
    path_with_query: str
    addresses: tuple[str, ...]

    @property
    def host_header(self) -> str:
        """The ``Host`` header for this URL (the port only when not the default)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside a mapped, compatible, SIIT, NAT64 or 6to4 address."""
    if address in _SIX_TO_FOUR:
        return address.sixtofour
    for network in _LOW_32_V4:
        if address in network:
            if int(address) <= 1:  # :: and ::1 carry no IPv4 address
                return None
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def forbidden_reason(address: IPAddress) -> str | None:
    """Why ``address`` may not receive webhooks (``"a loopback address"``), or ``None``."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            reason = forbidden_reason(inner)
            return f"a form of {inner}, {reason}" if reason else None
        for network, reason in _FORBIDDEN_V6:
            if address in network:
                return reason
        if address not in _GLOBAL_UNICAST:
            return "a reserved address"
    else:
        for network, reason in _FORBIDDEN_V4:
            if address in network:
                return reason
    if not address.is_global:
        return "a non-public address"
    return None


def parse_ip_host(host: str) -> IPAddress | None:
    """``host`` as an IP address if it is one, reading odd IPv4 spellings as a resolver does.

    ``2130706433``, ``0x7f.1``, ``0177.0.0.1`` and ``127.1`` all name 127.0.0.1.

    Raises:
        UnsafeUrlError: ``host`` is all numbers but no valid address (``999.1.1.1``).
    """
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not _NUMERIC_HOST.fullmatch(host):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        raise UnsafeUrlError(f"callback URL host {host} is not a valid IP address") from None


def _network(entry: str) -> IPNetwork | None:
    try:
        return ipaddress.ip_network(entry.strip("[]"), strict=False)
    except ValueError:
        return None


class UrlGuard:
    """Checks callback URLs.

    ``allow`` entries are host names (exact, any case: that host passes
    whatever it resolves to) or IP addresses and CIDR networks (an address
    inside one passes). ``resolver`` is called like ``socket.getaddrinfo``.
    """

    def __init__(self, allow: Sequence[str] = (), resolver: Resolver = socket.getaddrinfo) -> None:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in allow:
            entry = raw.strip().lower().rstrip(".")
            if not entry:
                continue
            network = _network(entry)
            if network is None:
                hosts.add(entry)
            else:
                networks.append(network)
        self.allowed_hosts = frozenset(hosts)
        self.allowed_networks = tuple(networks)
        self.resolver = resolver

    def is_allowed(self, address: IPAddress) -> bool:
        """True if ``address`` (or the IPv4 address it carries) is inside an allowed network."""
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address):
            inner = embedded_ipv4(address)
            if inner is not None:
                candidates.append(inner)
        return any(a in net for a in candidates for net in self.allowed_networks
                   if net.version == a.version)

    def check(self, url: str) -> CheckedUrl:
        """Return the checked URL and the addresses a delivery may connect to.

        Raises:
            UnsafeUrlError: the URL is refused; the message says why, for the user.
        """
        if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
            raise UnsafeUrlError(f"the callback URL must be text of 1 to {MAX_URL_LENGTH} characters")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise UnsafeUrlError("the callback URL is not a valid URL (check its host and port)") from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            shown = f"{scheme}:" if scheme else "no scheme"
            raise UnsafeUrlError(f"callback URLs must use http or https, not {shown}")
        if _UNSAFE_CHARS.search(url):
            raise UnsafeUrlError("the callback URL contains spaces or control characters")
        if parts.username is not None or parts.password is not None:
            raise UnsafeUrlError("callback URLs must not carry a user name or password")
        if port == 0:
            raise UnsafeUrlError("the callback URL has port 0, which cannot be connected to")
        port = port or (443 if scheme == "https" else 80)
        host = self._host(parts.hostname or "")
        path = quote(parts.path or "/", safe=_PATH_SAFE)
        if parts.query:
            path += "?" + quote(parts.query, safe=_PATH_SAFE)

        literal = parse_ip_host(host)
        if literal is not None:
            addresses = [literal]
        elif host in self.allowed_hosts:
            return CheckedUrl(url, scheme, host, port, path, self._resolve(host, port))
        elif host in LOCAL_NAMES or host.endswith(LOCAL_SUFFIXES):
            raise UnsafeUrlError(
                f"callback URL host {host} names this machine or a local network; "
                "only public hosts are allowed"
            )
        else:
            addresses = [ipaddress.ip_address(a) for a in self._resolve(host, port)]
        for address in addresses:
            if self.is_allowed(address):
                continue
            reason = forbidden_reason(address)
            if reason is None:
                continue
            if literal is None:
                what = f"resolves to {address}, {reason}"
            elif str(address) != host:
                what = f"means {address}, {reason}"
            else:
                what = f"is {reason}"
            raise UnsafeUrlError(f"callback URL host {host} {what}; only public addresses are allowed")
        return CheckedUrl(url, scheme, host, port, path, tuple(str(a) for a in addresses))

    @staticmethod
    def _host(hostname: str) -> str:
        """The host in its ASCII form, lower case, without a trailing dot.

        Raises:
            UnsafeUrlError: there is no host, or it is not a valid host name.
        """
        host = hostname.rstrip(".")
        if not host:
            raise UnsafeUrlError("the callback URL has no host")
        if ":" in host:  # an IPv6 literal, brackets already removed
            try:
                ipaddress.IPv6Address(host)
            except ValueError:
                raise UnsafeUrlError("the callback URL host is not a valid IPv6 address") from None
            return host
        if not host.isascii():
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError:
                raise UnsafeUrlError("the callback URL host is not a valid host name") from None
        if not _HOST_NAME.fullmatch(host):
            raise UnsafeUrlError("the callback URL host is not a valid host name")
        return host

    def _resolve(self, host: str, port: int) -> tuple[str, ...]:
        """Every address ``host`` resolves to, in the resolver's order, without duplicates.

        Raises:
            UnsafeUrlError: the host does not resolve.
        """
        try:
            infos = self.resolver(host, port, type=socket.SOCK_STREAM)
            found: dict[str, None] = {}
            for info in infos:
                # A scope (``fe80::1%eth0``) is dropped: the address is judged alone.
                text = str(info[4][0]).split("%", 1)[0]
                found[str(ipaddress.ip_address(text))] = None
        except (OSError, UnicodeError, ValueError, LookupError, TypeError):
            raise UnsafeUrlError(f"could not resolve callback URL host {host}") from None
        if not found:
            raise UnsafeUrlError(f"could not resolve callback URL host {host}")
        return tuple(found)
