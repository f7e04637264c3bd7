"""Searching a tenant's tasks without an index per status.

The task store keeps one index per tenant: task ids by creation time
(``hookline.keys.task_index``). A search walks it newest first inside Redis
(``lua/task_search.lua``), reading only the fields it filters on, and
examines a bounded number of entries per call, so Redis is never held for
long and the submit and finish scripts carry no extra index. A page that has
not found enough matches once its budget (entries, and time) is spent says
how far back it looked and carries a cursor to continue from there: the
whole retention period stays searchable, page by page.

Several tenants (an operator's view) are walked one after the other and
merged in creation order; the merged page is cut at the shallowest point any
tenant stopped at, so it never skips a task.
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence

import redis

from hookline import keys, scripts
from hookline.cursors import decode_cursor, encode_cursor
from hookline.task_record import RECORD_FIELDS, STATUSES, Task, decode_present, present_fields
from hookline.task_store import TaskStore

#: Index entries one page may examine in all.
PAGE_BUDGET = 20_000
#: Seconds one page may spend searching: on a busy host it examines fewer
#: entries and says so, rather than answering late.
PAGE_SECONDS = 0.15
#: Index entries one script call examines at most (sets how long Redis is held).
CALL_BUDGET = 2_000
#: Longest task id a cursor may carry.
MAX_CURSOR_ID = 128
#: Index entries each tenant's walk may examine however many tenants share a page.
MIN_SHARE = 100



@dataclasses.dataclass(frozen=True)
class TaskQuery:
    """What a search asks for; empty fields match everything."""

    statuses: tuple[str, ...] = ()
    callback_id: str = ""
    id_prefix: str = ""
    #: Creation time, Unix seconds: from (inclusive) and to (exclusive).
    created_from: float | None = None
    created_to: float | None = None

    def __post_init__(self) -> None:
        unknown = [s for s in self.statuses if s not in STATUSES]
        if unknown:
            raise ValueError(f"unknown status {unknown[0]!r}")


@dataclasses.dataclass
class SearchPage:
    """One page of matches, newest first, and where the next one starts."""

    tasks: list[Task]
    next_cursor: str | None
    #: Index entries examined for this page.
    examined: int
    #: Set when the budget ran out first: the creation time the walk reached.
    searched_back_to: float | None


@dataclasses.dataclass
class _Walk:
    tenant: str
    score: str
    after: str
    matches: list[tuple[float, str]] = dataclasses.field(default_factory=list)
    ended: bool = False


class TaskSearch:
    """Searches tasks through the task store's keys; reads only."""

    def __init__(self, store: TaskStore, *, page_budget: int = PAGE_BUDGET,
                 call_budget: int = CALL_BUDGET, page_seconds: float = PAGE_SECONDS) -> None:
        self.store = store
        self.redis: redis.Redis = store.redis
        self.page_budget = page_budget
        self.call_budget = call_budget
        self.page_seconds = page_seconds
        self._walk = scripts.register(self.redis, "hookline", "task_search")
        self._prefix = keys.task("")

    def search(self, tenants: Sequence[str], query: TaskQuery, *, limit: int,
               cursor: str | None = None) -> SearchPage:
        """A page of ``tenants``' tasks matching ``query``, newest first.

        Raises:
            ValueError: ``cursor`` was not made by this search.
        """
        top, after = "+inf", ""
        if cursor:
            score, after = decode_cursor(cursor)
            if not math.isfinite(score) or len(after) > MAX_CURSOR_ID:
                raise ValueError("not a cursor from this search")
            top = repr(score)
        if query.created_to is not None and (top == "+inf" or query.created_to < float(top)):
            top, after = repr(query.created_to), ""
        walks = [_Walk(tenant, top, after) for tenant in tenants]
        deadline = time.monotonic() + self.page_seconds
        examined = 0
        for done, walk in enumerate(walks):
            # The page's budget is shared out as it goes: a tenant that
            # needed little leaves more for the rest; each gets a minimum so
            # that the merged page always moves on.
            share = (self.page_budget - examined) // (len(walks) - done)
            examined += self._run(walk, query, limit, max(MIN_SHARE, share), deadline)
        return self._merge(walks, limit, examined)

    def _run(self, walk: _Walk, query: TaskQuery, limit: int, budget: int, deadline: float) -> int:
        statuses = "," + ",".join(query.statuses) + "," if query.statuses else ""
        bottom = "-inf" if query.created_from is None else repr(query.created_from)
        examined = 0
        # One call at least, past the deadline too, so that the page moves on.
        while (not walk.ended and len(walk.matches) < limit and examined < budget
               and (examined == 0 or time.monotonic() < deadline)):
            found, score, after, ended, seen = self._walk(
                keys=[keys.task_index(walk.tenant)],
                args=[self._prefix, walk.score, walk.after, bottom, statuses, query.callback_id,
                      query.id_prefix, limit - len(walk.matches),
                      min(self.call_budget, budget - examined)],
            )
            walk.matches += [(float(found[i + 1]), found[i].decode()) for i in range(0, len(found), 2)]
            walk.score = score.decode() if isinstance(score, bytes) else str(score)
            walk.after = after.decode() if isinstance(after, bytes) else str(after)
            walk.ended = ended == 1
            examined += int(seen)
            if int(seen) == 0:
                break
        return examined

    def _merge(self, walks: list[_Walk], limit: int, examined: int) -> SearchPage:
        # Every walk has looked at everything above its stop; below the
        # highest stop of a walk that did not reach the end, some tenant has
        # not been looked at yet.
        stops = [(float(w.score), w.after) for w in walks if not w.ended and w.score != "+inf"]
        boundary = max(stops) if stops else None
        merged = sorted((m for w in walks for m in w.matches
                         if boundary is None or m >= boundary), reverse=True)
        page = merged[:limit]
        next_cursor = None
        searched_back_to = None
        if len(merged) > limit or (len(page) == limit and boundary is not None):
            next_cursor = encode_cursor(*page[-1])
        elif boundary is not None:
            next_cursor = encode_cursor(*boundary)
            searched_back_to = boundary[0]
        return SearchPage(self._load([task_id for _, task_id in page]), next_cursor,
                          examined, searched_back_to)

    def _load(self, ids: list[str]) -> list[Task]:
        pipe = self.redis.pipeline(transaction=False)
        for task_id in ids:
            pipe.hmget(keys.task(task_id), RECORD_FIELDS)
        tasks = []
        for task_id, values in zip(ids, pipe.execute()):
            raw = present_fields(values)
            task = decode_present(task_id, raw)
            if task is not None:
                tasks.append(task)
        return tasks
