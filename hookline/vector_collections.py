"""Tenants' vector collections: their descriptions and the names of their keys.

A collection is ``{"name", "dimension", "metric", "dtype", "created_at"}``
plus counters. Its vectors live in ``hookline.vectorstore``; this module
knows the descriptions only. ``default`` takes any dimension (one index per
dimension), so its ``dimension`` is ``None``.
"""
from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from typing import Any

import orjson
import redis

from hookline import keys

DEFAULT = "default"
METRICS = ("cosine", "ip", "l2")
DTYPES = ("f32", "f16", "i8")
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

# Key names: hookline/keys.py. These names are this module's public surface.
collections_key = keys.collections
stats_key = keys.collection_stats
records_key = keys.collection_vectors
tasks_key = keys.collection_tasks
REGISTRY_KEY = keys.COLLECTION_REGISTRY
INBOX_KEY = keys.VECTOR_INBOX
LOG_KEY = keys.VECTOR_LOG
SEQ_KEY = keys.VECTOR_SEQ


def registry_member(tenant: str, name: str) -> str:
    return f"{tenant}/{name}"


# ---------------------------------------------------------------------------


class CollectionError(ValueError):
    """A collection cannot be created or used as asked."""


class CollectionExists(CollectionError):
    """A collection of that name already exists."""


@dataclass(frozen=True)
class Collection:
    """A collection's description, as stored."""

    tenant: str
    name: str
    dimension: int | None
    metric: str = "cosine"
    dtype: str = "f32"
    created_at: float = 0.0
    #: Tells a collection from an earlier one of the same name (the index's files).
    uid: str = ""

    def to_json(self) -> bytes:
        return orjson.dumps({"dimension": self.dimension, "metric": self.metric,
                             "dtype": self.dtype, "created": self.created_at, "uid": self.uid})

    @classmethod
    def from_json(cls, tenant: str, name: str, raw: bytes) -> "Collection":
        data = orjson.loads(raw)
        return cls(tenant, name, data["dimension"], data["metric"], data["dtype"],
                   float(data["created"]), data["uid"])

    def accepts(self, dimension: int) -> bool:
        return self.dimension is None or self.dimension == dimension


def new_collection(tenant: str, name: str, dimension: int | None,
                   metric: str = "cosine", dtype: str = "f32") -> Collection:
    """A description with defaults filled in (``default`` has no fixed dimension)."""
    if name == DEFAULT:
        dimension = None
    return Collection(tenant, name, dimension, metric, dtype, time.time(), secrets.token_hex(8))


class Collections:
    """Reads and writes collection descriptions (not their vectors)."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def get(self, tenant: str, name: str) -> Collection | None:
        raw = self.redis.hget(collections_key(tenant), name)
        return Collection.from_json(tenant, name, raw) if raw else None  # type: ignore[arg-type]

    def get_with_seq(self, tenant: str, name: str) -> tuple[Collection | None, int]:
        """The collection and the number of the last change of any vectors."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hget(collections_key(tenant), name)
        pipe.get(SEQ_KEY)
        raw, seq = pipe.execute()
        found = Collection.from_json(tenant, name, raw) if raw else None
        return found, int(seq or 0)

    def create(self, collection: Collection) -> None:
        """Create ``collection``.

        Raises:
            CollectionExists: the tenant has one of that name.
        """
        pipe = self.redis.pipeline(transaction=True)
        pipe.hsetnx(collections_key(collection.tenant), collection.name, collection.to_json())
        pipe.sadd(REGISTRY_KEY, registry_member(collection.tenant, collection.name))
        created, _ = pipe.execute()
        if not created:
            raise CollectionExists(collection.name)

    def ensure(self, tenant: str, name: str, dimension: int) -> Collection:
        """The collection a job of ``dimension`` writes to, created if missing.

        Raises:
            CollectionError: it exists with another dimension.
        """
        found = self.get(tenant, name)
        if found is None:
            try:
                self.create(new_collection(tenant, name, dimension))
            except CollectionExists:
                pass
            found = self.get(tenant, name)
            assert found is not None
        if not found.accepts(dimension):
            raise CollectionError(
                f"collection {name!r} has dimension {found.dimension}; the job's is {dimension}"
            )
        return found

    def list(self, tenant: str) -> list[Collection]:
        raw = self.redis.hgetall(collections_key(tenant))
        found = [Collection.from_json(tenant, k.decode(), v) for k, v in raw.items()]
        return sorted(found, key=lambda c: c.name)

    def stats(self, tenant: str, name: str) -> dict[str, Any]:
        """``count``, ``bytes``, ``version`` and the count per dimension."""
        raw = self.redis.hgetall(stats_key(tenant, name))
        dims = {k[2:].decode(): int(v) for k, v in raw.items() if k.startswith(b"n:") and int(v)}
        return {"count": sum(dims.values()), "bytes": int(raw.get(b"b", 0)),
                "version": int(raw.get(b"v", 0)), "dimensions": dims}


class KnownCollections:
    """Collection descriptions a job worker has read, kept: a description does
    not change, and the step that writes a job's vectors refuses them when the
    collection was made again since (another uid); ``forget`` it then."""

    #: Descriptions kept (all are forgotten when full).
    LIMIT = 4096

    def __init__(self, collections: Collections) -> None:
        self.collections = collections
        self.known: dict[tuple[str, str], Collection] = {}

    def ensure(self, tenant: str, name: str, dimension: int) -> Collection:
        """``Collections.ensure``, read once per collection.

        Raises:
            CollectionError: it exists with another dimension.
        """
        found = self.known.get((tenant, name))
        if found is None or not found.accepts(dimension):
            found = self.collections.ensure(tenant, name, dimension)
            if len(self.known) >= self.LIMIT:
                self.known.clear()
            self.known[(tenant, name)] = found
        return found

    def forget(self, tenant: str, name: str) -> None:
        self.known.pop((tenant, name), None)
