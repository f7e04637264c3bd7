"""API keys and the tenants they belong to.

A key reads ``hlk_<key id>_<secret>``. Redis holds, under ``hl:apikey:<key
id>``, the tenant and the SHA-256 of the secret, never the secret itself; the
presented secret's hash is compared in constant time.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass

import redis

from hookline import keys

#: Seconds a verified key is trusted in this process before Redis is asked
#: again (a revoked key stops working within this time).
CACHE_SECONDS = 10.0

_TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant and the id (not the secret) of the key."""

    tenant: str
    key_id: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    """Creates, checks and revokes API keys."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._cache: dict[str, tuple[str, str, float]] = {}
        self._lock = threading.Lock()

    def _key(self, key_id: str) -> str:
        return keys.api_key(key_id)

    def create(self, tenant: str) -> str:
        """Create a key for ``tenant`` and return it; it is shown only once.

        Raises:
            ValueError: the tenant name is not 1-64 letters, digits, ``_.-``.
        """
        if not _TENANT_RE.match(tenant):
            raise ValueError("tenant names are 1-64 letters, digits, '_', '.' or '-'")
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        self.redis.hset(
            self._key(key_id),
            mapping={"tenant": tenant, "sha256": _digest(secret), "created": repr(time.time())},
        )
        self.redis.sadd(keys.tenant_api_keys(tenant), key_id)
        return f"hlk_{key_id}_{secret}"

    def revoke(self, key_id: str) -> bool:
        tenant = self.redis.hget(self._key(key_id), "tenant")
        removed = bool(self.redis.delete(self._key(key_id)))
        if tenant:
            self.redis.srem(keys.tenant_api_keys(tenant.decode()), key_id)
        with self._lock:
            self._cache.pop(key_id, None)
        return removed

    def list(self) -> list[tuple[str, str]]:
        """Every ``(key id, tenant)``."""
        found = []
        for key in self.redis.scan_iter(match=keys.API_KEYS_PATTERN, count=500):
            tenant = self.redis.hget(key, "tenant")
            if tenant:
                found.append((key.decode().rsplit(":", 1)[1], tenant.decode()))
        return sorted(found)

    def authenticate(self, token: str) -> Principal | None:
        """The principal for a presented key, or ``None`` if it is not valid."""
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != "hlk" or not parts[1] or not parts[2]:
            return None
        key_id, secret = parts[1], parts[2]
        if len(key_id) > 32 or len(secret) > 128:
            return None
        presented = _digest(secret)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key_id)
        if cached is None or cached[2] < now:
            stored = self.redis.hmget(self._key(key_id), "tenant", "sha256")
            if not stored[0] or not stored[1]:
                return None
            cached = (stored[0].decode(), stored[1].decode(), now + CACHE_SECONDS)
            with self._lock:
                self._cache[key_id] = cached
        tenant, expected, _ = cached
        if not hmac.compare_digest(presented, expected):
            return None
        return Principal(tenant=tenant, key_id=key_id)
