"""Which IP addresses may receive webhooks, and how odd spellings of them read.

Forbidden: loopback, private, link-local, multicast, reserved, documentation,
benchmarking, carrier-grade NAT and cloud metadata addresses, IPv4 or IPv6.
IPv6 forms that carry an IPv4 address (IPv4-mapped, IPv4-compatible, SIIT,
NAT64, 6to4) are judged by that address.
"""
from __future__ import annotations

import ipaddress
import re
import socket

from callbacks.errors import UnsafeUrlError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


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



def network_of(entry: str) -> IPNetwork | None:
    """``entry`` as an IP network (an address is a network of one), or ``None``."""
    try:
        return ipaddress.ip_network(entry.strip("[]"), strict=False)
    except ValueError:
        return None
