"""The URL guard: webhooks go only to public addresses.

It runs at registration and again at every attempt (DNS can change). Every
address a host resolves to must be public; odd IPv4 spellings are normalised
first; IPv6 forms that carry an IPv4 address are judged by that address. The
attempt then connects to an address that was checked, with no second lookup.
"""
from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from callbacks.errors import UnsafeUrlError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., list]

_FORBIDDEN_V4 = [ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
    "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
    "100.100.100.200/32",
)]
_FORBIDDEN_V6 = [ipaddress.ip_network(n) for n in (
    "::/128", "::1/128", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8", "2001:db8::/32",
    "100::/64", "2001::/23", "fd00:ec2::254/128",
)]
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_SIXTOFOUR = ipaddress.ip_network("2002::/16")


@dataclass(frozen=True)
class CheckedUrl:
    """A URL that passed the guard, and the addresses it may connect to."""

    url: str
    scheme: str
    host: str
    port: int
    path_with_query: str
    addresses: tuple[str, ...]


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside a mapped, compatible, NAT64 or 6to4 IPv6 address."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    packed = int(address)
    if packed >> 32 == 0 and packed > 1:  # IPv4-compatible ::a.b.c.d (deprecated)
        return ipaddress.IPv4Address(packed & 0xFFFFFFFF)
    return None


def forbidden_reason(address: IPAddress) -> str | None:
    """Why ``address`` may not receive webhooks, or ``None`` if it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            reason = forbidden_reason(inner)
            return f"{reason} (inside {address})" if reason else None
        if address in _NAT64_LOCAL:
            return "a NAT64 local-use address"
        networks = _FORBIDDEN_V6
    else:
        networks = _FORBIDDEN_V4
    if address.is_loopback:
        return "a loopback address"
    if address.is_private and not address.is_global:
        return "a private address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_reserved:
        return "a reserved address"
    for network in networks:
        if address in network:
            return "a non-public address"
    if not address.is_global:
        return "a non-public address"
    return None


def parse_ip_host(host: str) -> IPAddress | None:
    """``host`` as an IP address if it is one, normalising odd IPv4 spellings.

    ``2130706433``, ``0x7f.1``, ``0177.0.0.1`` and ``127.1`` all name 127.0.0.1
    to a resolver, so they are judged as 127.0.0.1.
    """
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(part for part in host.split(".")) and host.replace(".", "").replace(
            "x", "").replace("X", "").isalnum():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


class UrlGuard:
    """Checks callback URLs; ``allow`` opens hostnames, addresses or networks."""

    def __init__(self, allow: Sequence[str] = (), resolver: Resolver = socket.getaddrinfo) -> None:
        self.allowed_hosts: set[str] = set()
        self.allowed_networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in allow:
            entry = entry.strip()
            if not entry:
                continue
            try:
                self.allowed_networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                self.allowed_hosts.add(entry.lower().rstrip("."))
        self.resolver = resolver

    def _allowed(self, address: IPAddress) -> bool:
        return any(address in net for net in self.allowed_networks if net.version == address.version)

    def check(self, url: str) -> CheckedUrl:
        """Return the checked URL, or raise ``UnsafeUrlError`` saying why not."""
        if not isinstance(url, str) or len(url) > 2048:
            raise UnsafeUrlError("the callback URL must be a string of at most 2048 characters")
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError:
            raise UnsafeUrlError("the callback URL is not a valid URL") from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise UnsafeUrlError(f"callback URLs must use http or https, not {scheme or 'no scheme'!r}")
        if parts.username is not None or parts.password is not None:
            raise UnsafeUrlError("callback URLs must not carry credentials")
        host = (parts.hostname or "").rstrip(".").lower()
        if not host:
            raise UnsafeUrlError("the callback URL has no host")
        port = port or (443 if scheme == "https" else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        literal = parse_ip_host(host)
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        else:
            if host == "localhost" or host.endswith((".localhost", ".local", ".internal")):
                if host not in self.allowed_hosts:
                    raise UnsafeUrlError(f"callback URL host {host!r} is a local name; "
                                         "only public hosts are allowed")
            addresses = self._resolve(host, port)
        if host in self.allowed_hosts:
            return CheckedUrl(url, scheme, host, port, path, tuple(str(a) for a in addresses))
        for address in addresses:
            if self._allowed(address):
                continue
            reason = forbidden_reason(address)
            if reason:
                shown = host if literal is None else url.split("/")[2] if "//" in url else host
                raise UnsafeUrlError(
                    f"callback URL host {shown!r} resolves to {address}, {reason}; "
                    "only public addresses are allowed"
                )
        return CheckedUrl(url, scheme, host, port, path, tuple(str(a) for a in addresses))

    def _resolve(self, host: str, port: int) -> list[IPAddress]:
        try:
            infos = self.resolver(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise UnsafeUrlError(f"could not resolve callback URL host {host!r}") from None
        found: list[IPAddress] = []
        for info in infos:
            try:
                address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
            except (ValueError, IndexError, TypeError):
                continue
            if address not in found:
                found.append(address)
        if not found:
            raise UnsafeUrlError(f"could not resolve callback URL host {host!r}")
        return found
