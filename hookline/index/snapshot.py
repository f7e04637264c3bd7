"""The index's files: every graph, and the stream position they all include.

``<dir>/manifest.json`` names the graph files and the position; it is
written last (to a temporary name, then renamed), so a crash mid-save leaves
the previous snapshot whole. Files no manifest names any more (a deleted
collection's) are removed after a save, which frees their disk.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import orjson
import redis

from hookline import vector_collections as colls
from hookline.index.hnsw import PENDING_SUFFIX, Hnsw, pending_path
from hookline.index.state import IndexState, last_entry, later, trimmed_past

log = logging.getLogger("hookline.index")

MANIFEST = "manifest.json"


def save(state: IndexState, directory: Path) -> None:
    """Write every graph and then the manifest; one save at a time.

    It may run beside the writer: the position is read first, so every
    graph holds at least the changes up to it, and applying the changes
    after it again on load is harmless (upserts and deletes are idempotent).
    """
    directory.mkdir(parents=True, exist_ok=True)
    with state.cond:
        state.dirty = False  # a change from here on asks for the next save
        position, seq = state.position, state.applied
        graphs = list(state.graphs.items())
    entries = []
    for (tenant, name, dim), graph in graphs:
        collection = state.described.get((tenant, name))
        if collection is None:
            continue
        file = f"{tenant}.{name}.{collection.uid}.{dim}.usearch"
        tmp = directory / (file + ".tmp")
        graph.save(tmp)
        os.replace(tmp, directory / file)
        # A graph's vectors not yet in it are saved beside it.
        if pending_path(tmp).exists():
            os.replace(pending_path(tmp), pending_path(directory / file))
        else:
            pending_path(directory / file).unlink(missing_ok=True)
        entries.append({"tenant": tenant, "name": name, "uid": collection.uid, "dim": dim,
                        "metric": collection.metric, "file": file})
    manifest = {"position": position, "seq": seq, "graphs": entries}
    tmp = directory / (MANIFEST + ".tmp")
    tmp.write_bytes(orjson.dumps(manifest))
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, directory / MANIFEST)
    keep = {e["file"] for e in entries} | {e["file"] + PENDING_SUFFIX for e in entries}
    for path in directory.iterdir():
        if path.suffix in (".usearch", PENDING_SUFFIX) and path.name not in keep:
            path.unlink(missing_ok=True)


def load(state: IndexState, client: redis.Redis, directory: Path) -> bool:
    """Load the snapshot into ``state`` if it is usable; ``False`` means rebuild.

    Unusable: missing or unreadable, ahead of the stream (Redis lost
    changes the files include), or behind what the stream still keeps.
    """
    path = directory / MANIFEST
    try:
        manifest = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return False
    position = manifest["position"]
    last, _ = last_entry(client)
    if later(position, last) or trimmed_past(client, position):
        log.info("index files do not match the stream; rebuilding")
        return False
    store = colls.Collections(client)
    for entry in manifest["graphs"]:
        collection = store.get(entry["tenant"], entry["name"])
        if collection is None or collection.uid != entry["uid"]:
            # Deleted (or deleted and made again) since: the stream says so too.
            continue
        try:
            graph = Hnsw.load(directory / entry["file"], entry["dim"], entry["metric"])
        except (OSError, RuntimeError, ValueError):
            log.warning("index file unreadable; rebuilding", extra={"file": entry["file"]})
            return False
        state.graphs[(entry["tenant"], entry["name"], entry["dim"])] = graph
        state.described[(entry["tenant"], entry["name"])] = collection
    state.mark(position, int(manifest["seq"]))
    return True
