"""``Idempotency-Key`` for ``POST /tasks``.

The first request with a key claims it (``pending``, short lease) and its
answer is stored beside the task in the same transaction (``done``, kept
24 h). A repeat with the same body gets that answer again; with another body,
422; while the first is still being processed, 409. Keys are per tenant.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import orjson
import redis
from flask import Response

from hookline import keys
from webapp.problems import Problem, unprocessable

#: Seconds an answered key is kept.
RETENTION_SECONDS = 24 * 3600
#: Seconds a claim lasts if its request dies before answering.
CLAIM_SECONDS = 60
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Stored:
    state: str  # "pending" or "done"
    fingerprint: str
    status: int = 0
    body: bytes = b""
    location: str = ""


class IdempotencyKeys:
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    @staticmethod
    def redis_key(tenant: str, key: str) -> str:
        return keys.idempotency(tenant, hashlib.sha256(key.encode()).hexdigest())

    @staticmethod
    def fingerprint(body: bytes) -> str:
        return hashlib.sha256(body).hexdigest()

    def claim(self, rkey: str, fingerprint: str) -> Stored | None:
        """Claim the key; ``None`` if claimed now, else what is stored."""
        for _ in range(3):
            if self.redis.set(rkey, orjson.dumps(["pending", fingerprint]), nx=True, ex=CLAIM_SECONDS):
                return None
            raw = self.redis.get(rkey)
            if raw is not None:
                state, fp, *rest = orjson.loads(raw)
                if state == "pending":
                    return Stored(state, fp)
                status, body, location = rest
                return Stored(state, fp, status, body.encode(), location)
        return None

    @staticmethod
    def answer(status: int, body: bytes, location: str, fingerprint: str) -> bytes:
        return orjson.dumps(["done", fingerprint, status, body.decode(), location])

    def store(self, rkey: str, status: int, body: bytes, location: str, fingerprint: str) -> None:
        self.redis.set(rkey, self.answer(status, body, location, fingerprint), ex=RETENTION_SECONDS)

    def release(self, rkey: str) -> None:
        self.redis.delete(rkey)


@dataclass(frozen=True)
class Claimed:
    """A key this request has claimed: its answer is written beside the task."""

    rkey: str
    fingerprint: str

    def answer_write(self, status: int, body: bytes, location: str) -> tuple[str, bytes, int]:
        """The ``(key, value, ttl)`` write that stores the answer (``TaskStore.submit``'s ``extra``)."""
        return self.rkey, IdempotencyKeys.answer(status, body, location, self.fingerprint), RETENTION_SECONDS


def run_once(
    store: IdempotencyKeys, tenant: str, header: str | None, body: bytes,
    handle: Callable[[Claimed | None], Response],
) -> Response:
    """Answer a request with an ``Idempotency-Key`` at most once.

    ``handle`` makes the answer; it gets the claim (``None`` without a
    header) and stores a success itself, in the same step as its task. A
    repeat gets the stored answer. An answered 4xx is stored here; a 5xx,
    401 or 429 (or a crash) releases the key so that the client may retry.

    Raises:
        Problem: 400 for a malformed key, 422 for a key reused with another
            body, 409 while the first request is still being processed.
    """
    if header is None:
        return handle(None)
    if not header or len(header) > MAX_KEY_LENGTH:
        raise Problem(400, "Bad Request", f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} characters.")
    rkey = store.redis_key(tenant, header)
    fingerprint = store.fingerprint(body)
    stored = store.claim(rkey, fingerprint)
    if stored is not None:
        return _replay(stored, fingerprint)
    try:
        return handle(Claimed(rkey, fingerprint))
    except Problem as problem:
        if problem.status >= 500 or problem.status in (401, 429):
            store.release(rkey)
        else:
            store.store(rkey, problem.status, problem.response().get_data(), "", fingerprint)
        raise
    except Exception:
        store.release(rkey)
        raise


def _replay(stored: Stored, fingerprint: str) -> Response:
    if stored.fingerprint != fingerprint:
        raise unprocessable("This Idempotency-Key was already used with a different request body.",
                            errors={"Idempotency-Key": ["Already used with a different body."]})
    if stored.state == "pending":
        raise Problem(409, "Conflict",
                      "A request with this Idempotency-Key is still being processed; retry shortly.",
                      headers={"Retry-After": "1"})
    resp = Response(stored.body, stored.status,
                    mimetype="application/json" if stored.status < 400 else "application/problem+json")
    if stored.location:
        resp.headers["Location"] = stored.location
    resp.headers["Idempotent-Replayed"] = "true"
    return resp
