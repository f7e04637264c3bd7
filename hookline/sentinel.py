"""Redis behind Sentinels: ``redis+sentinel://host1:26379,host2:26379/<master-name>/<db>``.

Every connection asks the Sentinels where the primary is when it connects,
so a process follows a failover on its own (SPEC §12).
"""
from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from redis.sentinel import Sentinel, SentinelManagedConnection, SlaveNotFoundError

from hookline import metrics
from hookline.config import ConfigError
from hookline.thread_pool import ThreadConnectionPool

log = logging.getLogger("hookline.redis")

#: The URL scheme that names Sentinels instead of a Redis server.
SENTINEL_SCHEME = "redis+sentinel"
#: Seconds to reach one Sentinel: a dead one must not hold up asking the next.
SENTINEL_TIMEOUT = 0.5


class SentinelThreadPool(ThreadConnectionPool):
    """A :class:`ThreadConnectionPool` whose connections go to the current primary.

    Each connection asks the Sentinels where the primary is when it
    connects (redis-py's ``SentinelManagedConnection``), so a connection
    that broke when the primary died reconnects to whichever replica was
    promoted. A connection still open to a primary that was demoted is
    told so by its first write (``READONLY``, which redis-py turns into a
    ``ConnectionError``) and reconnects too. When any connection of the
    process learns of a new primary, the others close theirs to the old one
    before their next call, each in its own thread: the pool never closes
    a connection another thread is using.
    """

    def __init__(self, service_name: str, sentinel: Sentinel, **kwargs: Any) -> None:
        self.service_name = service_name
        self.sentinel = sentinel
        #: Which primary this is, for the process-wide failover count.
        self.watched = (tuple(sorted(
            (s.connection_pool.connection_kwargs["host"], s.connection_pool.connection_kwargs["port"])
            for s in sentinel.sentinels)), service_name)
        # What SentinelManagedConnection asks its pool for.
        self.is_master = True
        self.check_connection = True
        self.master_address: tuple[str, int] | None = None
        self._address_lock = threading.Lock()
        super().__init__(connection_class=SentinelManagedConnection, **kwargs)
        self.connection_kwargs["connection_pool"] = self

    def get_master_address(self) -> tuple[str, int]:
        """Where the primary is now, as the Sentinels say.

        Raises:
            redis.sentinel.MasterNotFoundError: no Sentinel names a healthy
                primary (during a failover); a ``ConnectionError``.
        """
        address = self.sentinel.discover_master(self.service_name)
        address = (str(address[0]), int(address[1]))
        if address != self.master_address:
            with self._address_lock:
                self.master_address = address
            _saw_primary(self.watched, address)
        return address

    def rotate_slaves(self) -> Any:
        raise SlaveNotFoundError("Hookline reads and writes the primary only")

    def get_connection(self, command_name: Any = None, *keys: Any, **options: Any) -> Any:
        if self.pid != os.getpid():
            self._checkpid()
        local = self._local
        connection = getattr(local, "connection", None)
        if (connection is not None and not getattr(local, "busy", False)
                and self.master_address is not None
                and (connection.host, connection.port) != self.master_address):
            # Another thread learnt of a new primary; this one's connection is
            # idle, so it may close it.
            connection.disconnect()
        return super().get_connection(command_name, *keys, **options)

    def owns_connection(self, connection: Any) -> bool:
        # A shared connection to a former primary is closed on its release.
        return bool(super().owns_connection(connection)) and (
            self.master_address is None
            or (connection.host, connection.port) == self.master_address)


#: (Sentinels, service name) -> the primary this process last saw, to count
#: failovers once per process whatever the number of its clients.
_primaries: dict[tuple[Any, str], tuple[str, int]] = {}
_primaries_lock = threading.Lock()
#: How many times this process has seen a primary move (see ``primary_moves``).
_moves = 0


def primary_moves() -> int:
    """How many times this process has followed a primary to a new address.

    Cheap to read often: a worker compares it with the value it last saw to
    check, after a failover, what the new primary says it holds.
    """
    return _moves


def _saw_primary(watched: tuple[Any, str], address: tuple[str, int]) -> None:
    global _moves
    with _primaries_lock:
        previous = _primaries.get(watched)
        if previous == address:
            return
        _primaries[watched] = address
        if previous is not None:
            _moves += 1
    if previous is not None:
        metrics.redis_failovers.inc()
        log.warning("Redis primary of %s moved from %s:%d to %s:%d", watched[1],
                    previous[0], previous[1], address[0], address[1])


@dataclass(frozen=True)
class SentinelURL:
    """A ``redis+sentinel://`` URL, taken apart."""

    sentinels: tuple[tuple[str, int], ...]
    service_name: str
    db: int = 0
    username: str | None = None
    password: str | None = None


def parse_sentinel_url(url: str) -> SentinelURL:
    """Take ``redis+sentinel://[[user]:password@]h1:26379,h2:26379/<master>/<db>`` apart.

    A user and password are the Redis servers' (the Sentinels are asked
    without). A Sentinel without a port is on 26379; no ``db`` means 0.

    Raises:
        ConfigError: the URL is not of that form (the message never holds
            the password).
    """
    parts = urlsplit(url)
    if parts.scheme != SENTINEL_SCHEME:
        raise ConfigError(f"a Sentinel URL starts with {SENTINEL_SCHEME}://")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    sentinels = []
    for host in hosts.split(","):
        name, _, port = host.strip().rpartition(":") if ":" in host else (host.strip(), "", "")
        if not name or (port and not port.isdigit()):
            raise ConfigError(f"REDIS_URL names a Sentinel that is not host:port: {host!r}")
        sentinels.append((name.strip("[]"), int(port or 26379)))
    path = [segment for segment in parts.path.split("/") if segment]
    if not 1 <= len(path) <= 2 or (len(path) == 2 and not path[1].isdigit()):
        raise ConfigError(f"a Sentinel URL ends in /<master-name>/<db>, got {parts.path!r}")
    return SentinelURL(
        sentinels=tuple(sentinels),
        service_name=unquote(path[0]),
        db=int(path[1]) if len(path) == 2 else 0,
        username=unquote(username) or None,
        password=unquote(password) or None,
    )
