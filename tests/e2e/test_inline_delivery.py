"""The job worker delivers webhooks to healthy receivers itself; the queue keeps the rest.

Real gunicorn, dramatiq workers, redis-server and receiver, with the default
budget (250 ms). Which worker made an attempt is read from
``hookline_webhook_inline_total`` (the job worker's own attempts) and from
which processes are running at all. The job worker's attempt is the first of
the retry series: a schedule of k delays still means at most k + 1 requests,
every one of them in the attempts log.
"""
from __future__ import annotations

import os
import signal
from collections.abc import Callable

import redis as redis_lib

from callbacks import CallbackRegistry
from tests.e2e.test_webhooks import check_signature, deliveries, key_for, register, submit, task
from tests.metrics_util import scrape, value
from tests.procs import Receiver, Stack, queued, wait_until

INLINE = "hookline_webhook_inline_total"


def inline_count(stack: Stack, outcome: str) -> float:
    return value(scrape(f"{stack.url}/metrics"), INLINE, outcome=outcome)


def delivered(stack: Stack, auth: dict, task_id: str) -> bool:
    return bool(task(stack, auth, task_id)["callback"]["delivery"] == "delivered")


def test_a_healthy_receiver_gets_its_webhooks_from_the_job_worker(
        make_stack, receiver: Receiver, redis: redis_lib.Redis) -> None:  # type: ignore[no-untyped-def]
    # Given no callbacks worker at all: only the job worker can deliver
    stack = make_stack()
    stack.start_web()
    stack.start_worker()
    auth = key_for(stack)
    callback = register(stack, auth, receiver.url("/ok"))
    # When five tasks with the callback run
    ids = [submit(stack, auth, callback_id=callback["id"]) for _ in range(5)]
    # Then each webhook arrives once, signed, and its log shows one attempt
    # that fit in the job worker's budget (250 ms by default)
    wait_until(lambda: all(delivered(stack, auth, i) for i in ids), 30, "every webhook delivered")
    hooks = receiver.received("/ok")
    assert sorted(check_signature(h, callback["secret"])["data"]["task_id"] for h in hooks) == sorted(ids)
    for task_id in ids:
        log = deliveries(stack, auth, task_id)
        assert [(d["attempt"], d["status_code"], d["trigger"]) for d in log] == [(1, 204, "scheduled")]
        assert log[0]["duration_ms"] < 250
    assert inline_count(stack, "delivered") == 5
    # Nothing was left for a callbacks worker: no message, no lease
    assert queued(redis, "callbacks") == []
    assert redis.zcard("hl:schedule") == 0


def one_series(make_stack, receiver: Receiver, path: str,  # type: ignore[no-untyped-def]
               answer: Callable[[int], tuple[int, dict[str, str], float]]) -> tuple[Stack, dict, dict, str]:
    """A whole stack with a schedule of k = 3 delays, and a task ended with a callback to ``path``."""
    stack = make_stack(HOOKLINE_WEBHOOK_RETRY_SCHEDULE="1,1,1")
    stack.start()
    receiver.script[path] = answer
    auth = key_for(stack)
    callback = register(stack, auth, receiver.url(path))
    return stack, auth, callback, submit(stack, auth, callback_id=callback["id"])


def test_a_failing_receiver_is_retried_through_the_queue_with_the_same_webhook_id(
        make_stack, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    # Given a receiver that answers 500 twice, then 204, when a task ends
    stack, auth, callback, task_id = one_series(
        make_stack, receiver, "/flaky", lambda n: (500, {}, 0.0) if n <= 2 else (204, {}, 0.0))
    wait_until(lambda: delivered(stack, auth, task_id), 30, "delivered after retries")
    # Then the job worker's 500 is the series' first attempt, and the
    # callbacks worker made the retries on the schedule, every request logged
    # and with the same webhook-id
    hooks = receiver.received("/flaky")
    assert len(hooks) == 3
    assert len({h["headers"]["webhook-id"] for h in hooks}) == 1
    for hook in hooks:
        check_signature(hook, callback["secret"])
    log = deliveries(stack, auth, task_id)
    assert [(d["attempt"], d["status_code"], d["trigger"]) for d in log] == [
        (1, 500, "scheduled"), (2, 500, "scheduled"), (3, 204, "scheduled")]
    assert {d["webhook_id"] for d in log} == {hooks[0]["headers"]["webhook-id"]}
    assert inline_count(stack, "handed_off") == 1
    assert inline_count(stack, "delivered") == 0


def test_a_receiver_failing_every_request_gets_k_plus_one_all_logged(
        make_stack, receiver: Receiver, redis: redis_lib.Redis) -> None:  # type: ignore[no-untyped-def]
    # Given a receiver that answers every request with 500, and a schedule
    # of k = 3 delays, when a task ends
    stack, auth, callback, task_id = one_series(make_stack, receiver, "/down",
                                                lambda n: (500, {}, 0.0))
    wait_until(lambda: task(stack, auth, task_id)["callback"]["delivery"] == "failed", 30,
               "the delivery fails after its last attempt")
    # Then the receiver got k + 1 requests, the job worker's first among them,
    # all with one webhook-id, and the log lists each of them, numbered
    hooks = receiver.received("/down")
    assert len(hooks) == 4
    wid = hooks[0]["headers"]["webhook-id"]
    assert {h["headers"]["webhook-id"] for h in hooks} == {wid}
    log = deliveries(stack, auth, task_id)
    assert [(d["attempt"], d["status_code"], d["trigger"], d["webhook_id"]) for d in log] == [
        (n, 500, "scheduled", wid) for n in (1, 2, 3, 4)]
    assert all(d["duration_ms"] is not None for d in log)
    assert inline_count(stack, "handed_off") == 1
    # And the callback's failure streak began with the job worker's attempt
    record = CallbackRegistry(redis).get_for_delivery(callback["id"])
    assert record is not None
    assert record["failing_since"] and record["failing_since"] < hooks[1]["at"]
    # No more requests come: the series is over
    assert redis.zscore("hl:schedule", f"hook:{task_id}") is None
    assert queued(redis, "callbacks") == []


def test_a_slow_receiver_goes_to_the_queue_and_healthy_ones_stay_inline(
        make_stack, receiver: Receiver, redis: redis_lib.Redis) -> None:  # type: ignore[no-untyped-def]
    stack = make_stack()
    stack.start_web()
    stack.start_worker(threads=2)
    stack.start_callbacks()
    # Given a receiver that answers in 2 s beside a healthy one
    receiver.script["/slow"] = lambda n: (204, {}, 2.0)
    auth = key_for(stack)
    slow = register(stack, auth, receiver.url("/slow"))
    fast = register(stack, auth, receiver.url("/fast"))
    # When the slow one's first webhook is due
    first = submit(stack, auth, callback_id=slow["id"])
    wait_until(lambda: inline_count(stack, "handed_off") == 1, 30,
               "the job worker gives the slow receiver up within its budget")
    # ... and then more of both
    later = [submit(stack, auth, callback_id=slow["id"]) for _ in range(3)]
    healthy = [submit(stack, auth, callback_id=fast["id"]) for _ in range(10)]
    wait_until(lambda: all(delivered(stack, auth, i) for i in healthy), 30,
               "the healthy receiver's webhooks are delivered")
    # Then the healthy receiver got every webhook from the job worker, while
    # the slow one is left to the callbacks worker for its cool-down
    assert inline_count(stack, "delivered") == 10
    wait_until(lambda: all(delivered(stack, auth, i) for i in [first, *later]), 60,
               "the slow receiver's webhooks are delivered by the callbacks worker")
    assert inline_count(stack, "queued") == 3
    assert inline_count(stack, "handed_off") == 1
    for task_id in later:
        log = deliveries(stack, auth, task_id)
        assert [(d["attempt"], d["status_code"], d["trigger"]) for d in log] == [
            (1, 204, "scheduled")]
        # The callbacks worker's attempt, which waited for the answer
        assert log[0]["duration_ms"] >= 2000
    # The first slow webhook reached the receiver twice, with one webhook-id:
    # the job worker's attempt, cut short by its budget and logged as the
    # first, then the queue's, at once and with the full timeout
    log = deliveries(stack, auth, first)
    assert [(d["attempt"], d["status_code"], d["trigger"]) for d in log] == [
        (1, None, "scheduled"), (2, 204, "scheduled")]
    assert log[0]["error"] == "timeout after 0.25s"
    assert log[1]["duration_ms"] >= 2000
    hooks = [h for h in receiver.received("/slow")
             if check_signature(h, slow["secret"])["data"]["task_id"] == first]
    assert len(hooks) == 2
    assert {h["headers"]["webhook-id"] for h in hooks} == {log[0]["webhook_id"]}
    ids = [check_signature(h, slow["secret"])["data"]["task_id"] for h in receiver.received("/slow")]
    assert sorted(ids) == sorted([first, first, *later])
    # A receiver answering within the timeout is not failing: no streak
    record = CallbackRegistry(redis).get_for_delivery(slow["id"])
    assert record is not None and not record["failing_since"]


def test_a_job_worker_killed_during_its_attempt_leaves_the_delivery_to_the_queue(
        make_stack, receiver: Receiver, redis: redis_lib.Redis) -> None:  # type: ignore[no-untyped-def]
    stack = make_stack()
    stack.start_web()
    stack.start_callbacks()
    # A budget long enough to be killed inside, and a receiver that holds
    # the first request open far longer than that
    worker = stack.start_worker(HOOKLINE_INLINE_DELIVERY_MS="5000")
    receiver.script["/hang"] = lambda n: (204, {}, 120.0) if n == 1 else (204, {}, 0.0)
    auth = key_for(stack)
    callback = register(stack, auth, receiver.url("/hang"))
    task_id = submit(stack, auth, callback_id=callback["id"])
    # Given the task ended and the job worker is waiting for the receiver
    wait_until(lambda: receiver.received("/hang"), 30, "the job worker's attempt arrives")
    assert task(stack, auth, task_id)["status"] == "SUCCESS"
    # When every job worker process is SIGKILLed
    os.killpg(worker.pid, signal.SIGKILL)
    worker.proc.wait(timeout=10)
    assert task(stack, auth, task_id)["callback"]["delivery"] == "pending"
    assert deliveries(stack, auth, task_id) == []
    assert redis.zscore("hl:schedule", f"hook:{task_id}") is not None
    # Then the lease runs out and the callbacks worker delivers it, with the
    # same webhook-id, its attempt logged as the only one
    wait_until(lambda: delivered(stack, auth, task_id), 40, "the callbacks worker delivers it")
    hooks = receiver.received("/hang")
    assert len(hooks) == 2
    assert hooks[0]["headers"]["webhook-id"] == hooks[1]["headers"]["webhook-id"]
    check_signature(hooks[1], callback["secret"])
    log = deliveries(stack, auth, task_id)
    assert [(d["attempt"], d["status_code"]) for d in log] == [(1, 204)]
    assert log[0]["webhook_id"] == hooks[0]["headers"]["webhook-id"]
    # And nothing else is due: it was delivered once
    assert redis.zcard("hl:schedule") == 0
    assert queued(redis, "callbacks") == []
