"""The endpoint registry: tenants' callbacks, kept in Redis.

Every change is one atomic round trip (a pipeline or a script in
``callbacks/lua/``). Each script checks what it may change inside Redis (the
tenant, the record's existence), so that one tenant can never touch
another's record, and moves the change counter (``cb:gen``) on in the same
step. The record and its keys are described in ``callbacks.records``. A rotated-out secret keeps signing until it expires;
secrets never leave through the public view.
"""
from __future__ import annotations

import base64
import builtins
import json
import secrets as secrets_lib
import time
from collections.abc import Callable
from typing import Any, cast

import redis

from callbacks.records import (
    ID,
    ORDER,
    generation_key,
    iso,
    live_secrets,
    number,
    public_view,
    record_key,
    tenant_index_key,
    text,
    url_index_key,
)
from callbacks.signing import generate_secret
from hookline.scripts import register

__all__ = ["DISABLE_REASONS", "MAX_LIVE_SECRETS", "CallbackRegistry", "generation_key"]

#: Live secrets a callback keeps at most (rotations in a row drop the oldest).
MAX_LIVE_SECRETS = 10
#: The reasons a callback is disabled, as the API and the metrics show them.
DISABLE_REASONS = ("gone", "receiver_request", "failing", "manual")


class CallbackRegistry:
    """Tenants' callback endpoints, stored in Redis.

    ``grace`` is how long, in seconds, a secret keeps signing after a
    rotation; ``clock`` gives Unix seconds (tests pass a fake one).
    Methods raise ``redis.RedisError`` when Redis cannot be reached.
    """

    def __init__(
        self,
        redis: redis.Redis,
        *,
        prefix: str = "hl:",
        grace: float = 86400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.grace = grace
        self.clock = clock
        self.generation_key = generation_key(prefix)
        self._update = register(redis, "callbacks", "callback_update")
        self._delete = register(redis, "callbacks", "callback_delete")
        self._disable = register(redis, "callbacks", "callback_disable")
        self._failure = register(redis, "callbacks", "callback_failure")
        self._success = register(redis, "callbacks", "callback_success")

    def _key(self, cb_id: str) -> str:
        return record_key(self.prefix, cb_id)

    def _index(self, tenant: str) -> str:
        return tenant_index_key(self.prefix, tenant)

    def _urls(self, tenant: str) -> str:
        return url_index_key(self.prefix, tenant)

    def _load(self, tenant: str | None, cb_id: str) -> dict[bytes, bytes] | None:
        if not isinstance(cb_id, str) or not ID.fullmatch(cb_id):
            return None
        # redis-py types replies for every client; this one answers bytes.
        raw = cast("dict[bytes, bytes]", self.redis.hgetall(self._key(cb_id)))
        if not raw or b"url" not in raw:
            return None
        if tenant is not None and raw.get(b"tenant", b"").decode() != tenant:
            return None
        return raw

    def create(self, tenant: str, url: str, description: str = "") -> tuple[dict[str, Any], str]:
        """Register ``url`` for ``tenant``.

        Returns the public record and the signing secret, which is shown only
        here and by ``rotate_secret``.
        """
        cb_id = "cb_" + secrets_lib.token_urlsafe(16)
        secret = generate_secret()
        now = self.clock()
        order = f"{int(now * 1000):015d}:{cb_id}"
        record = {
            "tenant": tenant, "url": url, "description": description, "disabled": "0",
            "disabled_reason": "", "disabled_at": "", "created_at": iso(now), "order": order,
            "secrets": json.dumps([[secret, None]]), "failing_since": "", "last_success_at": "",
        }
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self._key(cb_id), mapping=record)
        pipe.zadd(self._index(tenant), {order: 0})
        pipe.hset(self._urls(tenant), url, cb_id)
        pipe.execute()
        return public_view(cb_id, {k.encode(): v.encode() for k, v in record.items()}), secret

    def get(self, tenant: str, cb_id: str) -> dict[str, Any] | None:
        """The public view of one of ``tenant``'s callbacks (never a secret), or ``None``."""
        raw = self._load(tenant, cb_id)
        return None if raw is None else public_view(cb_id, raw)

    def get_for_delivery(self, cb_id: str) -> dict[str, Any] | None:
        """The record a delivery needs, or ``None`` if there is none.

        It holds the public fields plus ``tenant``, ``secrets`` (the live
        secrets, newest first, expired ones dropped), ``failing_since`` and
        ``last_success_at`` (Unix seconds or ``None``).
        """
        raw = self._load(None, cb_id)
        return None if raw is None else self.delivery_view(cb_id, raw)

    def delivery_key(self, cb_id: str) -> str | None:
        """The Redis hash of ``cb_id``, for a caller that reads it in its own pipeline."""
        if not isinstance(cb_id, str) or not ID.fullmatch(cb_id):
            return None
        return self._key(cb_id)

    def delivery_view(self, cb_id: str, raw: dict[bytes, bytes]) -> dict[str, Any] | None:
        """What ``get_for_delivery`` returns, from the hash at ``delivery_key(cb_id)``."""
        if not raw or b"url" not in raw:
            return None
        return {
            **public_view(cb_id, raw),
            "tenant": text(raw, "tenant"),
            "secrets": live_secrets(raw, self.clock()),
            "failing_since": number(raw, "failing_since"),
            "last_success_at": number(raw, "last_success_at"),
        }

    def list(
        self, tenant: str, limit: int = 50, cursor: str | None = None
    ) -> tuple[builtins.list[dict[str, Any]], str | None]:
        """A page of ``tenant``'s callbacks, newest first, and the cursor of the next page.

        The cursor is opaque and stable: callbacks created meanwhile do not
        shift the pages.

        Raises:
            ValueError: ``cursor`` was not made here, or ``limit`` is below 1.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        start = "+"
        if cursor:
            try:
                after = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
            except (ValueError, UnicodeDecodeError):
                raise ValueError("not a cursor from this API") from None
            if not ORDER.fullmatch(after):
                raise ValueError("not a cursor from this API")
            start = "(" + after
        members = [m.decode() for m in
                   self.redis.zrevrangebylex(self._index(tenant), start, "-", 0, limit + 1)]
        page, more = members[:limit], len(members) > limit
        pipe = self.redis.pipeline(transaction=False)
        for member in page:
            pipe.hgetall(self._key(member.partition(":")[2]))
        items = [public_view(member.partition(":")[2], raw)
                 for member, raw in zip(page, pipe.execute()) if raw]
        next_cursor = None
        if more:
            next_cursor = base64.urlsafe_b64encode(page[-1].encode()).decode().rstrip("=")
        return items, next_cursor

    def find_by_url(self, tenant: str, url: str) -> str | None:
        """The id of ``tenant``'s newest callback whose URL is exactly ``url``, or ``None``."""
        found = self.redis.hget(self._urls(tenant), url)
        return found.decode() if found is not None else None

    def update(
        self,
        tenant: str,
        cb_id: str,
        *,
        url: str | None = None,
        description: str | None = None,
        disabled: bool | None = None,
    ) -> dict[str, Any] | None:
        """Change a callback; returns its public view, or ``None`` if it is not ``tenant``'s.

        Disabling by hand gives the reason ``manual``; enabling clears the
        reason and the failure streak.
        """
        if not isinstance(cb_id, str) or not ID.fullmatch(cb_id):
            return None
        flag = "" if disabled is None else "1" if disabled else "0"
        reply = self._update(
            keys=[self._key(cb_id), self._urls(tenant), self._index(tenant), self.generation_key],
            args=[tenant, cb_id, self.prefix, "0" if url is None else "1", url or "",
                  "0" if description is None else "1", description or "", flag,
                  repr(self.clock())],
        )
        if not reply:
            return None
        raw = dict(zip(reply[::2], reply[1::2]))
        return public_view(cb_id, raw)

    def delete(self, tenant: str, cb_id: str) -> bool:
        """Delete one of ``tenant``'s callbacks; ``False`` if it is not there."""
        if not isinstance(cb_id, str) or not ID.fullmatch(cb_id):
            return False
        return bool(self._delete(
            keys=[self._key(cb_id), self._urls(tenant), self._index(tenant), self.generation_key],
            args=[tenant, cb_id, self.prefix]))

    def rotate_secret(self, tenant: str, cb_id: str) -> str | None:
        """A new secret for the callback, or ``None`` if it is not ``tenant``'s.

        Secrets live until now keep signing, beside the new one, for ``grace``
        seconds (or until their own earlier expiry).
        """
        if not isinstance(cb_id, str) or not ID.fullmatch(cb_id):
            return None
        key = self._key(cb_id)
        secret = generate_secret()

        def swap(pipe: Any) -> bool:
            owner, stored = pipe.hmget(key, "tenant", "secrets")
            if owner is None or owner.decode() != tenant or stored is None:
                return False
            now = self.clock()
            expires = now + self.grace
            kept = [[s, expires if e is None else min(e, expires)]
                    for s, e in json.loads(stored) if e is None or e > now]
            pipe.multi()
            pipe.hset(key, "secrets", json.dumps([[secret, None], *kept][:MAX_LIVE_SECRETS]))
            pipe.incr(self.generation_key)
            return True

        # WATCH the record: two rotations at once must not lose a secret.
        rotated = self.redis.transaction(swap, key, value_from_callable=True)
        return secret if rotated else None

    def record_success(self, cb_id: str) -> None:
        """Note a delivered webhook: the failure streak ends."""
        self._success(keys=[self._key(cb_id), self.generation_key], args=[repr(self.clock())])

    def record_failure(self, cb_id: str, disable_after: float) -> bool:
        """Note a failed attempt.

        Returns ``True`` if this call disabled the callback (reason
        ``failing``) because it has failed, without a single success, for at
        least ``disable_after`` seconds; at most one call ever returns ``True``
        for one streak.
        """
        return bool(self._failure(keys=[self._key(cb_id), self.generation_key],
                                  args=[repr(self.clock()), disable_after]))

    def disable(self, cb_id: str, reason: str) -> bool:
        """Disable the callback; ``True`` only for the call that changed its state."""
        return bool(self._disable(keys=[self._key(cb_id), self.generation_key],
                                  args=[reason, repr(self.clock())]))
