"""The retry policy: schedule, jitter, Retry-After, exhaustion, and what each answer means."""
from __future__ import annotations

import random

import pytest

from callbacks import RetryPolicy, Verdict, classify, parse_retry_after, status_class

SPEC_SCHEDULE = [5, 300, 1800, 7200, 18000, 36000, 36000]


def test_a_schedule_of_k_delays_means_k_plus_one_attempts() -> None:
    policy = RetryPolicy(SPEC_SCHEDULE)
    assert policy.max_attempts == 8
    assert [policy.delay_for(n) is None for n in range(1, 9)] == [False] * 7 + [True]
    assert RetryPolicy([]).max_attempts == 1
    assert RetryPolicy([]).delay_for(1) is None


def test_each_delay_is_its_step_spread_by_the_jitter() -> None:
    policy = RetryPolicy(SPEC_SCHEDULE, jitter=0.2)
    rng = random.Random(42)
    for attempt, base in enumerate(SPEC_SCHEDULE, start=1):
        delays = [policy.delay_for(attempt, rng=rng) for _ in range(300)]
        assert all(d is not None and base * 0.8 <= d <= base * 1.2 for d in delays)
        # spread over the whole band, not stuck at one value
        assert min(delays) < base * 0.85 and max(delays) > base * 1.15  # type: ignore[type-var]


def test_no_jitter_gives_the_schedule_exactly() -> None:
    policy = RetryPolicy([1, 2.5, 3], jitter=0)
    assert [policy.delay_for(n) for n in (1, 2, 3, 4)] == [1.0, 2.5, 3.0, None]


def test_the_same_seed_gives_the_same_delays() -> None:
    policy = RetryPolicy(SPEC_SCHEDULE)
    first = [policy.delay_for(n, rng=random.Random(7)) for n in range(1, 8)]
    again = [policy.delay_for(n, rng=random.Random(7)) for n in range(1, 8)]
    assert first == again


def test_retry_after_is_a_floor_up_to_the_cap() -> None:
    policy = RetryPolicy([5, 300], jitter=0.2, retry_after_cap=600)
    rng = random.Random(1)
    assert policy.delay_for(1, retry_after=60, rng=rng) == 60            # later than the schedule
    assert policy.delay_for(1, retry_after=10**6, rng=rng) == 600        # never beyond the cap
    assert 240 <= policy.delay_for(2, retry_after=1, rng=rng) <= 360     # never sooner than the schedule
    assert 4 <= policy.delay_for(1, retry_after=-30, rng=rng) <= 6       # nonsense is ignored
    assert policy.delay_for(3, retry_after=60) is None                   # exhausted stays exhausted


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        RetryPolicy([5, -1])
    with pytest.raises(ValueError):
        RetryPolicy([5], jitter=1.0)
    with pytest.raises(ValueError):
        RetryPolicy([5], jitter=-0.1)
    with pytest.raises(ValueError):
        RetryPolicy([5], retry_after_cap=-1)
    with pytest.raises(ValueError):
        RetryPolicy([5]).delay_for(0)


NOW = 1445412470.0  # 2015-10-21 07:27:50 UTC


@pytest.mark.parametrize("value,seconds", [
    ("120", 120.0),
    (" 7 ", 7.0),
    ("0", 0.0),
    ("99999999999999999999", 1e9),
    ("Wed, 21 Oct 2015 07:28:00 GMT", 10.0),
    ("Wed, 21 Oct 2015 07:28:00 -0000", 10.0),
    ("Wed, 21 Oct 2015 09:28:00 +0200", 10.0),
    ("Wed, 21 Oct 2015 07:00:00 GMT", 0.0),      # a date in the past: retry now
    (None, None),
    ("", None),
    ("soon", None),
    ("-5", None),
    ("1.5", None),
    ("١٢٠", None),
    ("Wed, 99 Oct 2015 07:28:00 GMT", None),
    ("Wed, 21 Oct 2015", None),
])
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


def test_parse_retry_after_uses_the_clock_by_default() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert parse_retry_after("30") == 30.0


@pytest.mark.parametrize("status,headers,verdict", [
    (200, {}, Verdict.DELIVERED),
    (201, {}, Verdict.DELIVERED),
    (204, {}, Verdict.DELIVERED),
    (299, {}, Verdict.DELIVERED),
    (None, {}, Verdict.RETRY),
    (301, {}, Verdict.RETRY),
    (302, {"location": "https://elsewhere.example/"}, Verdict.RETRY),
    (307, {}, Verdict.RETRY),
    (408, {}, Verdict.RETRY),
    (429, {"retry-after": "30"}, Verdict.RETRY),
    (500, {}, Verdict.RETRY),
    (502, {}, Verdict.RETRY),
    (503, {}, Verdict.RETRY),
    (599, {}, Verdict.RETRY),
    (400, {}, Verdict.FINAL),
    (401, {}, Verdict.FINAL),
    (403, {}, Verdict.FINAL),
    (404, {}, Verdict.FINAL),
    (413, {}, Verdict.FINAL),
    (422, {}, Verdict.FINAL),
    (410, {}, Verdict.DISABLE),
    (200, {"webhook-delivery": "disable"}, Verdict.DISABLE),
    (500, {"Webhook-Delivery": "Disable"}, Verdict.DISABLE),
    (None, {"webhook-delivery": "disable"}, Verdict.DISABLE),
    (500, {"webhook-delivery": "abort-message"}, Verdict.ABORT),
    (200, {"WEBHOOK-DELIVERY": " abort-message "}, Verdict.ABORT),
    (410, {"webhook-delivery": "abort-message"}, Verdict.DISABLE),        # disable wins
    (503, {"webhook-delivery": "something-else"}, Verdict.RETRY),         # unknown directives ignored
    (404, {"x-other": "disable"}, Verdict.FINAL),
])
def test_classify(status: int | None, headers: dict[str, str], verdict: Verdict) -> None:
    assert classify(status, headers) is verdict


@pytest.mark.parametrize("status,label", [
    (200, "2xx"), (204, "2xx"), (302, "3xx"), (404, "4xx"), (410, "4xx"), (503, "5xx"),
    (None, "error"), (99, "error"), (600, "error"), (101, "1xx"),
])
def test_status_class(status: int | None, label: str) -> None:
    assert status_class(status) == label
