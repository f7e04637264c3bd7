"""Configuration, read from the environment in exactly one place.

``Config.from_env()`` is called by each process's setup function (the Flask
app factory, the broker setup, the metrics server), never at import time, and
the resulting object is handed down.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field


class ConfigError(ValueError):
    """An environment variable holds a value that cannot be used."""


def _switch(env: Mapping[str, str], name: str, default: bool) -> bool:
    """``1``/``on``/``true``/``yes`` or ``0``/``off``/``false``/``no``; unset: ``default``.

    Raises:
        ConfigError: any other value.
    """
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "on", "true", "yes"):
        return True
    if raw in ("0", "off", "false", "no"):
        return False
    raise ConfigError(f"{name} must be on or off, not {raw!r}")


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not value >= minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {raw}")
    return value


def _host(env: Mapping[str, str], name: str, default: str) -> str:
    """A listening address: an IPv4 or IPv6 address or a host name, without a port."""
    raw = env.get(name, "").strip().strip("[]")
    if not raw:
        return default
    if any(char in raw for char in " /@") or (raw.count(":") == 1):
        raise ConfigError(f"{name} must be an address without a port, got {raw!r}")
    return raw


def listen_address(host: str, port: int) -> str:
    """``host:port`` as gunicorn's ``bind`` takes it (an IPv6 address in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _list(env: Mapping[str, str], name: str, default: str = "") -> tuple[str, ...]:
    raw = env.get(name, default)
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _blob_url(env: Mapping[str, str]) -> str:
    """``HOOKLINE_BLOB_URL``: ``file:///absolute/path`` or ``s3://bucket[/prefix]``.

    Unset, it is a folder under the working directory's ``.hookline/`` (what
    ``dev.py run`` uses too).
    """
    raw = env.get("HOOKLINE_BLOB_URL", "").strip()
    if not raw:
        return "file://" + os.path.abspath(os.path.join(".hookline", "blobs"))
    if raw.startswith("file://"):
        if not raw[len("file://"):].startswith("/"):
            raise ConfigError(f"HOOKLINE_BLOB_URL must be file:///absolute/path, got {raw!r}")
        return raw
    if raw.startswith("s3://"):
        if not raw[len("s3://"):].split("/", 1)[0]:
            raise ConfigError("HOOKLINE_BLOB_URL must name a bucket: s3://bucket/prefix")
        return raw
    raise ConfigError(f"HOOKLINE_BLOB_URL must start with file:// or s3://, got {raw!r}")


def _schedule(env: Mapping[str, str], name: str, default: str) -> tuple[float, ...]:
    parts = _list(env, name, default)
    try:
        delays = tuple(float(part) for part in parts)
    except ValueError:
        raise ConfigError(f"{name} must be comma-separated seconds, got {env.get(name)!r}") from None
    if any(not delay >= 0 for delay in delays):
        raise ConfigError(f"{name} delays must be zero or more seconds")
    return delays


@dataclass(frozen=True)
class Config:
    """Every setting Hookline reads, typed, with its safe default."""

    #: Task records, callback registry and API keys.
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: The Dramatiq broker; defaults to ``redis_url``.
    broker_url: str = "redis://127.0.0.1:6379/0"
    #: The ``web`` process's port.
    port: int = 8000
    #: Address the ``web`` process listens on: loopback unless set, so a
    #: development run is not reachable from other machines. Containers and
    #: platforms (Procfile, compose, k8s, the image) set ``0.0.0.0``.
    bind: str = "127.0.0.1"
    #: Hosts or CIDRs that the URL guard lets through.
    callback_allow: tuple[str, ...] = ()
    #: Seconds between webhook attempts; k delays mean at most k + 1 attempts.
    webhook_retry_schedule: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
    #: Seconds for one webhook attempt, in total.
    webhook_timeout: float = 15.0
    #: Seconds to open a connection to a receiver.
    webhook_connect_timeout: float = 5.0
    #: Largest ``Retry-After`` a receiver may impose, in seconds.
    webhook_retry_after_cap: float = 3600.0
    #: Seconds a callback may fail without one success before it is disabled.
    webhook_disable_after: float = 5 * 86400.0
    #: Seconds a rotated-out secret keeps signing beside the new one.
    secret_grace: float = 86400.0
    #: Largest accepted request body, in bytes.
    max_body_bytes: int = 10 * 1024 * 1024
    #: Seconds a finished task stays readable.
    result_ttl: int = 7 * 86400
    #: Largest job accepted: vectors per job and values per vector.
    max_vectors: int = 100_000
    max_dimension: int = 4096
    #: Requests per second per API key (bursts of twice that); 0 is off.
    rate_limit: float = 1000.0
    #: Seconds a non-terminal task may go without a broker message.
    reconcile_after: int = 300
    #: Metrics server port on hosts with workers only.
    metrics_port: int = 9191
    #: Address the metrics server listens on: loopback unless set. A host
    #: scraped by a Prometheus on another machine sets its own address or
    #: ``0.0.0.0`` (the compose and k8s files do).
    metrics_bind: str = "127.0.0.1"
    #: prometheus-client's multiprocess folder (set by the run scripts).
    prometheus_multiproc_dir: str = ""
    #: ``text`` or ``json``.
    log_format: str = "text"
    log_level: str = "INFO"
    #: Seconds one job may run before it is stopped.
    job_time_limit: int = 600
    #: Attempts for a job whose failures are transient (Redis, timeouts).
    job_max_retries: int = 5
    #: Milliseconds without a heartbeat before a worker is taken for dead.
    heartbeat_timeout_ms: int = 30_000
    #: Signs console sessions; empty: one is generated and kept in Redis.
    secret_key: str = field(default="", repr=False)
    #: Seconds a console session may sit idle before it must sign in again.
    console_idle_timeout: int = 1800
    #: Whether the web process serves the console at ``/console/``.
    console: bool = True
    #: Where upload bytes live: ``file:///path`` or ``s3://bucket/prefix``.
    blob_url: str = "file:///var/lib/hookline/blobs"
    #: Endpoint of a non-AWS S3-compatible store; empty means AWS.
    s3_endpoint_url: str = ""
    #: Largest upload, in bytes.
    max_upload_bytes: int = 8 * 1024 ** 3
    #: Vectors per chunk of a large job.
    chunk_vectors: int = 10_000
    #: Seconds between two ``task.progress`` webhooks of one large job, at least.
    progress_event_seconds: float = 5.0
    #: Seconds an upload that no task uses is kept.
    upload_ttl: int = 86400
    #: Replicas that must hold a submitted task before its ``202`` (SPEC §12);
    #: 0 answers as soon as the primary has it.
    redis_min_replicas: int = 0
    #: Milliseconds a submit waits for those replicas before answering ``503``.
    redis_replica_timeout_ms: int = 200
    #: Where the index process keeps its files (and its socket, by default).
    index_dir: str = ".hookline/index"
    #: The index process's Unix socket; empty means ``<index_dir>/index.sock``.
    index_socket: str = ""
    #: Seconds a search waits for the index to apply the latest change before
    #: it scores the changes the index has not applied itself.
    index_wait_seconds: float = 0.05
    #: Seconds between saves of the index's files (when something changed).
    index_save_seconds: float = 30.0
    #: How much lower the priority of the index's graph writer is (a nice
    #: increment; 0 keeps the process's own): searches are not lowered.
    index_nice: int = 0
    #: Milliseconds the job worker may spend delivering a task's webhook
    #: itself, right after the task ends, to a receiver that has been
    #: answering: the first attempt of the retry series, logged as such.
    #: 0 leaves every delivery to the callbacks worker.
    inline_delivery_ms: int = 250
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> "Config":
        """Build the configuration from ``env`` (default ``os.environ``).

        Raises:
            ConfigError: a variable holds a value that cannot be used.
        """
        env = os.environ if env is None else env
        redis_url = env.get("REDIS_URL") or cls.redis_url
        log_format = env.get("HOOKLINE_LOG_FORMAT", "text").strip().lower() or "text"
        if log_format not in ("text", "json"):
            raise ConfigError(f"HOOKLINE_LOG_FORMAT must be 'text' or 'json', got {log_format!r}")
        broker_url = env.get("BROKER_URL") or redis_url
        if broker_url != redis_url:
            # Task records and their broker messages are written in one
            # transaction, which needs them on the same Redis server.
            raise ConfigError("BROKER_URL must equal REDIS_URL (one Redis server holds both)")
        values: dict[str, object] = dict(
            redis_url=redis_url,
            broker_url=broker_url,
            port=_int(env, "PORT", cls.port, 1),
            bind=_host(env, "HOOKLINE_BIND", cls.bind),
            callback_allow=_list(env, "HOOKLINE_CALLBACK_ALLOW"),
            webhook_retry_schedule=_schedule(
                env, "HOOKLINE_WEBHOOK_RETRY_SCHEDULE", "5,300,1800,7200,18000,36000,36000"
            ),
            webhook_timeout=_float(env, "HOOKLINE_WEBHOOK_TIMEOUT", cls.webhook_timeout, 0.1),
            webhook_connect_timeout=_float(
                env, "HOOKLINE_WEBHOOK_CONNECT_TIMEOUT", cls.webhook_connect_timeout, 0.1
            ),
            webhook_retry_after_cap=_float(
                env, "HOOKLINE_WEBHOOK_RETRY_AFTER_CAP", cls.webhook_retry_after_cap, 0
            ),
            webhook_disable_after=_float(
                env, "HOOKLINE_WEBHOOK_DISABLE_AFTER", cls.webhook_disable_after, 0
            ),
            secret_grace=_float(env, "HOOKLINE_SECRET_GRACE", cls.secret_grace, 0),
            max_body_bytes=_int(env, "HOOKLINE_MAX_BODY_BYTES", cls.max_body_bytes, 1),
            result_ttl=_int(env, "HOOKLINE_RESULT_TTL", cls.result_ttl, 1),
            max_vectors=_int(env, "HOOKLINE_MAX_VECTORS", cls.max_vectors, 1),
            max_dimension=_int(env, "HOOKLINE_MAX_DIMENSION", cls.max_dimension, 1),
            rate_limit=_float(env, "HOOKLINE_RATE_LIMIT", cls.rate_limit, 0),
            reconcile_after=_int(env, "HOOKLINE_RECONCILE_AFTER", cls.reconcile_after, 1),
            metrics_port=_int(env, "HOOKLINE_METRICS_PORT", cls.metrics_port, 1),
            metrics_bind=_host(env, "HOOKLINE_METRICS_BIND", cls.metrics_bind),
            prometheus_multiproc_dir=env.get("PROMETHEUS_MULTIPROC_DIR", ""),
            log_format=log_format,
            log_level=(env.get("HOOKLINE_LOG_LEVEL") or "INFO").upper(),
            job_time_limit=_int(env, "HOOKLINE_JOB_TIME_LIMIT", cls.job_time_limit, 1),
            job_max_retries=_int(env, "HOOKLINE_JOB_MAX_RETRIES", cls.job_max_retries, 0),
            heartbeat_timeout_ms=_int(
                env, "HOOKLINE_HEARTBEAT_TIMEOUT_MS", cls.heartbeat_timeout_ms, 1000
            ),
            secret_key=env.get("HOOKLINE_SECRET_KEY", ""),
            console=_switch(env, "HOOKLINE_CONSOLE", cls.console),
            console_idle_timeout=_int(
                env, "HOOKLINE_CONSOLE_IDLE_TIMEOUT", cls.console_idle_timeout, 1
            ),
            blob_url=_blob_url(env),
            s3_endpoint_url=env.get("HOOKLINE_S3_ENDPOINT_URL", "").strip(),
            max_upload_bytes=_int(env, "HOOKLINE_MAX_UPLOAD_BYTES", cls.max_upload_bytes, 1),
            chunk_vectors=_int(env, "HOOKLINE_CHUNK_VECTORS", cls.chunk_vectors, 1),
            progress_event_seconds=_float(env, "HOOKLINE_PROGRESS_EVENT_SECONDS",
                                          cls.progress_event_seconds, 0.05),
            upload_ttl=_int(env, "HOOKLINE_UPLOAD_TTL", cls.upload_ttl, 1),
            redis_min_replicas=_int(env, "HOOKLINE_REDIS_MIN_REPLICAS", cls.redis_min_replicas, 0),
            redis_replica_timeout_ms=_int(
                env, "HOOKLINE_REDIS_REPLICA_TIMEOUT_MS", cls.redis_replica_timeout_ms, 1
            ),
            index_dir=env.get("HOOKLINE_INDEX_DIR") or cls.index_dir,
            index_socket=env.get("HOOKLINE_INDEX_SOCKET", ""),
            index_wait_seconds=_float(env, "HOOKLINE_INDEX_WAIT_SECONDS", cls.index_wait_seconds,
                                      0),
            index_save_seconds=_float(env, "HOOKLINE_INDEX_SAVE_SECONDS", cls.index_save_seconds,
                                      0),
            index_nice=_int(env, "HOOKLINE_INDEX_NICE", cls.index_nice, 0),
            inline_delivery_ms=_int(
                env, "HOOKLINE_INLINE_DELIVERY_MS", cls.inline_delivery_ms, 0
            ),
        )
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    @property
    def index_socket_path(self) -> str:
        return self.index_socket or os.path.join(self.index_dir, "index.sock")

    def replace(self, **changes: object) -> "Config":
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]
