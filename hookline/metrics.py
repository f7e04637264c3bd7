"""Every Prometheus metric Hookline exports (names are part of the contract).

prometheus-client picks its multiprocess value class when it is imported, from
``PROMETHEUS_MULTIPROC_DIR``; the run scripts set and empty that folder before
any process starts, so several gunicorn and Dramatiq processes add up.
Queue-level gauges are not here: they are read from the broker once per
scrape (``actors.queues.QueueCollector``).

Exact and best effort: ``hookline_tasks_finished_total`` is counted in Redis
by the same step that ends a task (``FinishedCollector`` reads it at each
scrape), so a killed worker or a lost answer can neither drop nor double a
count. Every other counter and histogram lives in the process that observes
it, after the Redis step it describes: a process killed between the two
loses that observation, so those are best effort. No label ever holds a task id, a
URL, a tenant or a key.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import redis
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from hookline import __version__, keys

#: Bucket bounds in seconds for sub-second work (API, queue wait, delivery).
FAST_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 300.0, float("inf"),
)
#: Bucket bounds in seconds for jobs, which may run for minutes.
JOB_BUCKETS = (
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
    float("inf"),
)

tasks_submitted = Counter("hookline_tasks_submitted", "Tasks accepted by the API.")
task_retries = Counter(
    "hookline_task_retries", "Task runs that failed and were scheduled again.", ["actor"]
)
tasks_running = Gauge(
    "hookline_tasks_running", "Tasks running now.", ["actor"], multiprocess_mode="livesum"
)
task_queue_wait = Histogram(
    "hookline_task_queue_wait_seconds",
    "From a message's enqueue to the start of its run.",
    ["actor"],
    buckets=FAST_BUCKETS,
)
task_run = Histogram(
    "hookline_task_run_seconds", "Run time of one attempt.", ["actor", "outcome"],
    buckets=JOB_BUCKETS,
)
task_end_to_end = Histogram(
    "hookline_task_end_to_end_seconds",
    "From submission to the terminal state.",
    ["actor", "outcome"],
    buckets=JOB_BUCKETS,
)
webhook_attempts = Counter(
    "hookline_webhook_attempts", "Webhook delivery attempts.", ["result", "status_class"]
)
webhook_delivery = Histogram(
    "hookline_webhook_delivery_seconds",
    "From a task's terminal state to its webhook being delivered.",
    buckets=FAST_BUCKETS,
)
webhook_attempts_per_delivery = Histogram(
    "hookline_webhook_attempts_per_delivery",
    "Attempts a delivery took to end (delivered or failed).",
    buckets=(1, 2, 3, 4, 5, 6, 8, 10, 15, 20, float("inf")),
)
callbacks_disabled = Counter(
    "hookline_callbacks_disabled", "Callbacks disabled by delivery outcomes.", ["reason"]
)
webhook_inline = Counter(
    "hookline_webhook_inline",
    "First webhook attempts the job worker made itself, by outcome: delivered, handed_off "
    "(no 2xx within the budget: the callbacks worker takes over) or queued (not attempted: "
    "the receiver is failing or cooling down).",
    ["outcome"],
)
http_requests = Counter(
    "hookline_http_requests", "HTTP requests answered.", ["method", "route", "status"]
)
http_duration = Histogram(
    "hookline_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["method", "route"],
    buckets=FAST_BUCKETS,
)
task_chunks = Counter(
    "hookline_task_chunks", "Chunks of large jobs that ended, by outcome.", ["outcome"]
)
upload_bytes = Counter(
    "hookline_upload_bytes", "Bytes of uploads recorded in the blob store."
)
redis_failovers = Counter(
    "hookline_redis_failovers",
    "Times this process found the Redis primary at a new address (Sentinel).",
)
build_info = Gauge(
    "hookline_build_info", "Build information.", ["version"], multiprocess_mode="livemax"
)

index_vectors = Gauge(
    "hookline_index_vectors", "Vectors in the search index of this host (all collections).",
    multiprocess_mode="livemax",
)
index_pending_vectors = Gauge(
    "hookline_index_pending_vectors",
    "Vectors searchable by an exact scan that a graph has not taken in yet (all collections).",
    multiprocess_mode="livemax",
)
index_lag = Histogram(
    "hookline_index_lag_seconds", "From a task's end to its vectors being searchable.",
    buckets=FAST_BUCKETS,
)
search_duration = Histogram(
    "hookline_search_duration_seconds", "Time to answer one search request (a batch is one).",
    buckets=FAST_BUCKETS,
)


_children: dict[tuple[Any, ...], Any] = {}


def child(metric: Any, *values: str) -> Any:
    """``metric.labels(*values)``, made once per process and then looked up.

    ``labels()`` validates and locks on every call; the actors use a few
    children for every message.
    """
    key = (metric, *values)
    found = _children.get(key)
    if found is None:
        found = _children[key] = metric.labels(*values)
    return found


#: ``(method, route, status)`` -> the request counter and duration children;
#: ``labels()`` validates and locks on every call, a dict lookup does not.
_http_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


#: The ``method`` label's values besides ``other``: the standard HTTP methods.
#: Anything a client makes up is ``other``, so no request adds a series.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS",
                          "TRACE", "CONNECT"})


def observe_http_request(method: str, route: str, status: int, seconds: float) -> None:
    """Count one answered HTTP request and observe its duration.

    ``route`` must be a URL rule's template (or one fixed value for no
    match), never the path; ``method`` is bounded here.
    """
    if method not in HTTP_METHODS:
        method = "other"
    children = _http_children.get((method, route, status))
    if children is None:
        children = (
            http_requests.labels(method, route, str(status)),
            http_duration.labels(method, route),
        )
        _http_children[(method, route, status)] = children
    children[0].inc()
    children[1].observe(seconds)


def mark_build() -> None:
    """Set ``hookline_build_info`` for this process (called at process start)."""
    build_info.labels(version=__version__).set(1)


#: Label values known in advance, so every series exists (at 0) from the
#: first scrape and rate() and alerts see it before the first event.
ACTORS = ("process_vectors", "deliver_webhook")
OUTCOMES = ("success", "failure", "revoked")
DISABLE_REASONS = ("gone", "receiver_request", "failing", "manual")
INLINE_OUTCOMES = ("delivered", "handed_off", "queued")


def initialise() -> None:
    """Create every known series of this process's metrics at zero."""
    mark_build()
    job = ACTORS[0]
    for outcome in OUTCOMES:
        task_end_to_end.labels(actor=job, outcome=outcome)
        task_run.labels(actor=job, outcome=outcome)
    task_retries.labels(actor=job)
    tasks_running.labels(actor=job)
    task_queue_wait.labels(actor=job)
    for result in ("delivered", "retry", "failed"):
        for cls in ("2xx", "3xx", "4xx", "5xx", "error"):
            webhook_attempts.labels(result=result, status_class=cls)
    for reason in DISABLE_REASONS:
        callbacks_disabled.labels(reason=reason)
    for outcome in OUTCOMES:
        task_chunks.labels(outcome=outcome)
    tasks_running.labels(actor="process_chunk")
    for outcome in INLINE_OUTCOMES:
        webhook_inline.labels(outcome=outcome)


class FinishedCollector(Collector):
    """``hookline_tasks_finished_total``, read from Redis at each scrape.

    The task store counts an ending in the Redis step that makes it
    (``keys.finished_counts``), so the count is exact. A Redis error leaves
    the metric out of that scrape rather than failing the page.
    """

    def __init__(self, client: redis.Redis, actors: tuple[str, ...] = (keys.COUNTED_ACTOR,)) -> None:
        self.redis = client
        self.actors = actors

    def collect(self) -> Iterator[CounterMetricFamily]:
        pipe = self.redis.pipeline(transaction=False)
        for actor in self.actors:
            pipe.hgetall(keys.finished_counts(actor))
        try:
            counts = pipe.execute()
        except redis.RedisError:
            return
        family = CounterMetricFamily(
            "hookline_tasks_finished", "Tasks that reached a terminal state.",
            labels=["actor", "outcome"],
        )
        for actor, raw in zip(self.actors, counts):
            found = {key.decode(): int(value) for key, value in raw.items()}
            for outcome in (*OUTCOMES, *sorted(set(found) - set(OUTCOMES))):
                family.add_metric([actor, outcome], found.get(outcome, 0))
        yield family
