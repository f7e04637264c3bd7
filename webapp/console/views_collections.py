"""Collections: each one's count, dimension, storage, size and index version, and a
search by a stored vector's id.

Thin over the collections API's own pieces: ``describe`` says what a
collection shows, and the app's ``VectorStore`` and ``Searcher`` read the
stored vector and its nearest neighbours, so the page and the API cannot
disagree. The search is a POST (it carries the CSRF token, and vector ids
stay out of URLs and access logs); it changes nothing.
"""
from __future__ import annotations

from flask import Response, render_template, request

from hookline.index.protocol import IndexUnavailable
from hookline.search import Hit, QueryError
from hookline.vector_collections import Collection, Collections
from webapp.collection_schemas import MAX_K, MAX_VECTOR_ID
from webapp.collections_api import describe, vector_services
from webapp.console import bp
from webapp.console.access import find_collection, viewer
from webapp.console.forms import FormError
from webapp.services import services

#: Hits the search form asks for unless told otherwise.
DEFAULT_K = 10


@bp.app_template_filter("console_bytes")
def _console_bytes(value: int) -> str:
    """A byte count in binary units, with the exact figure: ``1.5 KiB (1,536 B)``."""
    size, unit = float(value), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            break
        size /= 1024
    return f"{value:,} B" if unit == "B" else f"{size:.1f} {unit} ({value:,} B)"


@bp.get("/collections")
def collections() -> str:
    who = viewer()
    store = Collections(services().redis)
    rows = [(tenant, describe(found)) for tenant in who.tenants() for found in store.list(tenant)]
    return render_template("console/collections.html", rows=rows, tenants=who.known_tenants(),
                           chosen_tenant=who.chosen_tenant())


def _k(raw: str) -> int:
    try:
        k = int(raw)
    except ValueError:
        k = 0
    if not 1 <= k <= MAX_K:
        raise FormError(f"k: a whole number from 1 to {MAX_K}.")
    return k


def _search(collection: Collection, vector_id: str, k: int) -> list[Hit]:
    """The ``k`` nearest to the stored vector ``vector_id`` (itself included), best first.

    Raises:
        FormError: no id, or one too long.
        LookupError: the collection holds no vector of that id.
        IndexUnavailable: the index process cannot answer now.
    """
    if not 1 <= len(vector_id) <= MAX_VECTOR_ID:
        raise FormError(f"id: 1 to {MAX_VECTOR_ID} characters.")
    vectors = vector_services()
    record = vectors.store.get(collection, vector_id)
    if record is None:
        raise LookupError(vector_id)
    try:
        return vectors.searcher.search(collection, record.vector.reshape(1, -1), k)[0]
    except QueryError as exc:  # a stored vector always fits its collection; kept for safety
        raise FormError(str(exc)) from None


@bp.route("/collections/<tenant>/<name>", methods=["GET", "POST"])
def collection(tenant: str, name: str) -> Response:
    found = find_collection(tenant, name)
    form = {"id": "", "k": str(DEFAULT_K)}
    hits: list[Hit] | None = None
    error, status = None, 200
    if request.method == "POST":
        form = {"id": request.form.get("id", "").strip(),
                "k": request.form.get("k", "").strip() or str(DEFAULT_K)}
        try:
            hits = _search(found, form["id"], _k(form["k"]))
        except FormError as exc:
            error, status = str(exc), 400
        except LookupError:
            error, status = "This collection holds no vector with that id.", 404
        except IndexUnavailable as exc:
            error, status = f"Search is unavailable: {exc}. Try again shortly.", 503
    return Response(render_template("console/collection.html", collection=describe(found),
                                    tenant=found.tenant, form=form, hits=hits, error=error,
                                    max_k=MAX_K), status)
