"""Redis clients for Hookline, made by a factory and passed in.

``REDIS_URL`` is either a plain ``redis://`` URL or names Sentinels
(``hookline.sentinel``): then a process follows a failover on its own.
"""
from __future__ import annotations

import logging
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry
from redis.sentinel import Sentinel

from hookline import keys
from hookline.sentinel import SENTINEL_SCHEME, SENTINEL_TIMEOUT, SentinelThreadPool, parse_sentinel_url
from hookline.thread_pool import ThreadConnectionPool

log = logging.getLogger("hookline.redis")

#: The URL scheme of a Redis server on this host's UNIX socket
#: (``unix:///run/redis.sock?db=0``).
UNIX_SCHEME = "unix"

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


def _connection_options(*, tcp: bool = True) -> dict[str, Any]:
    """What every connection to a Redis server is made with (``tcp``: over TCP, not a UNIX socket)."""
    options: dict[str, Any] = dict(
        timeout=SOCKET_TIMEOUT,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SOCKET_TIMEOUT,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.02), retries=2),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )
    if tcp:
        options["socket_keepalive"] = True
    return options


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
        pool = ThreadConnectionPool.from_url(
            url, max_connections=max_connections,
            **_connection_options(tcp=not url.startswith(UNIX_SCHEME + ":")))
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
    pipe.publish(keys.REPLICATION_CHANNEL, b"")
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
