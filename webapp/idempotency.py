"""``Idempotency-Key`` for ``POST /tasks``.

The first request with a key claims it (``pending``, short lease) and its
answer is stored beside the task in the same transaction (``done``, kept
24 h). A repeat with the same body gets that answer again; with another body,
422; while the first is still being processed, 409. Keys are per tenant.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import orjson
import redis

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
        return f"hl:idem:{tenant}:{hashlib.sha256(key.encode()).hexdigest()}"

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
