"""Vector collections and search (SPEC §8): ``Client.collections``."""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, cast
from urllib.parse import quote

from hookline.client.models import BatchHits, Collection, Hits, Page, StoredVector
from hookline.client.paging import pages
from hookline.client.transport import Transport


def _path(name: str, *rest: str) -> str:
    return "/".join(("/collections", quote(name, safe=""), *(quote(p, safe="") for p in rest)))


class Collections:
    """Create, list, read and delete collections; search them; read and delete vectors."""

    def __init__(self, transport: Transport) -> None:
        self._http = transport

    def create(self, name: str, dimension: int, *, metric: str | None = None,
               dtype: str | None = None) -> Collection:
        """``POST /collections``. Raises ``Conflict`` for a name in use."""
        body: dict[str, Any] = {"name": name, "dimension": dimension}
        body.update({k: v for k, v in (("metric", metric), ("dtype", dtype)) if v is not None})
        return cast(Collection, self._http.json("POST", "/collections", json=body))

    def list(self, *, limit: int | None = None, cursor: str | None = None) -> Page[Collection]:
        return cast(Page[Collection], self._http.json("GET", "/collections",
                                                      params={"limit": limit, "cursor": cursor}))

    def iter(self, *, page_size: int | None = None) -> Iterator[Collection]:
        return pages(lambda cursor: self.list(limit=page_size, cursor=cursor))

    def get(self, name: str) -> Collection:
        """``GET /collections/{name}``. Raises ``NotFound``."""
        return cast(Collection, self._http.json("GET", _path(name)))

    def delete(self, name: str) -> None:
        """``DELETE /collections/{name}``. Raises ``NotFound``."""
        self._http.request("DELETE", _path(name))

    def search(self, name: str, vector: Sequence[float], *, k: int | None = None,
               filter: dict[str, Any] | None = None) -> Hits:
        """``POST /collections/{name}/search``: the nearest vectors, best first.

        Raises:
            ValidationFailed: the vector's dimension or ``k`` (1-1000) is wrong.
        """
        body: dict[str, Any] = {"vector": list(vector)}
        body.update({k_: v for k_, v in (("k", k), ("filter", filter)) if v is not None})
        return cast(Hits, self._http.json("POST", _path(name, "search"), json=body)["items"])

    def search_batch(self, name: str, vectors: Sequence[Sequence[float]], *,
                     k: int | None = None) -> BatchHits:
        """One search per vector, in one request; the results in the same order."""
        body: dict[str, Any] = {"vectors": [list(v) for v in vectors]}
        if k is not None:
            body["k"] = k
        answer = self._http.json("POST", _path(name, "search"), json=body)
        return [cast(Hits, result["items"]) for result in answer["results"]]

    def get_vector(self, name: str, vector_id: str) -> StoredVector:
        """``GET /collections/{name}/vectors/{id}``: the stored (normalised for cosine) vector."""
        return cast(StoredVector, self._http.json("GET", _path(name, "vectors", vector_id)))

    def delete_vectors(self, name: str, *, ids: Sequence[str] | None = None,
                       task_id: str | None = None) -> int:
        """Delete vectors by id, or every vector of one task; the number deleted."""
        if (ids is None) == (task_id is None):
            raise ValueError("pass ids or task_id, not both or neither")
        body: dict[str, Any] = {"ids": list(ids)} if ids is not None else {"task_id": task_id}
        return int(self._http.json("POST", _path(name, "vectors", "delete"), json=body)["deleted"])
