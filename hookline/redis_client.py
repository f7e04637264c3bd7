"""Redis clients for Hookline, made by a factory and passed in."""
from __future__ import annotations

import os
import sys
import threading
import weakref
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

#: Seconds to wait for a Redis connection or reply before giving up; short, so
#: an outage turns into a quick 503 instead of a hung request.
SOCKET_TIMEOUT = 5.0

#: Errors that mean "Redis is not reachable right now": a 503, or a retry.
UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)


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


def connect(url: str, *, max_connections: int = 64) -> redis.Redis:
    """Return a client for ``url``; nothing connects yet.

    Each thread that uses it gets a connection of its own
    (:class:`ThreadConnectionPool`); ``max_connections`` bounds the shared
    connections that a thread borrows beside its own.
    """
    pool = ThreadConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=SOCKET_TIMEOUT,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SOCKET_TIMEOUT,
        socket_keepalive=True,
        health_check_interval=30,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.02), retries=2),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )
    return redis.Redis(connection_pool=pool)
