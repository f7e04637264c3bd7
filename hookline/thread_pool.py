"""A Redis connection pool in which each thread keeps a connection of its own."""
from __future__ import annotations

import os
import sys
import threading
import weakref
from typing import Any

import redis


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
