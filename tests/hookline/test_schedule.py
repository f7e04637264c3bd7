"""The retry schedule that job and webhook retries wait on, against a real Redis."""
from __future__ import annotations

import time

import redis as redis_lib

from actors.redis_broker import LeanRedisBroker
from actors.services import Services
from actors.upkeep import Upkeep
from hookline.config import Config
from hookline.schedule import LEASE_SECONDS, Schedule


def test_a_due_member_is_claimed_once_and_done_removes_it(redis: redis_lib.Redis) -> None:
    schedule = Schedule(redis)
    now = time.time()
    schedule.add("hook", "t1", now - 1)
    schedule.add("hook", "t2", now + 60)
    claims = schedule.claim(now=now)
    assert [(c.kind, c.task_id) for c in claims] == [("hook", "t1")]
    # Leased: a second pump does not take it
    assert schedule.claim(now=now) == []
    assert schedule.done(claims[0]) is True
    assert schedule.due_at("hook", "t1") is None
    assert schedule.due_at("hook", "t2") == now + 60


def test_a_lease_that_ran_out_belongs_to_the_next_claimer(redis: redis_lib.Redis) -> None:
    schedule = Schedule(redis)
    now = time.time()
    schedule.add("job", "t1", now - 1)
    (first,) = schedule.claim(now=now)
    later = now + LEASE_SECONDS + 1
    (second,) = schedule.claim(now=later)
    # The first claimer finishing late must not take the member from the second
    assert schedule.done(first) is False
    assert schedule.due_at("job", "t1") == second.lease
    assert schedule.done(second) is True


def test_a_webhook_failing_again_during_the_pump_keeps_its_next_retry(
        redis: redis_lib.Redis, config: Config) -> None:
    services = Services.build(config)
    services.schedule.add("hook", "t1", time.time() - 1)

    def deliver_due(task_id: str) -> None:
        # The callbacks worker takes the message, the receiver fails again at
        # once, and the next attempt is scheduled before the pump moves on.
        services.schedule.add("hook", task_id, time.time() + 1)

    upkeep = Upkeep(LeanRedisBroker(client=services.redis, middleware=[]), services,
                    deliver_due=deliver_due)
    upkeep.pump()
    due = services.schedule.due_at("hook", "t1")
    services.redis.connection_pool.disconnect()
    assert due is not None and due <= time.time() + 1
