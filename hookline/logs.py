"""Log set-up: one line per event, as text or as JSON.

Context travels in ``extra=`` under the names in ``CONTEXT_FIELDS``; nothing
else from a log call's arguments reaches the output, which keeps payloads,
keys and secrets out of the logs by construction.
"""
from __future__ import annotations

import logging
import sys
import time

import orjson

#: The ``extra`` names a log line may carry.
CONTEXT_FIELDS = (
    "task_id", "status", "previous", "tenant", "method", "route", "path", "http_status",
    "duration_ms", "actor", "attempt", "callback_id", "webhook_id", "outcome",
    "status_code", "error", "count", "queue", "delay_s", "worker",
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = " ".join(
            f"{name}={record.__dict__[name]}"
            for name in CONTEXT_FIELDS
            if record.__dict__.get(name) is not None
        )
        if not context:
            return text
        head, sep, tail = text.partition("\n")
        return f"{head} {context}{sep}{tail}"


def configure(log_format: str = "text", level: str = "INFO") -> None:
    """Route every logger to stderr in ``log_format`` (``text`` or ``json``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # Libraries that log request URLs or headers at debug level stay quiet.
    for noisy in ("urllib3", "requests"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
