"""The endpoint registry: tenants' callbacks, kept in Redis.

Keys (``hl:`` prefix): ``cb:<id>`` hash (the record; secrets as JSON),
``callbacks:<tenant>`` sorted set by creation time, ``cburl:<tenant>`` hash
of URL -> id. Secrets are stored for signing and never leave through the
public view; a rotated-out secret keeps signing until its grace period ends.
"""
from __future__ import annotations

import base64
import builtins
import datetime as dt
import json
import secrets as secrets_lib
import time
from collections.abc import Callable
from typing import Any

import redis

from callbacks.signing import generate_secret

#: The reasons a callback is disabled, as shown in the API and the metrics.
DISABLE_REASONS = ("gone", "receiver_request", "failing", "manual")

# KEYS: record; ARGV: reason, now -> 1 if this call disabled it
_DISABLE_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'disabled') == '1' then return 0 end
redis.call('HSET', KEYS[1], 'disabled', '1', 'disabled_reason', ARGV[1], 'disabled_at', ARGV[2])
return 1
"""

# KEYS: record; ARGV: now, disable_after -> 1 if this failure disabled it
_FAILURE_LUA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local since = redis.call('HGET', KEYS[1], 'failing_since')
if not since or since == '' then
  redis.call('HSET', KEYS[1], 'failing_since', ARGV[1])
  since = ARGV[1]
end
if tonumber(ARGV[1]) - tonumber(since) >= tonumber(ARGV[2])
   and redis.call('HGET', KEYS[1], 'disabled') ~= '1' then
  redis.call('HSET', KEYS[1], 'disabled', '1', 'disabled_reason', 'failing', 'disabled_at', ARGV[1])
  return 1
end
return 0
"""


def _iso(ts: float) -> str:
    moment = dt.datetime.fromtimestamp(ts, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text(value: bytes | None) -> str | None:
    return value.decode() if value is not None else None


class CallbackRegistry:
    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "hl:",
        grace: float = 86400.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = client
        self.prefix = prefix
        self.grace = grace
        self.clock = clock
        self._disable = client.register_script(_DISABLE_LUA)
        self._failure = client.register_script(_FAILURE_LUA)

    def _key(self, cb_id: str) -> str:
        return f"{self.prefix}cb:{cb_id}"

    def _index(self, tenant: str) -> str:
        return f"{self.prefix}callbacks:{tenant}"

    def _urls(self, tenant: str) -> str:
        return f"{self.prefix}cburl:{tenant}"

    @staticmethod
    def _public(cb_id: str, raw: dict[bytes, bytes]) -> dict[str, Any]:
        return {
            "id": cb_id,
            "url": raw[b"url"].decode(),
            "description": raw.get(b"description", b"").decode(),
            "disabled": raw.get(b"disabled") == b"1",
            "disabled_reason": _text(raw.get(b"disabled_reason")) or None,
            "created_at": _iso(float(raw[b"created"])),
        }

    def _load(self, tenant: str | None, cb_id: str) -> dict[bytes, bytes] | None:
        raw = self.redis.hgetall(self._key(cb_id))
        if not raw or b"url" not in raw:
            return None
        if tenant is not None and raw.get(b"tenant", b"").decode() != tenant:
            return None
        return raw  # type: ignore[no-any-return]

    def create(self, tenant: str, url: str, description: str = "") -> tuple[dict[str, Any], str]:
        """Register ``url`` for ``tenant``; returns the public record and the secret."""
        cb_id = "cb_" + secrets_lib.token_urlsafe(16)
        secret = generate_secret()
        now = self.clock()
        record = {
            "tenant": tenant, "url": url, "description": description, "disabled": "0",
            "disabled_reason": "", "created": repr(now), "failing_since": "",
            "secrets": json.dumps([[secret, None]]),
        }
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self._key(cb_id), mapping=record)
        pipe.zadd(self._index(tenant), {cb_id: now})
        pipe.hset(self._urls(tenant), url, cb_id)
        pipe.execute()
        raw = {k.encode(): v.encode() for k, v in record.items()}
        return self._public(cb_id, raw), secret

    def get(self, tenant: str, cb_id: str) -> dict[str, Any] | None:
        raw = self._load(tenant, cb_id)
        return None if raw is None else self._public(cb_id, raw)

    def get_for_delivery(self, cb_id: str) -> dict[str, Any] | None:
        """The record with its live secrets (newest first), for signing."""
        raw = self._load(None, cb_id)
        if raw is None:
            return None
        now = self.clock()
        live = [s for s, expires in json.loads(raw[b"secrets"]) if expires is None or expires > now]
        return {
            **self._public(cb_id, raw),
            "tenant": raw[b"tenant"].decode(),
            "secrets": live,
        }

    def list(
        self, tenant: str, limit: int, cursor: str | None
    ) -> tuple[builtins.list[dict[str, Any]], str | None]:
        """A page of the tenant's callbacks, newest first.

        Raises:
            ValueError: ``cursor`` was not made here.
        """
        start = 0
        if cursor:
            try:
                start = int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
            except (ValueError, UnicodeDecodeError):
                raise ValueError("not a cursor from this API") from None
            if start < 0:
                raise ValueError("not a cursor from this API")
        ids = [m.decode() for m in self.redis.zrevrange(self._index(tenant), start, start + limit)]
        page, more = ids[:limit], len(ids) > limit
        pipe = self.redis.pipeline(transaction=False)
        for cb_id in page:
            pipe.hgetall(self._key(cb_id))
        items = [self._public(cb_id, raw) for cb_id, raw in zip(page, pipe.execute()) if raw]
        next_cursor = None
        if more:
            next_cursor = base64.urlsafe_b64encode(str(start + limit).encode()).decode().rstrip("=")
        return items, next_cursor

    def find_by_url(self, tenant: str, url: str) -> str | None:
        return _text(self.redis.hget(self._urls(tenant), url))

    def update(
        self,
        tenant: str,
        cb_id: str,
        *,
        url: str | None = None,
        description: str | None = None,
        disabled: bool | None = None,
    ) -> dict[str, Any] | None:
        raw = self._load(tenant, cb_id)
        if raw is None:
            return None
        changes: dict[str, str] = {}
        pipe = self.redis.pipeline(transaction=True)
        if url is not None and url != raw[b"url"].decode():
            changes["url"] = url
            pipe.hdel(self._urls(tenant), raw[b"url"].decode())
            pipe.hset(self._urls(tenant), url, cb_id)
        if description is not None:
            changes["description"] = description
        if disabled is True and raw.get(b"disabled") != b"1":
            changes.update(disabled="1", disabled_reason="manual")
        if disabled is False:
            changes.update(disabled="0", disabled_reason="", failing_since="")
        if changes:
            pipe.hset(self._key(cb_id), mapping=changes)
            pipe.execute()
        return self.get(tenant, cb_id)

    def delete(self, tenant: str, cb_id: str) -> bool:
        raw = self._load(tenant, cb_id)
        if raw is None:
            return False
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self._key(cb_id))
        pipe.zrem(self._index(tenant), cb_id)
        if self.redis.hget(self._urls(tenant), raw[b"url"]) == cb_id.encode():
            pipe.hdel(self._urls(tenant), raw[b"url"].decode())
        pipe.execute()
        return True

    def rotate_secret(self, tenant: str, cb_id: str) -> str | None:
        """A new secret; the current ones keep signing for ``grace`` seconds."""
        raw = self._load(tenant, cb_id)
        if raw is None:
            return None
        now = self.clock()
        expires = now + self.grace
        kept = [[s, e if e is not None else expires] for s, e in json.loads(raw[b"secrets"])
                if e is None or e > now]
        secret = generate_secret()
        self.redis.hset(self._key(cb_id), "secrets", json.dumps([[secret, None], *kept]))
        return secret

    def record_success(self, cb_id: str) -> None:
        self.redis.hset(self._key(cb_id), mapping={"failing_since": "",
                                                  "last_success": repr(self.clock())})

    def record_failure(self, cb_id: str, disable_after: float) -> bool:
        """Note a failed delivery; True if it disabled the callback (failing too long)."""
        return bool(self._failure(keys=[self._key(cb_id)], args=[repr(self.clock()), disable_after]))

    def disable(self, cb_id: str, reason: str) -> bool:
        """Disable the callback; True only for the call that changed its state."""
        return bool(self._disable(keys=[self._key(cb_id)], args=[reason, repr(self.clock())]))
