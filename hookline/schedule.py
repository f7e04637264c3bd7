"""Work due later: job, chunk, webhook and progress-event retries, in one sorted set.

Members are ``job:<task id>``, ``chunk:<task id>:<k>``, ``hook:<task id>`` or
``progress:<task id>``, scored by when they are due. ``claim`` leases due members atomically (their score moves a lease into
the future), so several workers can pump the schedule at once without taking
the same member, and a member whose claimer died before ``done`` comes due
again when its lease runs out.
"""
from __future__ import annotations

import time
from typing import NamedTuple

import redis

from hookline import keys, scripts

SCHEDULE_KEY = keys.SCHEDULE

#: Seconds a claimed member stays leased before another worker may take it.
LEASE_SECONDS = 60.0


def member(kind: str, task_id: str) -> str:
    """The schedule's member for a ``job`` or ``hook`` retry of a task."""
    return f"{kind}:{task_id}"


class Claim(NamedTuple):
    kind: str
    task_id: str
    #: The score the member carries while this claim leases it.
    lease: float


class Schedule:
    def __init__(self, client: redis.Redis, key: str = SCHEDULE_KEY) -> None:
        self.redis = client
        self.key = key
        self._claim = scripts.register(client, "hookline", "schedule_claim")
        self._done = scripts.register(client, "hookline", "schedule_done")

    def add(self, kind: str, task_id: str, due: float) -> None:
        self.redis.zadd(self.key, {member(kind, task_id): due})

    def remove(self, kind: str, task_id: str) -> None:
        self.redis.zrem(self.key, member(kind, task_id))

    def due_at(self, kind: str, task_id: str) -> float | None:
        score = self.redis.zscore(self.key, member(kind, task_id))
        return None if score is None else float(score)

    def claim(self, limit: int = 100, now: float | None = None) -> list[Claim]:
        """Lease up to ``limit`` due members."""
        now = time.time() if now is None else now
        lease = now + LEASE_SECONDS
        claims = []
        for raw in self._claim(keys=[self.key], args=[now, lease, limit]):
            kind, task_id = raw.decode().split(":", 1)
            claims.append(Claim(kind, task_id, lease))
        return claims

    def done(self, claim: Claim) -> bool:
        """Remove a claimed member, unless it has been scheduled again since."""
        leased = member(claim.kind, claim.task_id)
        return bool(self._done(keys=[self.key], args=[leased, repr(claim.lease)]))
