"""Worker "hosts" for the tests: network namespaces on a bridge, or loopback addresses.

``HostNetwork`` makes a bridge with an address of its own (the web host's),
and for each worker host a network namespace joined to the bridge by a veth
pair, with an address in a private test range (10.213.0.0/16, never routed
beyond this machine). Processes of a host run under ``ip netns exec``, so
they reach Redis and the receiver over the bridge, not loopback. Everything
is removed again by ``close``.

When this machine refuses network namespaces (a container without
CAP_NET_ADMIN, or no iproute2), the fallback gives each host a loopback address of its own
(127.0.0.2, 127.0.0.3, ...) and a port of its own for its metrics server;
``isolated`` says which layout is in use.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

from tests.procs import free_port

#: Port of each host's metrics server when each host has an address of its own.
METRICS_PORT = 9191


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)


@dataclass
class Host:
    name: str
    #: The address its processes are reached at (and send from).
    address: str
    #: Its network namespace, or ``None`` in the loopback fallback.
    netns: str | None
    metrics_port: int

    def argv(self, argv: list[str]) -> list[str]:
        """``argv`` run on this host."""
        return ["ip", "netns", "exec", self.netns, *argv] if self.netns else argv


class HostNetwork:
    """A web host's address and ``count`` worker hosts; see the module's docstring."""

    def __init__(self, count: int) -> None:
        tag = f"{os.getpid() % 10000:04d}"
        self.bridge = f"hlbr{tag}"
        subnet = 10 + os.getpid() % 240
        self.prefix = f"10.213.{subnet}"
        self.created: list[tuple[str, ...]] = []  # ip commands that undo what was made
        self.isolated = self._make_bridge()
        self.hosts: list[Host] = []
        for i in range(count):
            if self.isolated:
                self.hosts.append(self._make_namespace(tag, i))
            else:
                self.hosts.append(Host(f"host{i + 1}", f"127.0.0.{i + 2}", None, free_port()))

    @property
    def web_address(self) -> str:
        """Where the web host's servers (Redis, the receiver) listen."""
        return f"{self.prefix}.1" if self.isolated else "127.0.0.1"

    @property
    def subnet(self) -> str:
        return f"{self.prefix}.0/24" if self.isolated else "127.0.0.0/8"

    def _make_bridge(self) -> bool:
        if shutil.which("ip") is None or _ip("netns", "add", f"hl{os.getpid()}probe").returncode != 0:
            return False
        _ip("netns", "del", f"hl{os.getpid()}probe")
        self._run("link", "add", self.bridge, "type", "bridge", undo=("link", "del", self.bridge))
        self._run("addr", "add", f"{self.prefix}.1/24", "dev", self.bridge)
        self._run("link", "set", self.bridge, "up")
        return True

    def _make_namespace(self, tag: str, i: int) -> Host:
        netns, outside, inside = f"hl{tag}h{i}", f"hlv{tag}h{i}", f"hlv{tag}h{i}n"
        address = f"{self.prefix}.{i + 2}"
        self._run("netns", "add", netns, undo=("netns", "del", netns))
        self._run("link", "add", outside, "type", "veth", "peer", "name", inside,
                  undo=("link", "del", outside))
        self._run("link", "set", inside, "netns", netns)
        self._run("link", "set", outside, "master", self.bridge)
        self._run("link", "set", outside, "up")
        self._run("-n", netns, "addr", "add", f"{address}/24", "dev", inside)
        self._run("-n", netns, "link", "set", inside, "up")
        self._run("-n", netns, "link", "set", "lo", "up")
        return Host(f"host{i + 1}", address, netns, METRICS_PORT)

    def _run(self, *args: str, undo: tuple[str, ...] | None = None) -> None:
        result = _ip(*args)
        if result.returncode != 0:
            self.close()
            raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
        if undo is not None:
            self.created.append(undo)

    def close(self) -> None:
        """Remove the namespaces, veth pairs and the bridge (in reverse order)."""
        while self.created:
            _ip(*self.created.pop())
