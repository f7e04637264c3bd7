"""Tenants' vector collections: the job's output.

A collection is a hash ``hl:coll:<tenant>:<name>`` whose fields are task ids
and whose values are that task's L2-normalised float32 vectors, so running a
task twice overwrites its vectors instead of adding them again.
"""
from __future__ import annotations

import redis


def collection_key(tenant: str, name: str) -> str:
    return f"hl:coll:{tenant}:{name}"


class VectorCollections:
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def upsert(self, tenant: str, name: str, task_id: str, vectors: bytes) -> None:
        self.redis.hset(collection_key(tenant, name), task_id, vectors)

    def get(self, tenant: str, name: str, task_id: str) -> bytes | None:
        return self.redis.hget(collection_key(tenant, name), task_id)

    def size(self, tenant: str, name: str) -> int:
        return int(self.redis.hlen(collection_key(tenant, name)))
