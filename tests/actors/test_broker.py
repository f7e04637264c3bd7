"""The Redis broker against a real redis-server: what a worker process sees."""
from __future__ import annotations

import logging
import threading
import time

import orjson
import pytest
import redis as redis_lib
from dramatiq import Message, Middleware
from dramatiq.common import current_millis
from dramatiq.middleware import SkipMessage
from flask.testing import FlaskClient

from actors import consumer as consumer_module
from actors.held import HeldMessage, held_message
from actors.redis_broker import LeanRedisBroker
from actors.services import Services
from hookline.config import Config
from tests.procs import held, queued


def message(*args: str, queue: str = "jobs") -> Message:
    return Message(queue_name=queue, actor_name="noop", args=args, kwargs={}, options={})


@pytest.fixture
def broker(redis: redis_lib.Redis) -> LeanRedisBroker:
    broker = LeanRedisBroker(client=redis, heartbeat_timeout=1000, middleware=[])
    broker.declare_queue("jobs")
    return broker


def take(broker: LeanRedisBroker, count: int, prefetch: int = 10) -> list[HeldMessage]:
    consumer = broker.consume("jobs", prefetch=prefetch, timeout=100)
    taken = []
    for _ in range(count * 3):
        got = next(consumer)
        if got is not None:
            assert isinstance(got, HeldMessage)
            taken.append(got)
        if len(taken) == count:
            break
    return taken


def test_messages_come_out_in_order_and_are_held_until_acknowledged(
    broker: LeanRedisBroker, redis: redis_lib.Redis
) -> None:
    for i in range(5):
        broker.enqueue(message(f"t{i}"))
    consumer = broker.consume("jobs", prefetch=3, timeout=100)
    got = [next(consumer) for _ in range(3)]
    assert [m.args for m in got] == [("t0",), ("t1",), ("t2",)]
    # Taking moves them, atomically, to this process's held list
    assert len(queued(redis, "jobs")) == 2 and held(redis, "jobs") == 3
    # A full prefetch takes no more
    assert next(consumer) is None and held(redis, "jobs") == 3
    for m in got:
        consumer.ack(m)
    assert held(redis, "jobs") == 0
    assert [m.args for m in (next(consumer), next(consumer))] == [("t3",), ("t4",)]


def test_an_idle_consumer_wakes_for_a_new_message(broker: LeanRedisBroker) -> None:
    consumer = broker.consume("jobs", prefetch=2, timeout=100)
    assert next(consumer) is None  # waited 0.1 s on the empty queue
    broker.enqueue(message("late"))
    got = next(consumer)
    assert got is not None and got.args == ("late",)


def test_a_dead_workers_messages_go_back_to_the_front(
    broker: LeanRedisBroker, redis: redis_lib.Redis
) -> None:
    for i in range(4):
        broker.enqueue(message(f"t{i}"))
    taken = take(broker, 2, prefetch=2)
    assert [m.args for m in taken] == [("t0",), ("t1",)]
    # While its heartbeat is fresh, nothing moves
    other = LeanRedisBroker(client=redis, heartbeat_timeout=1000, middleware=[])
    other.declare_queue("jobs")
    assert other.recover() == 0
    # When it stops beating, another process gives its messages back, oldest first
    redis.zadd(broker.heartbeats_key, {broker.broker_id: 0})
    other.heartbeat()
    assert other.recover() == 2
    assert held(redis, "jobs") == 0
    assert [tuple(orjson.loads(raw)["args"]) for raw in queued(redis, "jobs")] == [
        ("t0",), ("t1",), ("t2",), ("t3",)]


def test_requeue_puts_unstarted_messages_back_first(
    broker: LeanRedisBroker, redis: redis_lib.Redis
) -> None:
    for i in range(3):
        broker.enqueue(message(f"t{i}"))
    consumer = broker.consume("jobs", prefetch=3, timeout=100)
    first = next(consumer)
    second = next(consumer)
    assert first is not None and second is not None
    # A worker shutting down requeues what it holds but has not started
    consumer.requeue([second])
    consumer.close()
    assert held(redis, "jobs") == 1  # the first is still being worked on
    assert [orjson.loads(raw)["args"] for raw in queued(redis, "jobs")] == [["t1"], ["t2"]]


def test_a_lost_reply_is_taken_up_by_the_next_consumer(
    broker: LeanRedisBroker, redis: redis_lib.Redis
) -> None:
    broker.enqueue(message("orphan"))
    # Given a message Redis moved to the held list whose reply never arrived
    keys = broker.keys("jobs")
    redis.lmove(keys.queue, keys.held(broker.broker_id), "RIGHT", "LEFT")
    # When the consumer is made again (as Dramatiq does after a connection error)
    got = next(broker.consume("jobs", prefetch=2, timeout=100))
    # Then the message is delivered, not left held for the process's lifetime
    assert got is not None and got.args == ("orphan",)
    assert held(redis, "jobs") == 1


def test_an_actor_can_acknowledge_in_its_own_write(
    broker: LeanRedisBroker, redis: redis_lib.Redis
) -> None:
    broker.enqueue(message("t"))
    [got] = take(broker, 1)
    mine = held_message(got)
    assert mine is not None
    redis.lrem(mine.held_key, -1, mine.raw)
    mine.acknowledged = True
    assert held_message(got) is None
    broker.consume("jobs", prefetch=1, timeout=100).ack(got)  # no second LREM needed
    assert held(redis, "jobs") == 0


def test_a_message_sent_again_goes_back_first_unless_already_acknowledged(
    broker: LeanRedisBroker, redis: redis_lib.Redis
) -> None:
    for name in ("a", "b", "c"):
        broker.enqueue(message(name))
    first, second = take(broker, 2, prefetch=2)
    consumer = broker.consume("jobs", prefetch=1, timeout=100)
    # An actor that could not reach Redis asks for its message to be sent again
    first.send_again = True
    consumer.ack(first)
    assert [orjson.loads(raw)["args"] for raw in queued(redis, "jobs")] == [["a"], ["c"]]
    # One whose own last write had acknowledged it is not sent twice
    redis.lrem(second.held_key, -1, second.raw)
    second.send_again = True
    consumer.ack(second)
    assert held(redis, "jobs") == 0
    assert len(queued(redis, "jobs")) == 2


def test_nack_and_garbage_go_to_the_dead_letters(
    broker: LeanRedisBroker, redis: redis_lib.Redis
) -> None:
    broker.enqueue(message("bad"))
    redis.lpush(broker.keys("jobs").queue, b"not a message")
    consumer = broker.consume("jobs", prefetch=5, timeout=100)
    got = next(consumer)
    assert got is not None
    consumer.nack(got)
    assert next(consumer) is None  # the garbage is set aside, not delivered
    assert held(redis, "jobs") == 0
    dead = redis.lrange(broker.keys("jobs").dead, 0, -1)
    assert len(dead) == 2 and b"not a message" in dead


def test_a_delayed_message_waits_on_the_delay_queue(
    broker: LeanRedisBroker, redis: redis_lib.Redis
) -> None:
    sent = broker.enqueue(message("later"), delay=60_000)
    assert sent.queue_name == "jobs.DQ" and sent.options["eta"] > 0
    assert queued(redis, "jobs") == [] and len(queued(redis, "jobs.DQ")) == 1
    assert broker.get_declared_delay_queues() == {"jobs.DQ"}


def test_single_messages_are_taken_alone_and_a_backlog_in_one_round_trip(
    broker: LeanRedisBroker, redis: redis_lib.Redis
) -> None:
    consumer = broker.consume("jobs", prefetch=10, timeout=100)
    assert next(consumer) is None  # the queue is empty: no backlog
    redis.config_resetstat()
    # When messages arrive one at a time and are taken at once (stamped
    # ahead, so that a slow machine cannot age them), each comes alone,
    # without the batch script
    for i in range(3):
        broker.enqueue(message(f"now{i}").copy(message_timestamp=current_millis() + 60_000))
        got = next(consumer)
        assert got is not None and got.args == (f"now{i}",)
        consumer.ack(got)
    assert "cmdstat_evalsha" not in redis.info("commandstats")
    # When messages have waited a minute, the first one taken says so, and
    # the next fetch takes all the rest in one round trip
    for i in range(6):
        broker.enqueue(message(f"old{i}").copy(message_timestamp=current_millis() - 60_000))
    first = next(consumer)
    assert first is not None and first.args == ("old0",) and len(queued(redis, "jobs")) == 5
    second = next(consumer)
    assert second is not None and second.args == ("old1",)
    assert queued(redis, "jobs") == [] and held(redis, "jobs") == 6
    assert [m.args for m in (next(consumer) for _ in range(4))] == [(f"old{i}",) for i in range(2, 6)]


def test_a_full_consumer_sleeps_until_settled_messages_free_half_its_prefetch(
    broker: LeanRedisBroker, redis: redis_lib.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a consumer with a backlog behind it and its prefetch of 4 full
    # (a missed wake-up would only end after the 30 s idle wait set here)
    monkeypatch.setattr(consumer_module, "IDLE_WAIT_SECONDS", 30.0)
    for i in range(10):
        broker.enqueue(message(f"old{i}").copy(message_timestamp=current_millis() - 60_000))
    consumer = broker.consume("jobs", prefetch=4, timeout=60_000)
    taken = [next(consumer) for _ in range(4)]
    assert all(isinstance(m, HeldMessage) for m in taken) and len(queued(redis, "jobs")) == 6
    waiter = threading.Thread(target=next, args=(consumer,))
    waiter.start()
    # When one message settles, one free place is not worth a round trip
    consumer.ack(taken[0])
    waiter.join(0.3)
    assert waiter.is_alive()
    # When a second one settles, the consumer wakes at once
    consumer.ack(taken[1])
    waiter.join(5.0)
    assert not waiter.is_alive()
    # Then it takes both free places in one fetch
    got = next(consumer)
    assert got is not None and got.args == ("old4",)
    assert len(queued(redis, "jobs")) == 4 and held(redis, "jobs") == 4


def test_fetching_survives_a_redis_that_forgot_its_scripts(
    broker: LeanRedisBroker, redis: redis_lib.Redis
) -> None:
    for i in range(3):
        broker.enqueue(message(f"t{i}"))
    consumer = broker.consume("jobs", prefetch=5, timeout=100)
    # Given a Redis restarted since the scripts were loaded
    redis.script_flush()
    # Then every message still comes out, in order
    got = [next(consumer) for _ in range(4)]
    assert [m.args for m in got if m is not None] == [("t0",), ("t1",), ("t2",)]
    assert held(redis, "jobs") == 3


def test_the_reconciler_resends_only_tasks_whose_message_is_gone(
    client: FlaskClient, auth: dict, config: Config, redis: redis_lib.Redis
) -> None:
    from actors.upkeep import Upkeep

    services = Services.build(config.replace(reconcile_after=10))
    broker = LeanRedisBroker(client=redis, heartbeat_timeout=10_000, middleware=[])
    broker.declare_queue("jobs")
    upkeep = Upkeep(broker, services)
    seed = {"vector_data": [[0.1, 0.2]]}
    lost, waiting = (client.post("/tasks", json=seed, headers=auth).get_json()["task_id"]
                     for _ in range(2))
    # Given one task whose message was deleted by hand, long ago, while a
    # newer task's message still waits on the queue
    [lost_message, waiting_message] = queued(redis, "jobs")
    assert redis.lrem("hl:q:jobs", 0, lost_message) == 1
    written = {lost: time.time() - 100, waiting: time.time() - 50}
    redis.zadd("hl:active", written)
    older = {**orjson.loads(waiting_message), "message_timestamp": int(written[waiting] * 1000)}
    redis.lset("hl:q:jobs", 0, orjson.dumps(older))
    # When the reconciler runs
    assert upkeep.reconcile() == 1
    # Then the lost task is sent again and the waiting one is left alone
    args = [orjson.loads(raw)["args"] for raw in queued(redis, "jobs")]
    assert args == [[waiting], [lost]]
    assert redis.hget(f"hl:task:{lost}", "status") == b"PENDING"


class Recorder(Middleware):
    def __init__(self, name: str, calls: list[str], fail: bool = False) -> None:
        self.name, self.calls, self.fail = name, calls, fail

    def before_process_message(self, broker: object, message: object) -> None:
        self.calls.append(f"{self.name}:before")
        if self.fail:
            raise RuntimeError("a middleware bug")

    def after_process_message(self, broker: object, message: object, *, result: object = None,
                              exception: object = None) -> None:
        self.calls.append(f"{self.name}:after")


class Skipper(Middleware):
    def before_process_message(self, broker: object, message: object) -> None:
        raise SkipMessage()


def test_middleware_hears_every_signal_in_dramatiqs_order(
        redis: redis_lib.Redis, caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []
    broker = LeanRedisBroker(client=redis, middleware=[Recorder("a", calls), Middleware()])
    broker.add_middleware(Recorder("b", calls, fail=True))  # added later: heard too
    with caplog.at_level(logging.CRITICAL):
        broker.emit_before("process_message", message("t"))
        broker.emit_after("process_message", message("t"), result=None)
        broker.emit_before("ack", message("t"))  # nobody handles it: nothing happens
        broker.emit_after("no_such_signal")  # a signal no middleware knows: nothing happens
    # before_* in order, after_* in reverse; a failing middleware is logged, not raised.
    assert calls == ["a:before", "b:before", "b:after", "a:after"]
    assert "Unexpected failure in before_process_message" in caplog.text
    broker.add_middleware(Skipper())
    with pytest.raises(SkipMessage):  # a MiddlewareError still stops the message
        broker.emit_before("process_message", message("t"))


def test_a_queue_can_read_a_key_with_every_fetch(redis: redis_lib.Redis) -> None:
    broker = LeanRedisBroker(client=redis, heartbeat_timeout=1000, middleware=[],
                             fetch_with={"jobs": "counter"})
    broker.declare_queue("jobs")
    consumer = broker.consume("jobs", prefetch=1, timeout=100)
    broker.enqueue(message("a"))
    before = time.monotonic()
    first = next(consumer)
    assert isinstance(first, HeldMessage) and first.fetched_with == b""  # no such key yet
    assert before <= first.fetched_at <= time.monotonic()
    redis.set("counter", 7)
    broker.enqueue(message("b"))
    consumer.ack(first)
    second = next(consumer)
    assert isinstance(second, HeldMessage) and second.fetched_with == b"7"
    assert first.fetched_at < second.fetched_at <= time.monotonic()
    other = LeanRedisBroker(client=redis, heartbeat_timeout=1000, middleware=[])
    other.declare_queue("jobs")
    other.enqueue(message("c"))
    third = next(other.consume("jobs", prefetch=1, timeout=100))
    assert isinstance(third, HeldMessage) and third.fetched_with is None
