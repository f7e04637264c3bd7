"""The URL guard: webhooks go only to public addresses.

It runs at registration and again at every attempt, because DNS can change.
Only ``http`` and ``https`` URLs without credentials pass, and every address
the host resolves to must be public (``callbacks.addresses``); the attempt
then connects to one of those addresses. An allow list opens named hosts or
networks (local development, tests).
"""
from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from callbacks.addresses import (
    IPAddress,
    IPNetwork,
    embedded_ipv4,
    forbidden_reason,
    network_of,
    parse_ip_host,
)
from callbacks.errors import UnsafeUrlError

__all__ = ["CheckedUrl", "UrlGuard", "embedded_ipv4", "forbidden_reason", "parse_ip_host"]

#: Anything called like ``socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)``.
Resolver = Callable[..., Iterable[tuple[Any, ...]]]

#: Longest callback URL accepted, in characters.
MAX_URL_LENGTH = 2048
#: URLs with an IP address for a host whose verdict is kept (about 1 KB each).
MAX_KNOWN_LITERALS = 4096
#: Names that mean this machine or its local network; refused before any lookup.
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain"})
#: Suffixes of such names (RFC 6761 ``.localhost``, mDNS ``.local``, and the
#: ``.internal`` and ``.home.arpa`` zones that private networks use).
LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".home.arpa")

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
            network = network_of(entry)
            if network is None:
                hosts.add(entry)
            else:
                networks.append(network)
        self.allowed_hosts = frozenset(hosts)
        self.allowed_networks = tuple(networks)
        self.resolver = resolver
        #: URLs whose host is an IP address, as checked: their verdict needs
        #: no lookup, so it never changes. A host name is looked up every time.
        self._literal: dict[str, CheckedUrl] = {}

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
        known = self._literal.get(url) if isinstance(url, str) else None
        if known is not None:
            return known
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
        checked = CheckedUrl(url, scheme, host, port, path, tuple(str(a) for a in addresses))
        if literal is not None:
            if len(self._literal) >= MAX_KNOWN_LITERALS:
                self._literal.clear()
            self._literal[url] = checked
        return checked

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
