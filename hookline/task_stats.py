"""Recent task outcomes for the console's overview, read from the task records.

Counting on every finish would put a write on the hot path; instead the
overview walks the newest part of each tenant's creation-time index
(``lua/task_stats.lua``) with a bound on the entries it examines, and says when
that bound cut it short.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

from hookline import keys, scripts
from hookline.task_record import FAILURE, REVOKED, SUCCESS
from hookline.task_store import TaskStore

#: Seconds of finished tasks the overview counts, per minute.
WINDOW_SECONDS = 15 * 60
#: Seconds back in creation time the overview looks for those tasks.
LOOKBACK_SECONDS = 2 * 3600
#: Index entries the overview examines at most, over all tenants.
STATS_BUDGET = 20_000
#: Index entries each tenant gets however many tenants there are.
MIN_SHARE = 100
#: Index entries one script call examines at most (sets how long Redis is held).
CALL_BUDGET = 2_000

OUTCOMES = {SUCCESS: "success", FAILURE: "failure", REVOKED: "revoked"}


@dataclasses.dataclass
class RecentStats:
    """Tasks that ended in the window, per minute and outcome, and their webhooks."""

    #: Minute 0 is the current one; each row maps outcome to count.
    per_minute: list[dict[str, int]]
    #: Delivery states of those tasks' webhooks (``delivered``, ``failed`` ...).
    deliveries: dict[str, int]
    examined: int
    #: False when the budget stopped the walk before ``LOOKBACK_SECONDS``.
    complete: bool
    window_seconds: int

    @property
    def webhook_success_rate(self) -> float | None:
        """Delivered over delivered and failed, or ``None`` with neither."""
        delivered = self.deliveries.get("delivered", 0)
        settled = delivered + self.deliveries.get("failed", 0)
        return delivered / settled if settled else None

    def per_minute_totals(self) -> dict[str, float]:
        """Average tasks per minute over the window, by outcome."""
        minutes = self.window_seconds / 60
        return {outcome: sum(row[outcome] for row in self.per_minute) / minutes
                for outcome in OUTCOMES.values()}


class TaskStats:
    """Counts recent outcomes through the task store's keys; reads only."""

    def __init__(self, store: TaskStore, *, budget: int = STATS_BUDGET,
                 call_budget: int = CALL_BUDGET) -> None:
        self.redis = store.redis
        self.budget = budget
        self.call_budget = call_budget
        self._count = scripts.register(self.redis, "hookline", "task_stats")

    def recent(self, tenants: Sequence[str], *, window: int = WINDOW_SECONDS,
               now: float | None = None) -> RecentStats:
        """Outcomes of ``tenants``' tasks that ended in the last ``window`` seconds."""
        now = time.time() if now is None else now
        minutes = max(1, window // 60)
        per_minute = [dict.fromkeys(OUTCOMES.values(), 0) for _ in range(minutes)]
        deliveries: dict[str, int] = {}
        examined, complete = 0, True
        for done, tenant in enumerate(tenants):
            share = max(MIN_SHARE, (self.budget - examined) // (len(tenants) - done))
            seen, whole = self._walk(tenant, now, window, share, per_minute, deliveries)
            examined += seen
            complete = complete and whole
        return RecentStats(per_minute, deliveries, examined, complete, window)

    def _walk(self, tenant: str, now: float, window: int, budget: int,
              per_minute: list[dict[str, int]], deliveries: dict[str, int]) -> tuple[int, bool]:
        """Add one tenant's counts, ``call_budget`` entries per script call.

        Returns the entries examined and whether the walk reached ``LOOKBACK_SECONDS``.
        """
        start, examined = "+inf", 0
        while examined < budget:
            slots, states, seen, whole, last = self._count(
                keys=[keys.task_index(tenant)],
                args=[keys.task(""), repr(now), window, repr(now - LOOKBACK_SECONDS),
                      min(self.call_budget, budget - examined), start],
            )
            examined += int(seen)
            for i in range(0, len(slots), 2):
                ago, _, status = slots[i].decode().partition(":")
                outcome = OUTCOMES.get(status)
                if outcome is not None and int(ago) < len(per_minute):
                    per_minute[int(ago)][outcome] += int(slots[i + 1])
            for i in range(0, len(states), 2):
                state = states[i].decode()
                deliveries[state] = deliveries.get(state, 0) + int(states[i + 1])
            if whole == 1:
                return examined, True
            # Entries created at exactly the same time as the last one are
            # skipped: a count, not a list, can afford that.
            start = "(" + last.decode()
        return examined, False
