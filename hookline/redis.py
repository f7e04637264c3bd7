"""Redis clients for Hookline, made by a factory and passed in."""
from __future__ import annotations

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

#: Seconds to wait for a Redis connection or reply before giving up; short, so
#: an outage turns into a quick 503 instead of a hung request.
SOCKET_TIMEOUT = 5.0

#: Errors that mean "Redis is not reachable right now": a 503, or a retry.
UNAVAILABLE = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)


def connect(url: str, *, max_connections: int = 64) -> redis.Redis:
    """Return a client for ``url`` with a bounded pool; nothing connects yet."""
    pool = redis.BlockingConnectionPool.from_url(
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
