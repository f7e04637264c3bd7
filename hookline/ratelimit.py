"""A per-key token bucket in Redis, shared by every web process."""
from __future__ import annotations

import math
import time

import redis

from hookline import keys, scripts


class RateLimiter:
    """``rate`` requests per second per key, in bursts of twice that."""

    def __init__(self, client: redis.Redis, rate: float) -> None:
        self.rate = rate
        self.burst = max(1.0, 2 * rate)
        self._script = scripts.register(client, "hookline", "rate_bucket") if rate > 0 else None

    def check(self, key_id: str) -> int:
        """Take one token; 0 if allowed, else the seconds to wait (``Retry-After``)."""
        if self._script is None:
            return 0
        allowed, tokens = self._script(
            keys=[keys.rate_limit(key_id)],
            args=[repr(time.time()), self.rate, self.burst],
        )
        if allowed == 1:
            return 0
        return max(1, math.ceil((1 - float(tokens)) / self.rate))
