"""The collections API: collections, search, and vectors by id (SPEC section 8)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis
from flask import Blueprint, Response, current_app, request
from flask.blueprints import BlueprintSetupState
from marshmallow import ValidationError

from hookline import metrics
from hookline.ids import isoformat
from hookline.index.protocol import IndexClient, IndexUnavailable
from hookline.memory import return_large_buffers
from hookline.search import QueryError, Searcher
from hookline.vector_collections import (
    DEFAULT,
    NAME_RE,
    Collection,
    CollectionError,
    CollectionExists,
    Collections,
    new_collection,
)
from hookline.vectorstore import VectorStore
from webapp.auth import authenticate, tenant
from webapp.collection_schemas import (
    MAX_VECTOR_ID,
    CollectionCreateSchema,
    PageSchema,
    SearchSchema,
    VectorDeleteSchema,
)
from webapp.jsonio import json_body, load, reply
from webapp.problems import Problem, not_found, unprocessable
from webapp.services import services

bp = Blueprint("collections", __name__)
bp.before_request(authenticate)

#: Seconds a client is asked to wait while the index process catches up.
INDEX_RETRY_AFTER = 1


@dataclass
class VectorServices:
    store: VectorStore
    searcher: Searcher
    create_schema: CollectionCreateSchema
    search_schema: SearchSchema


@bp.record_once
def _setup(state: BlueprintSetupState) -> None:
    web = state.app.extensions["hookline"]
    # A job's JSON body and its arrays are megabytes, freed after the request.
    return_large_buffers()
    store = VectorStore(web.redis)
    state.app.extensions["hookline.vectors"] = VectorServices(
        store=store,
        searcher=Searcher(store, IndexClient(web.config.index_socket_path)),
        create_schema=CollectionCreateSchema(max_dimension=web.config.max_dimension),
        search_schema=SearchSchema(max_dimension=web.config.max_dimension),
    )


def vector_services() -> VectorServices:
    """This app's vector store, searcher and schemas (the console reads through them too)."""
    return current_app.extensions["hookline.vectors"]  # type: ignore[no-any-return]


def check_collection(client: redis.Redis, owner: str, name: str, dimension: int, *,
                     field: str = "vector_data") -> None:
    """What ``POST /tasks`` checks of a job's collection.

    A named collection that does not exist is created with the job's
    dimension (``default`` is created by the job: it takes any dimension).

    Raises:
        Problem: 422 when the collection has another dimension (the error
            is under ``field``).
    """
    if name != DEFAULT:
        try:
            Collections(client).ensure(owner, name, dimension)
        except CollectionError as exc:
            message = f"{str(exc)[:1].upper()}{str(exc)[1:]}."
            raise unprocessable(message, errors={field: [message]}) from None




def _collection(name: str) -> Collection:
    found = Collections(services().redis).get(tenant(), name) if NAME_RE.match(name) else None
    if found is None:
        raise not_found("collection")
    return found


def describe(collection: Collection) -> dict[str, Any]:
    """A collection as ``GET /collections/{name}`` shows it, with its counts and index version."""
    stats = Collections(services().redis).stats(collection.tenant, collection.name)
    body: dict[str, Any] = {
        "name": collection.name, "dimension": collection.dimension, "metric": collection.metric,
        "dtype": collection.dtype, "count": stats["count"], "bytes": stats["bytes"],
        "version": stats["version"], "created_at": isoformat(collection.created_at),
    }
    if collection.name == DEFAULT:
        body["dimensions"] = stats["dimensions"]
    return body


@bp.post("/collections")
def create() -> Response:
    data = load(vector_services().create_schema, json_body())
    collection = new_collection(tenant(), data["name"], data["dimension"], data["metric"],
                                data["dtype"])
    try:
        Collections(services().redis).create(collection)
    except CollectionExists:
        raise Problem(409, "Conflict", "A collection of that name exists.") from None
    return reply(describe(collection), 201, {"Location": f"/collections/{collection.name}"})


@bp.get("/collections")
def index() -> Response:
    try:
        page = PageSchema().load(request.args.to_dict())
    except ValidationError as exc:
        raise unprocessable("The query is not valid; see errors.",
                            errors=exc.normalized_messages()) from None
    found = [c for c in Collections(services().redis).list(tenant())
             if page["cursor"] is None or c.name > page["cursor"]]
    items = found[:page["limit"]]
    more = len(found) > len(items)
    return reply({"items": [describe(c) for c in items],
                  "next_cursor": items[-1].name if more else None})


@bp.get("/collections/<name>")
def show(name: str) -> Response:
    return reply(describe(_collection(name)))


@bp.delete("/collections/<name>")
def delete(name: str) -> Response:
    collection = _collection(name)
    if not vector_services().store.drop(collection.tenant, collection.name):
        raise not_found("collection")
    return Response(status=204)


@bp.post("/collections/<name>/search")
def search(name: str) -> Response:
    # The collection and the change number in one round trip.
    found, seq = Collections(services().redis).get_with_seq(tenant(), name) \
        if NAME_RE.match(name) else (None, 0)
    if found is None:
        raise not_found("collection")
    collection = found
    vectors = vector_services()
    data = load(vectors.search_schema, json_body())
    batch = "vectors" in data
    queries = data["vectors"] if batch else data["vector"]
    task_id = (data.get("filter") or {}).get("task_id")
    started = time.perf_counter()
    try:
        results = vectors.searcher.search(collection, queries, data["k"], task_id, seq)
    except QueryError as exc:
        field = "vectors" if batch else "vector"
        raise unprocessable(str(exc), errors={field: [str(exc)]}) from None
    except IndexUnavailable as exc:
        raise Problem(503, "Service Unavailable", f"Search is unavailable: {exc}.",
                      headers={"Retry-After": str(INDEX_RETRY_AFTER)}) from None
    metrics.search_duration.observe(time.perf_counter() - started)
    pages = [{"items": [hit.to_public() for hit in hits]} for hits in results]
    return reply({"results": pages} if batch else pages[0])


@bp.get("/collections/<name>/vectors/<path:vector_id>")
def vector(name: str, vector_id: str) -> Response:
    collection = _collection(name)
    found = vector_services().store.get(collection, vector_id) if len(vector_id) <= MAX_VECTOR_ID else None
    if found is None:
        raise not_found("vector")
    return reply({"id": found.id, "vector": found.vector.tolist(), "task_id": found.task_id})


@bp.post("/collections/<name>/vectors/delete")
def delete_vectors(name: str) -> Response:
    collection = _collection(name)
    data = load(VectorDeleteSchema(), json_body())
    store = vector_services().store
    if "ids" in data:
        deleted = store.delete_ids(collection, data["ids"])
    else:
        deleted = store.delete_task(collection, data["task_id"])
    return reply({"deleted": deleted})
