"""The retry policy: which answers are retried, when, and when to give up."""
from __future__ import annotations

import email.utils
import enum
import random
import time
from collections.abc import Mapping, Sequence


class Verdict(enum.Enum):
    DELIVERED = "delivered"   # any 2xx
    RETRY = "retry"           # timeouts, connection errors, 3xx, 5xx, 408, 429
    FINAL = "final"           # other 4xx: retrying this event would not help
    DISABLE = "disable"       # 410, or "webhook-delivery: disable"
    ABORT = "abort"           # "webhook-delivery: abort-message"


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return str(value).strip().lower()
    return ""


def classify(status_code: int | None, headers: Mapping[str, str]) -> Verdict:
    """What a receiver's answer means for this event and this endpoint."""
    directive = _header(headers, "webhook-delivery")
    if directive == "disable" or status_code == 410:
        return Verdict.DISABLE
    if directive == "abort-message":
        return Verdict.ABORT
    if status_code is None:
        return Verdict.RETRY
    if 200 <= status_code < 300:
        return Verdict.DELIVERED
    if status_code in (408, 429) or 300 <= status_code < 400 or status_code >= 500:
        return Verdict.RETRY
    return Verdict.FINAL


def status_class(status_code: int | None) -> str:
    """``2xx`` … ``5xx``, or ``error`` when no answer came."""
    if status_code is None or not 100 <= status_code < 600:
        return "error"
    return f"{status_code // 100}xx"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date); garbage is ``None``."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(min(int(value), 10**9))
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment is None or moment.tzinfo is None:
        return None
    return max(0.0, moment.timestamp() - (time.time() if now is None else now))


class RetryPolicy:
    """A schedule of k delays (each ±``jitter``) means at most k + 1 attempts.

    ``Retry-After`` is honoured as a floor, up to ``retry_after_cap`` seconds,
    so a receiver cannot push its retries out for ever.
    """

    def __init__(
        self, schedule: Sequence[float], jitter: float = 0.2, retry_after_cap: float = 3600.0
    ) -> None:
        self.schedule = tuple(float(s) for s in schedule)
        self.jitter = jitter
        self.retry_after_cap = retry_after_cap

    @property
    def max_attempts(self) -> int:
        return len(self.schedule) + 1

    def delay_for(
        self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None
    ) -> float | None:
        """Seconds before the attempt after ``attempt`` (1-based); ``None`` when exhausted."""
        if attempt < 1 or attempt > len(self.schedule):
            return None
        base = self.schedule[attempt - 1]
        delay = base * (rng or random).uniform(1 - self.jitter, 1 + self.jitter)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.retry_after_cap))
        return delay
