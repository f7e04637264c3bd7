"""``Idempotency-Key`` for ``POST /tasks``.

The first request with a key claims it (``pending``, naming the request) and
its answer is stored beside the task in the same step (``done``, kept 24 h),
which happens only while the key still holds that claim. A repeat with the
same body gets that answer again; with another body, 422; while the first
is still being processed, 409. A claim whose request is over without an
answer (it failed, or a failover lost its answer) is taken over by the
repeat at once (``webapp.claim_owners``). Keys are per tenant.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import orjson
import redis
from flask import Response

from hookline import keys, scripts
from hookline.redis_client import UNAVAILABLE
from hookline.task_store import ClaimedAnswer, ClaimLost
from webapp.claim_owners import ClaimOwners, Running
from webapp.problems import Problem, unprocessable

#: Seconds an answered key is kept.
RETENTION_SECONDS = 24 * 3600
#: Seconds a claim lasts at most; one whose request is over is taken over sooner.
CLAIM_SECONDS = 60
MAX_KEY_LENGTH = 255
#: Claims read per request before it gives up with a 409 (each read found
#: the key changing under it).
CLAIM_ATTEMPTS = 3


@dataclass(frozen=True)
class Stored:
    state: str  # "pending" or "done"
    fingerprint: str
    status: int = 0
    body: bytes = b""
    location: str = ""
    #: For a pending claim, the request that holds it (none in a claim
    #: written before claims named their request).
    holder: Running | None = None

    @classmethod
    def parse(cls, raw: bytes) -> "Stored":
        state, fingerprint, *rest = orjson.loads(raw)
        if state == "pending":
            return cls(state, fingerprint, holder=Running(*rest) if len(rest) == 2 else None)
        status, body, location = rest
        return cls(state, fingerprint, status, body.encode(), location)


class IdempotencyKeys:
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self.owners = ClaimOwners(client)
        self._swap = scripts.register(client, "webapp", "idempotency_swap")

    @staticmethod
    def redis_key(tenant: str, key: str) -> str:
        return keys.idempotency(tenant, hashlib.sha256(key.encode()).hexdigest())

    @staticmethod
    def fingerprint(body: bytes) -> str:
        return hashlib.sha256(body).hexdigest()

    @staticmethod
    def claim_value(fingerprint: str, running: Running) -> bytes:
        return orjson.dumps(["pending", fingerprint, running.process, running.number])

    def claim(self, rkey: str, fingerprint: str, running: Running) -> Stored | None:
        """Claim the key for ``running``; ``None`` if claimed now, else what is stored.

        A pending claim of another request that is over is taken over, if
        the body is the same.
        """
        value = self.claim_value(fingerprint, running)
        for _ in range(CLAIM_ATTEMPTS):
            pipe = self.redis.pipeline(transaction=False)
            # The process's list, naming this request, goes first: a repeat
            # never finds the claim without a list that has it.
            self.owners.publish(pipe)
            pipe.set(rkey, value, nx=True, ex=CLAIM_SECONDS)
            pipe.get(rkey)
            _, claimed, raw = pipe.execute()
            if claimed or raw == value:
                # Claimed now, or by this request's own SET, sent again after
                # its answer was lost.
                return None
            if raw is None:
                continue  # it expired between the two commands
            stored = Stored.parse(raw)
            holder = stored.holder
            if (stored.state != "pending" or holder is None or stored.fingerprint != fingerprint
                    or not self.owners.over(holder.process, holder.number)):
                return stored
            if self._swap(keys=[rkey], args=[raw, value, CLAIM_SECONDS]):
                return None
        return Stored("pending", fingerprint)

    def read(self, rkey: str, fingerprint: str) -> Stored:
        """What the key holds now (a pending claim if nothing)."""
        raw = self.redis.get(rkey)
        return Stored.parse(raw) if raw is not None else Stored("pending", fingerprint)

    @staticmethod
    def answer(status: int, body: bytes, location: str, fingerprint: str) -> bytes:
        return orjson.dumps(["done", fingerprint, status, body.decode(), location])

    def store(self, rkey: str, claim: bytes, status: int, body: bytes, location: str,
              fingerprint: str) -> None:
        """Store an answer that comes without a task, if the key is still this request's."""
        self._swap(keys=[rkey], args=[claim, self.answer(status, body, location, fingerprint),
                                      RETENTION_SECONDS])

    def release(self, rkey: str, claim: bytes) -> bool:
        """Give the key up, if it is still this request's; a retry may claim it at once.

        Returns ``False`` if Redis did not answer: the claim may stand, and
        is over as soon as this process says so (``webapp.claim_owners``).
        """
        try:
            self._swap(keys=[rkey], args=[claim, "", 0])
        except UNAVAILABLE:
            return False
        return True


@dataclass(frozen=True)
class Claimed:
    """A key this request has claimed: its answer is written with the task."""

    rkey: str
    fingerprint: str
    claim: bytes

    def answer_write(self, status: int, body: bytes, location: str) -> ClaimedAnswer:
        """The answer ``TaskStore.submit`` writes with the task, while the key is this claim."""
        return ClaimedAnswer(self.rkey, self.claim,
                             IdempotencyKeys.answer(status, body, location, self.fingerprint),
                             RETENTION_SECONDS)


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
    running = store.owners.begin()
    settled = False
    try:
        stored = store.claim(rkey, fingerprint, running)
        if stored is not None:
            settled = True
            return _replay(stored, fingerprint)
        claim = store.claim_value(fingerprint, running)
        try:
            resp = handle(Claimed(rkey, fingerprint, claim))
            settled = True
            return resp
        except ClaimLost:
            # Another request took the key over: its answer, or a 409.
            settled = True
            return _replay(store.read(rkey, fingerprint), fingerprint)
        except Problem as problem:
            if problem.status >= 500 or problem.status in (401, 429):
                settled = store.release(rkey, claim)
            else:
                store.store(rkey, claim, problem.status, problem.response().get_data(), "",
                            fingerprint)
                settled = True
            raise
        except Exception:
            settled = store.release(rkey, claim)
            raise
    finally:
        store.owners.end(running, settled)


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
