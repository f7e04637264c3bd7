"""The console's task search and recent stats, against a real Redis."""
from __future__ import annotations

import random
import uuid

import pytest
import redis as redis_lib

from actors.messages import HEARTBEATS_KEY
from hookline import keys
from hookline.task_record import FAILURE, PENDING, SUCCESS
from hookline.task_search import TaskQuery, TaskSearch
from hookline.task_stats import TaskStats
from hookline.task_store import QueuedMessage, TaskStore

MESSAGE = QueuedMessage("m", b"-", "hl:test:q")


def fill(store: TaskStore, count: int, tenants: tuple[str, ...] = ("a", "b")) -> list[dict]:
    """``count`` tasks spread over ``tenants``, several created in the same second."""
    rng = random.Random(7)
    made = []
    for i in range(count):
        task = {"id": str(uuid.UUID(int=rng.getrandbits(128))), "tenant": tenants[i % len(tenants)],
                "created": 1_000_000.0 + i // 4, "cb": "cb_one" if i % 5 == 0 else None}
        store.submit(task_id=task["id"], tenant=task["tenant"], vectors=b"\0" * 8, count=1,
                     dimension=1, metadata_json=b"{}", collection="default",
                     callback=(task["cb"], "http://x/") if task["cb"] else None,
                     message=MESSAGE, now=task["created"])
        task["status"] = PENDING
        if i % 50 == 3:
            store.finish(task["id"], FAILURE, delivery=None, error="x", finished_at=task["created"] + 1)
            task["status"] = FAILURE
        made.append(task)
    return made


@pytest.fixture
def store(redis: redis_lib.Redis) -> TaskStore:
    return TaskStore(redis, result_ttl=86400, heartbeats_key=HEARTBEATS_KEY)


def walk(search: TaskSearch, tenants: list[str], query: TaskQuery, limit: int) -> tuple[list[str], int]:
    """Every task id the pages give, in order, and how many pages it took."""
    seen, cursor, pages = [], None, 0
    while True:
        page = search.search(tenants, query, limit=limit, cursor=cursor)
        pages += 1
        seen += [t.task_id for t in page.tasks]
        cursor = page.next_cursor
        if cursor is None:
            return seen, pages
        assert pages < 1000


def newest_first(tasks: list[dict]) -> list[str]:
    return [t["id"] for t in sorted(tasks, key=lambda t: (t["created"], t["id"]), reverse=True)]


def test_pages_give_every_match_once_newest_first_across_tenants(store: TaskStore) -> None:
    made = fill(store, 600)
    search = TaskSearch(store)
    seen, _ = walk(search, ["a", "b"], TaskQuery(), limit=37)
    assert seen == newest_first(made)
    only_a, _ = walk(search, ["a"], TaskQuery(), limit=50)
    assert only_a == newest_first([t for t in made if t["tenant"] == "a"])


def test_a_rare_status_is_found_page_by_page_within_the_budget(store: TaskStore) -> None:
    made = fill(store, 1000)
    # A tiny budget forces pages that stop before they are full.
    search = TaskSearch(store, page_budget=120, call_budget=40)
    page = search.search(["a", "b"], TaskQuery(statuses=(FAILURE,)), limit=50)
    assert page.examined <= 240 and page.searched_back_to is not None and page.next_cursor
    seen, pages = walk(search, ["a", "b"], TaskQuery(statuses=(FAILURE,)), limit=50)
    assert seen == newest_first([t for t in made if t["status"] == FAILURE])
    assert pages > 3


def test_filters_combine(store: TaskStore) -> None:
    made = fill(store, 400)
    search = TaskSearch(store, page_budget=100, call_budget=30)
    query = TaskQuery(callback_id="cb_one", created_from=1_000_020.0, created_to=1_000_080.0)
    seen, _ = walk(search, ["a", "b"], query, limit=7)
    assert seen == newest_first([t for t in made if t["cb"] == "cb_one"
                                 and 1_000_020.0 <= t["created"] < 1_000_080.0])
    prefix = made[123]["id"][:3]
    seen, _ = walk(search, ["a", "b"], TaskQuery(id_prefix=prefix), limit=10)
    assert seen == newest_first([t for t in made if t["id"].startswith(prefix)])


def test_expired_records_are_skipped_and_bad_cursors_refused(store: TaskStore) -> None:
    made = fill(store, 20)
    store.redis.delete(keys.task(made[-1]["id"]))
    seen, _ = walk(TaskSearch(store), ["a", "b"], TaskQuery(), limit=50)
    assert made[-1]["id"] not in seen and len(seen) == 19
    with pytest.raises(ValueError):
        TaskSearch(store).search(["a"], TaskQuery(), limit=5, cursor="not-a-cursor")
    with pytest.raises(ValueError):
        TaskQuery(statuses=("NOPE",))


def test_recent_stats_count_outcomes_per_minute_and_webhooks(store: TaskStore) -> None:
    now = 2_000_000.0
    outcomes = [(SUCCESS, 10, "delivered"), (SUCCESS, 70, "failed"), (FAILURE, 30, "delivered"),
                (SUCCESS, 5000, "delivered")]
    for i, (status, ago, delivery) in enumerate(outcomes):
        task_id = f"t{i}"
        store.submit(task_id=task_id, tenant="a", vectors=b"\0" * 8, count=1, dimension=1,
                     metadata_json=b"{}", collection="default", callback=("cb_x", "http://x/"),
                     message=MESSAGE, now=now - ago - 1)
        store.finish(task_id, status, delivery=None, finished_at=now - ago,
                     fields={"delivery": delivery})
    stats = TaskStats(store).recent(["a", "b"], now=now)
    assert stats.per_minute[0] == {"success": 1, "failure": 1, "revoked": 0}
    assert stats.per_minute[1] == {"success": 1, "failure": 0, "revoked": 0}
    assert sum(row["success"] for row in stats.per_minute) == 2  # the old one is outside
    assert stats.deliveries == {"delivered": 2, "failed": 1}
    assert stats.webhook_success_rate == pytest.approx(2 / 3)
    assert stats.complete


def test_many_tenants_share_one_small_budget_and_still_miss_nothing(store: TaskStore) -> None:
    tenants = tuple(f"t{n:02d}" for n in range(30))
    made = fill(store, 900, tenants)
    search = TaskSearch(store, page_budget=200, call_budget=50)
    page = search.search(list(tenants), TaskQuery(statuses=(FAILURE,)), limit=20)
    assert page.examined <= 30 * 100
    seen, _ = walk(search, list(tenants), TaskQuery(statuses=(FAILURE,)), limit=20)
    assert seen == newest_first([t for t in made if t["status"] == FAILURE])
    seen, _ = walk(search, list(tenants), TaskQuery(), limit=64)
    assert seen == newest_first(made)


def test_recent_stats_walk_in_small_calls_and_say_when_cut_short(store: TaskStore) -> None:
    now = 3_000_000.0
    for i in range(150):
        store.submit(task_id=f"s{i:03d}", tenant="a", vectors=b"\0" * 8, count=1, dimension=1,
                     metadata_json=b"{}", collection="default", callback=None, message=MESSAGE,
                     now=now - 1000 - i)
        store.finish(f"s{i:03d}", SUCCESS, delivery=None, finished_at=now - 30 - i * 5)
    whole = TaskStats(store, call_budget=7).recent(["a"], now=now)
    assert sum(row["success"] for row in whole.per_minute) == 150 and whole.complete
    assert whole.examined == 150
    cut = TaskStats(store, budget=120, call_budget=50).recent(["a"], now=now)
    assert cut.examined == 120 and not cut.complete
    assert sum(row["success"] for row in cut.per_minute) == 120
