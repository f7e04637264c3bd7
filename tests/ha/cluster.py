"""A real Sentinel set-up for the tests: a primary, replicas and three redis-sentinel processes.

Everything listens on loopback (or on the addresses given) on free ports,
with short down-after and failover timeouts so that a failover takes
seconds; every wait has a deadline.
"""
from __future__ import annotations

import secrets
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import redis

from tests.procs import free_port, redis_binary, wait_until

#: The Sentinels' name for the primary (the ``<master-name>`` of the URL).
SERVICE = "hookline"
#: Milliseconds without an answer before a Sentinel takes a server for down.
DOWN_AFTER_MS = 1000
#: Milliseconds a failover may take before another Sentinel tries again.
FAILOVER_TIMEOUT_MS = 4000


def sentinel_binary() -> str:
    found = shutil.which("redis-sentinel")
    if found:
        return found
    # The package installs a link to redis-server, which runs as a Sentinel
    # when given --sentinel.
    return redis_binary()


#: Ports handed out in this test session: two servers started one after the
#: other may otherwise be given the same free port, and one then answers for
#: the other.
_ports: set[int] = set()


def unique_port() -> int:
    while True:
        port = free_port()
        if port not in _ports:
            _ports.add(port)
            return port


class Server:
    """A server process of the set-up: a name, an address, a folder of its own."""

    def __init__(self, root: Path, name: str, host: str = "127.0.0.1") -> None:
        self.name = name
        self.host = host
        self.port = unique_port()
        self.dir = root / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def client(self, timeout: float = 1.0) -> redis.Redis:
        return redis.Redis(self.host, self.port, socket_timeout=timeout, socket_connect_timeout=timeout)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_answering(self) -> None:
        """Wait until this process, and no other, answers on the port."""
        client = self.client()
        try:
            wait_until(lambda: self.proc is not None and self.proc.poll() is None
                       and int(client.info("server")["process_id"]) == self.proc.pid,
                       20, f"{self.name} answers")
        finally:
            client.close()


class RedisNode(Server):
    """One redis-server (primary or replica) that can be killed and started again in place."""

    def start(self, replica_of: "RedisNode | None" = None) -> None:
        argv = [redis_binary(), "--port", str(self.port), "--bind", self.host, "--dir", str(self.dir),
                "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
                "--hash-max-ziplist-value", "1024",
                # A replica's full sync starts at once, not after Redis's 5 s
                # wait for more replicas to share it.
                "--repl-diskless-sync-delay", "0",
                # Without a password Redis answers loopback clients only; the
                # worker-host tests reach it over a private test bridge.
                "--protected-mode", "no",
                "--logfile", str(self.dir / "redis.log")]
        if replica_of is not None:
            argv += ["--replicaof", replica_of.host, str(replica_of.port)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_answering()

    def kill(self) -> None:
        """SIGKILL: the host dies, with whatever it had not replicated."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
            self.proc = None

    def pause(self) -> None:
        """SIGSTOP: the server stops answering (and replicating) until ``resume``."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def drop_replicas(self) -> None:
        """Close the links to this primary's replicas: what it writes now stays here."""
        client = self.client()
        try:
            client.client_kill_filter(_type="slave")
        finally:
            client.close()

    def role(self) -> str:
        client = self.client()
        try:
            return str(client.info("replication")["role"])
        finally:
            client.close()

    def synced(self) -> bool:
        """A replica whose link to its primary is up (the first full sync is done)."""
        client = self.client()
        try:
            return bool(client.info("replication").get("master_link_status") == "up")
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.resume()
            self.proc.terminate()
            self.proc.wait(timeout=20)
            self.proc = None


class SentinelProcess(Server):
    """One redis-sentinel with a config file of its own (Sentinel rewrites it)."""

    def __init__(self, root: Path, name: str, host: str = "127.0.0.1") -> None:
        super().__init__(root, name, host)
        self.config = self.dir / "sentinel.conf"
        #: Sentinel's run id, given in advance so that the others can be told of it.
        self.id = secrets.token_hex(20)

    def start(self, primary: RedisNode, replicas: list[RedisNode], others: list["SentinelProcess"]) -> None:
        # The replicas and the other Sentinels are named up front: found by
        # themselves, they take a few hello periods (2 s each).
        self.config.write_text("\n".join([
            f"port {self.port}",
            f"bind {self.host}",
            f"dir {self.dir}",
            f"logfile {self.dir / 'sentinel.log'}",
            f"sentinel myid {self.id}",
            f"sentinel monitor {SERVICE} {primary.host} {primary.port} 2",
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}",
            f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}",
            f"sentinel parallel-syncs {SERVICE} 1",
            *(f"sentinel known-replica {SERVICE} {r.host} {r.port}" for r in replicas),
            *(f"sentinel known-sentinel {SERVICE} {o.host} {o.port} {o.id}" for o in others),
            "",
        ]))
        self.proc = subprocess.Popen([sentinel_binary(), str(self.config), "--sentinel"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.wait_answering()

    def primary(self) -> tuple[str, int] | None:
        client = self.client()
        try:
            found = client.sentinel_get_master_addr_by_name(SERVICE)
        finally:
            client.close()
        if not found:
            return None
        host = found[0].decode() if isinstance(found[0], bytes) else str(found[0])
        return host, int(found[1])

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.terminate()
            self.proc.wait(timeout=20)


class SentinelCluster:
    """A primary, ``replicas`` replicas and three Sentinels that watch them."""

    def __init__(self, replicas: int = 1, host: str = "127.0.0.1") -> None:
        self.root = Path(tempfile.mkdtemp(prefix="hl-sentinel-"))
        self.host = host
        self.nodes = [RedisNode(self.root, "redis-a", host)]
        self.nodes += [RedisNode(self.root, f"redis-{chr(ord('b') + i)}", host) for i in range(replicas)]
        self.sentinels: list[SentinelProcess] = []

    def start(self) -> "SentinelCluster":
        primary = self.nodes[0]
        primary.start()
        for node in self.nodes[1:]:
            node.start(replica_of=primary)
        for node in self.nodes[1:]:
            wait_until(node.synced, 30, f"{node.name} is in sync with the primary")
        self.sentinels = [SentinelProcess(self.root, f"sentinel-{i}", self.host) for i in range(3)]
        for sentinel in self.sentinels:
            sentinel.start(primary, self.nodes[1:], [s for s in self.sentinels if s is not sentinel])
        # Each Sentinel has found the replicas and the other Sentinels.
        wait_until(lambda: all(self._ready(s) for s in self.sentinels), 30, "the Sentinels know each other")
        return self

    def _ready(self, sentinel: SentinelProcess) -> bool:
        client = sentinel.client()
        try:
            state = client.sentinel_master(SERVICE)
            return int(state["num-other-sentinels"]) == 2 and int(state["num-slaves"]) == len(self.nodes) - 1
        finally:
            client.close()

    @property
    def url(self) -> str:
        hosts = ",".join(f"{s.host}:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def primary(self) -> RedisNode:
        """The node the Sentinels name as primary now."""
        address = self.sentinels[0].primary()
        return next(node for node in self.nodes if node.address == address)

    def wait_for_new_primary(self, old: RedisNode, timeout: float = 30.0) -> RedisNode:
        """Wait until every Sentinel names another node, and that node takes writes."""
        def promoted() -> RedisNode | None:
            addresses = {s.primary() for s in self.sentinels if s.alive()}
            if len(addresses) != 1 or old.address in addresses:
                return None
            node = next(n for n in self.nodes if n.address in addresses)
            return node if node.role() == "master" else None

        found: RedisNode = wait_until(promoted, timeout, "the Sentinels promote a replica")
        return found

    def restart(self, node: RedisNode) -> None:
        """Start a killed node again, as a replica of the new primary.

        The Sentinels do that themselves once the node has been up, and
        reporting itself a primary, for 8 s. When a failover followed a cut
        replication link, they may have dropped the node from their lists
        and leave it a primary: then it is pointed at the primary the
        Sentinels name, as an operator brings a returning host back.
        """
        node.start()
        try:
            wait_until(lambda: node.role() == "slave", 20, f"the Sentinels make {node.name} a replica")
        except AssertionError:
            host, port = self.primary().address
            node.client().replicaof(host, port)
        try:
            wait_until(lambda: node.role() == "slave" and node.synced(), 45, f"{node.name} rejoins as a replica")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; {self.describe(node)}") from None

    def describe(self, node: RedisNode) -> str:
        """What the node and each Sentinel say about it, for a failure message."""
        seen = []
        for sentinel in self.sentinels:
            client = sentinel.client()
            try:
                replicas = client.sentinel_slaves(SERVICE)
                flags = [r.get("flags") for r in replicas if int(r["port"]) == node.port]
                seen.append(f"{sentinel.name}: primary {sentinel.primary()}, node flags {flags}")
            finally:
                client.close()
        replication = node.client().info("replication")
        return (f"{node.name} role {replication.get('role')}, link {replication.get('master_link_status')}; "
                + "; ".join(seen))

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.root, ignore_errors=True)

