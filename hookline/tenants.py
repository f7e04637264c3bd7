"""API keys and the tenants they belong to.

A key reads ``hlk_<key id>_<secret>``. Redis holds, under ``hl:apikey:<key
id>``, the tenant and the SHA-256 of the secret, never the secret itself; the
presented secret's hash is compared in constant time.
"""
from __future__ import annotations

import builtins
import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import cast

import redis

from hookline import keys

#: Seconds a verified key is trusted in this process before Redis is asked
#: again (a revoked key stops working within this time).
CACHE_SECONDS = 10.0

_TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

OPERATOR = "operator"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant and the id (not the secret) of the key."""

    tenant: str
    key_id: str
    #: An operator's key: the console across tenants, never the tenant API.
    operator: bool = False


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    """Creates, checks and revokes API keys."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._cache: dict[str, tuple[str, str, bool, float]] = {}
        self._lock = threading.Lock()

    def _key(self, key_id: str) -> str:
        return keys.api_key(key_id)

    def _owner_set(self, name: str, operator: bool) -> str:
        return keys.operator_api_keys(name) if operator else keys.tenant_api_keys(name)

    def create(self, tenant: str, *, operator: bool = False) -> str:
        """Create a key for ``tenant`` (or operator ``tenant``) and return it; it is shown only once.

        Raises:
            ValueError: the name is not 1-64 letters, digits, ``_.-``.
        """
        if not _TENANT_RE.match(tenant):
            raise ValueError("tenant names are 1-64 letters, digits, '_', '.' or '-'")
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        record = {"tenant": tenant, "sha256": _digest(secret), "created": repr(time.time())}
        if operator:
            record["role"] = OPERATOR
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self._key(key_id), mapping=record)
        pipe.sadd(self._owner_set(tenant, operator), key_id)
        if not operator:
            pipe.sadd(keys.TENANTS, tenant)
        pipe.execute()
        return f"hlk_{key_id}_{secret}"

    def tenants(self) -> builtins.list[str]:
        """Every tenant that was ever given a key, sorted.

        Keys made before ``hl:tenants`` existed are found by one scan, the
        first time the set is asked for, which fills it.
        """
        names = {name.decode() for name in self.redis.smembers(keys.TENANTS)}
        if not names and self.redis.set(keys.TENANTS_SCANNED, "1", nx=True):
            pattern = keys.TENANT_API_KEYS_PATTERN
            names = {key.decode().split(":", 2)[2]
                     for key in self.redis.scan_iter(match=pattern, count=1000)}
            if names:
                self.redis.sadd(keys.TENANTS, *names)
        return sorted(names)

    def principal(self, key_id: str) -> Principal | None:
        """Who the key with id ``key_id`` belongs to, asked of Redis now (``None``: revoked)."""
        if not key_id or len(key_id) > 32:
            return None
        tenant, role = cast("list[bytes | None]", self.redis.hmget(self._key(key_id), "tenant", "role"))
        if not tenant:
            return None
        return Principal(tenant=tenant.decode(), key_id=key_id, operator=role == OPERATOR.encode())

    def revoke(self, key_id: str) -> bool:
        tenant, role = cast("list[bytes | None]", self.redis.hmget(self._key(key_id), "tenant", "role"))
        removed = bool(self.redis.delete(self._key(key_id)))
        if tenant:
            self.redis.srem(self._owner_set(tenant.decode(), role == OPERATOR.encode()), key_id)
        with self._lock:
            self._cache.pop(key_id, None)
        return removed

    def list(self) -> builtins.list[tuple[str, str, bool]]:
        """Every ``(key id, tenant, is an operator's)``."""
        found = []
        for key in self.redis.scan_iter(match=keys.API_KEYS_PATTERN, count=500):
            tenant, role = cast("list[bytes | None]", self.redis.hmget(key, "tenant", "role"))
            if tenant:
                found.append((key.decode().rsplit(":", 1)[1], tenant.decode(),
                              role == OPERATOR.encode()))
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
        if cached is None or cached[3] < now:
            stored = self.redis.hmget(self._key(key_id), "tenant", "sha256", "role")
            if not stored[0] or not stored[1]:
                return None
            cached = (stored[0].decode(), stored[1].decode(), stored[2] == OPERATOR.encode(),
                      now + CACHE_SECONDS)
            with self._lock:
                self._cache[key_id] = cached
        tenant, expected, operator, _ = cached
        if not hmac.compare_digest(presented, expected):
            return None
        return Principal(tenant=tenant, key_id=key_id, operator=operator)
