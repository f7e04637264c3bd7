"""The retry policy: what a receiver's answer means, when to try again, when to stop."""
from __future__ import annotations

import datetime as dt
import email.utils
import enum
import random
import time
from collections.abc import Mapping, Sequence
from typing import Protocol

#: Spread of each scheduled delay: 0.2 means ±20 %, as Svix does.
DEFAULT_JITTER = 0.2
#: Longest wait, in seconds, that a receiver's ``Retry-After`` can ask for.
DEFAULT_RETRY_AFTER_CAP = 3600.0
#: ``Retry-After`` values beyond this many seconds are read as this many.
_RETRY_AFTER_LIMIT = 10**9


class Verdict(enum.Enum):
    """What one attempt's outcome means for the event and for the endpoint."""

    DELIVERED = "delivered"  #: any 2xx
    RETRY = "retry"          #: no answer (timeout, connection error), 3xx, 5xx, 408, 429
    FINAL = "final"          #: other 4xx: this event is not retried
    DISABLE = "disable"      #: 410, or ``webhook-delivery: disable``: the endpoint is disabled
    ABORT = "abort"          #: ``webhook-delivery: abort-message``: stop retrying this event


class _Uniform(Protocol):
    def uniform(self, a: float, b: float, /) -> float: ...


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        for key, candidate in headers.items():
            if key.lower() == name:
                value = candidate
                break
    return str(value).strip().lower() if value is not None else ""


def classify(status_code: int | None, headers: Mapping[str, str]) -> Verdict:
    """What a receiver's answer means.

    ``status_code`` is ``None`` when no answer came (timeout, connection
    error). A ``webhook-delivery`` response header (any case) wins over the
    status: ``disable`` before ``abort-message``.
    """
    directive = _header(headers, "webhook-delivery")
    if directive == "disable" or status_code == 410:
        return Verdict.DISABLE
    if directive == "abort-message":
        return Verdict.ABORT
    if status_code is None:
        return Verdict.RETRY
    if 200 <= status_code < 300:
        return Verdict.DELIVERED
    if 400 <= status_code < 500 and status_code not in (408, 429):
        return Verdict.FINAL
    return Verdict.RETRY  # 3xx, 408, 429, 5xx, and anything unexpected


def status_class(status_code: int | None) -> str:
    """``"2xx"`` … ``"5xx"`` for a metric label, or ``"error"`` when no (valid) answer came."""
    if status_code is None or not 100 <= status_code < 600:
        return "error"
    return f"{status_code // 100}xx"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """A ``Retry-After`` header as seconds from ``now`` (default: the clock).

    Takes delta-seconds (``120``) or an HTTP date; a date in the past is 0.
    Anything else, or ``None``, gives ``None``.
    """
    if value is None:
        return None
    text = str(value).strip()
    if text.isascii() and text.isdigit():
        return float(min(int(text), _RETRY_AFTER_LIMIT))
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if moment.tzinfo is None:  # "-0000" means UTC with no claim about the local zone
        moment = moment.replace(tzinfo=dt.UTC)
    current = time.time() if now is None else now
    return max(0.0, moment.timestamp() - current)


class RetryPolicy:
    """When to try a webhook again.

    A schedule of k delays (seconds) means at most k + 1 attempts. Each delay
    is spread by ``±jitter`` so retries of many events do not arrive together;
    a receiver's ``Retry-After`` is a floor, honoured up to ``retry_after_cap``
    seconds so that it cannot push its retries out for ever.
    """

    def __init__(
        self,
        schedule: Sequence[float],
        jitter: float = DEFAULT_JITTER,
        retry_after_cap: float = DEFAULT_RETRY_AFTER_CAP,
    ) -> None:
        """Raises ``ValueError`` for a negative delay, a jitter outside [0, 1) or a negative cap."""
        self.schedule = tuple(float(delay) for delay in schedule)
        if any(delay < 0 for delay in self.schedule):
            raise ValueError("retry delays must not be negative")
        if not 0 <= jitter < 1:
            raise ValueError("jitter must be at least 0 and less than 1")
        if retry_after_cap < 0:
            raise ValueError("retry_after_cap must not be negative")
        self.jitter = jitter
        self.retry_after_cap = retry_after_cap

    def __repr__(self) -> str:
        return (f"RetryPolicy(schedule={list(self.schedule)!r}, jitter={self.jitter!r}, "
                f"retry_after_cap={self.retry_after_cap!r})")

    @property
    def max_attempts(self) -> int:
        """Attempts in a full series: the first one and one after each delay."""
        return len(self.schedule) + 1

    def delay_for(
        self, attempt: int, retry_after: float | None = None, rng: _Uniform = random
    ) -> float | None:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        Returns ``None`` when that was the last attempt of the schedule.

        Raises:
            ValueError: ``attempt`` is below 1.
        """
        if attempt < 1:
            raise ValueError("attempts are numbered from 1")
        if attempt > len(self.schedule):
            return None
        delay = self.schedule[attempt - 1] * rng.uniform(1 - self.jitter, 1 + self.jitter)
        if retry_after is not None:
            delay = max(delay, min(max(retry_after, 0.0), self.retry_after_cap))
        return delay
