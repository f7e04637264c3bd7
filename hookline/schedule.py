"""Work due later: job retries and webhook retries, in one sorted set.

Members are ``job:<task id>`` or ``hook:<task id>`` scored by when they are
due. ``claim`` leases due members atomically (their score moves a lease into
the future), so several workers can pump the schedule at once without taking
the same member, and a member whose claimer died before ``done`` comes due
again when its lease runs out.
"""
from __future__ import annotations

import time

import redis

SCHEDULE_KEY = "hl:schedule"

#: Seconds a claimed member stays leased before another worker may take it.
LEASE_SECONDS = 60.0

# KEYS: schedule; ARGV: now, lease until, limit
_CLAIM_LUA = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', ARGV[2], member)
end
return due
"""


class Schedule:
    def __init__(self, client: redis.Redis, key: str = SCHEDULE_KEY) -> None:
        self.redis = client
        self.key = key
        self._claim = client.register_script(_CLAIM_LUA)

    def add(self, kind: str, task_id: str, due: float) -> None:
        self.redis.zadd(self.key, {f"{kind}:{task_id}": due})

    def remove(self, kind: str, task_id: str) -> None:
        self.redis.zrem(self.key, f"{kind}:{task_id}")

    def due_at(self, kind: str, task_id: str) -> float | None:
        score = self.redis.zscore(self.key, f"{kind}:{task_id}")
        return None if score is None else float(score)

    def claim(self, limit: int = 100, now: float | None = None) -> list[tuple[str, str]]:
        """Lease up to ``limit`` due members; returns ``(kind, task id)`` pairs."""
        now = time.time() if now is None else now
        members = self._claim(keys=[self.key], args=[now, now + LEASE_SECONDS, limit])
        return [tuple(m.decode().split(":", 1)) for m in members]  # type: ignore[misc]

    def done(self, kind: str, task_id: str) -> None:
        self.redis.zrem(self.key, f"{kind}:{task_id}")
