"""A per-key token bucket in Redis, shared by every web process."""
from __future__ import annotations

import math
import time

import redis

# KEYS: bucket; ARGV: now (s), rate (tokens/s), burst
_BUCKET_LUA = """
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local rate, burst, now = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[1])
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
if tokens >= 1 then tokens = tokens - 1; allowed = 1 end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(tokens)}
"""


class RateLimiter:
    """``rate`` requests per second per key, in bursts of twice that."""

    def __init__(self, client: redis.Redis, rate: float, *, prefix: str = "hl:") -> None:
        self.rate = rate
        self.burst = max(1.0, 2 * rate)
        self.prefix = prefix
        self._script = client.register_script(_BUCKET_LUA) if rate > 0 else None

    def check(self, key_id: str) -> int:
        """Take one token; 0 if allowed, else the seconds to wait (``Retry-After``)."""
        if self._script is None:
            return 0
        allowed, tokens = self._script(
            keys=[f"{self.prefix}ratelimit:{key_id}"],
            args=[repr(time.time()), self.rate, self.burst],
        )
        if allowed == 1:
            return 0
        return max(1, math.ceil((1 - float(tokens)) / self.rate))
