"""Redis clients for Hookline, made by a factory and passed in.

``REDIS_URL`` is either a plain ``redis://`` URL or names Sentinels,
``redis+sentinel://host1:26379,host2:26379/<master-name>/<db>`` (SPEC §12):
then every connection asks the Sentinels where the primary is when it
connects, and a process follows a failover on its own.
"""
from __future__ import annotations

import logging
import os
import sys
import threading
import weakref
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelManagedConnection, SlaveNotFoundError

from hookline import metrics
from hookline.config import ConfigError

log = logging.getLogger("hookline.redis")

#: Seconds to wait for a Redis connection or reply before giving up; short, so
#: an outage turns into a quick 503 instead of a hung request.
SOCKET_TIMEOUT = 5.0

#: Errors that mean "Redis is not reachable right now": a 503, or a retry.
#: A demoted primary answers writes with ``READONLY`` until its clients move
#: on (Sentinel's clients turn it into a ``ConnectionError``; a managed
#: service behind one host name does not); Sentinel's "no master found" is a
#: ``ConnectionError``.
UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError,
               redis.ReadOnlyError)

#: The URL scheme that names Sentinels instead of a Redis server.
SENTINEL_SCHEME = "redis+sentinel"
#: Seconds to reach one Sentinel: a dead one must not hold up asking the next.
SENTINEL_TIMEOUT = 0.5


class ThreadConnectionPool(redis.BlockingConnectionPool):
    """A pool in which each thread keeps a connection of its own.

    Every Hookline process runs a fixed set of long-lived threads (gunicorn's
    request threads, Dramatiq's worker and consumer threads), and each makes
    one Redis call at a time. Taking a connection from the shared pool costs a
    lock, a queue hand-off and a probe of the socket for stray data (system
    calls and a caught exception) on every call, about a sixth of the
    client's CPU per round trip; with a connection per thread it is one
    lookup.

    A thread's connection never holds stray data: redis-py drops a connection
    whenever reading a reply fails, and a call that ends in an exception
    drops it here too, so a call interrupted between sending its command and
    reading the reply (Dramatiq's time limit raises inside the thread) cannot
    leave that reply for the next call to read. If a thread asks for a second
    connection while its own is in use (a call made inside a ``WATCH``
    transaction), it gets one from the shared pool, as before.
    """

    def reset(self) -> None:
        super().reset()
        # A forked child starts with no connection of its own. A thread's
        # connection closes when the thread ends (nothing else holds it).
        self._local = threading.local()
        self._own: weakref.WeakSet[Any] = weakref.WeakSet()

    def get_connection(self, command_name: Any = None, *keys: Any, **options: Any) -> Any:
        local = self._local
        if self.pid != os.getpid():
            self._checkpid()
            local = self._local
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = self.connection_class(**self.connection_kwargs)
            self._own.add(connection)
            local.connection = connection
            local.busy = False
        elif local.busy:
            return super().get_connection(command_name, *keys, **options)
        try:
            connection.connect()
        except BaseException:
            connection.disconnect()
            raise
        local.busy = True
        return connection

    def release(self, connection: Any) -> None:
        local = self._local
        if connection is getattr(local, "connection", None):
            # Released while an exception is raised: the reply may be unread.
            if sys.exc_info()[1] is not None:
                connection.disconnect()
            local.busy = False
            return
        super().release(connection)

    def disconnect(self, *args: Any, **kwargs: Any) -> None:
        super().disconnect(*args, **kwargs)
        for connection in list(self._own):
            connection.disconnect()


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


def _saw_primary(watched: tuple[Any, str], address: tuple[str, int]) -> None:
    with _primaries_lock:
        previous = _primaries.get(watched)
        if previous == address:
            return
        _primaries[watched] = address
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


def _connection_options() -> dict[str, Any]:
    """What every connection to a Redis server is made with."""
    return dict(
        timeout=SOCKET_TIMEOUT,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SOCKET_TIMEOUT,
        socket_keepalive=True,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.02), retries=2),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )


def connect(url: str, *, max_connections: int = 64) -> redis.Redis:
    """Return a client for ``url``; nothing connects yet.

    Each thread that uses it gets a connection of its own
    (:class:`ThreadConnectionPool`); ``max_connections`` bounds the shared
    connections that a thread borrows beside its own. A
    ``redis+sentinel://`` URL gives a client of the current primary
    (:class:`SentinelThreadPool`).

    Raises:
        ConfigError: a Sentinel URL that is not of the documented form.
    """
    if url.startswith(SENTINEL_SCHEME + ":"):
        named = parse_sentinel_url(url)
        sentinel = Sentinel(
            list(named.sentinels),
            sentinel_kwargs=dict(socket_timeout=SENTINEL_TIMEOUT,
                                 socket_connect_timeout=SENTINEL_TIMEOUT),
        )
        pool: ThreadConnectionPool = SentinelThreadPool(
            named.service_name, sentinel, max_connections=max_connections,
            db=named.db, username=named.username, password=named.password,
            **_connection_options(),
        )
    else:
        pool = ThreadConnectionPool.from_url(url, max_connections=max_connections,
                                             **_connection_options())
    return redis.Redis(connection_pool=pool)


def confirm_replicated(client: redis.Redis, key: str, replicas: int, timeout_ms: int) -> bool:
    """Whether ``key`` exists and ``replicas`` replicas hold every write so far.

    ``WAIT`` counts the replicas that have the writes of the connection it
    is sent on; a ``PUBLISH`` first makes that every write the primary has
    taken, whichever connection this is (after a reconnect, a connection
    has written nothing and ``WAIT`` would confirm at once). ``EXISTS`` in
    the same round trip says that ``key`` is on this primary at all: a
    failover since it was written may have lost it. A server that cannot
    ``WAIT`` (a demoted primary) confirms nothing.

    Raises:
        redis.ConnectionError, redis.TimeoutError: Redis did not answer.
    """
    pipe = client.pipeline(transaction=False)
    pipe.publish(REPLICATION_CHANNEL, b"")
    pipe.exists(key)
    pipe.wait(replicas, timeout_ms)
    _, exists, confirmed = pipe.execute(raise_on_error=False)
    for reply in (exists, confirmed):
        if isinstance(reply, redis.ResponseError):
            log.warning("replicas not confirmed: %s", type(reply).__name__)
            return False
        if isinstance(reply, Exception):
            raise reply
    return bool(exists) and int(confirmed) >= replicas


# -- key names (to move to the key module) ------------------------------------

#: The channel of the marker write before ``WAIT``; nobody subscribes to it.
REPLICATION_CHANNEL = "hl:replication"
