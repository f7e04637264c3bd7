"""Collections and uploads through the client and the ``hookline`` command, against a real
stack with the index process (gunicorn, both workers, the index, Redis)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from hookline.client import Client, Conflict, NotFound, ValidationFailed
from tests.client.support import ROOT, Stack, new_key


def unit_rows(seed: int, count: int, dimension: int) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(count, dimension)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def hookline(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The ``hookline`` command as a real process (``python -m hookline.cli``, its entry point)."""
    return subprocess.run([sys.executable, "-m", "hookline.cli", *args], env={**os.environ, **env},
                          cwd=ROOT, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


@pytest.fixture
def env(search_stack: Stack) -> dict[str, str]:
    """The CLI's environment for a tenant of its own (and no config file of the machine's)."""
    return {"HOOKLINE_URL": search_stack.url, "HOOKLINE_API_KEY": new_key(search_stack),
            "HOOKLINE_CONFIG": "", "XDG_CONFIG_HOME": "/nonexistent"}


def test_collections_through_the_client(search_stack: Stack, connect: Callable[..., Client]) -> None:
    client = connect(search_stack)
    # Given a collection, created once
    made = client.collections.create("docs", 8, dtype="f16")
    assert (made["name"], made["dimension"], made["metric"], made["dtype"], made["count"]) == \
        ("docs", 8, "cosine", "f16", 0)
    with pytest.raises(Conflict):
        client.collections.create("docs", 8)
    # When a job indexes vectors into it with ids of its own (one needing quoting in a URL)
    rows = unit_rows(1, 30, 8)
    ids = [f"doc-{n}" for n in range(30)]
    ids[5] = "dir/doc 5?#%"
    task_id = client.tasks.submit(rows.tolist(), collection="docs", ids=ids)["task_id"]
    assert client.wait(task_id, timeout=60)["status"] == "SUCCESS"
    # Then it shows their count and size, and the list holds it
    shown = client.collections.get("docs")
    assert shown["count"] == 30 and shown["bytes"] > 0
    assert [c["name"] for c in client.collections.iter(page_size=1)] == ["docs"]
    # And a search finds each vector first, with its task
    best = client.collections.search("docs", rows[4].tolist(), k=3)
    assert [h["id"] for h in best][0] == "doc-4" and best[0]["task_id"] == task_id
    assert best[0]["score"] == pytest.approx(1.0, abs=1e-3) and len(best) == 3
    batch = client.collections.search_batch("docs", [rows[1].tolist(), rows[5].tolist()], k=1)
    assert [hits[0]["id"] for hits in batch] == ["doc-1", "dir/doc 5?#%"]
    stored = client.collections.get_vector("docs", "dir/doc 5?#%")
    assert stored["task_id"] == task_id and np.allclose(stored["vector"], rows[5], atol=1e-3)
    own = client.collections.search("docs", rows[0].tolist(), k=100, filter={"task_id": task_id})
    assert sorted(h["id"] for h in own) == sorted(ids)
    # When a vector is deleted, it is gone from searches and reads
    assert client.collections.delete_vectors("docs", ids=["dir/doc 5?#%", "never-was"]) == 1
    assert "dir/doc 5?#%" not in [h["id"] for h in client.collections.search("docs", rows[5].tolist())]
    with pytest.raises(NotFound):
        client.collections.get_vector("docs", "dir/doc 5?#%")
    assert client.collections.get("docs")["count"] == 29
    # And a deleted collection is gone
    client.collections.delete("docs")
    with pytest.raises(NotFound):
        client.collections.get("docs")
    assert list(client.collections.iter()) == []


def test_collections_commands(env: dict[str, str], tmp_path: Path) -> None:
    # Given vectors indexed into a collection by the command itself
    rows = unit_rows(2, 20, 6)
    path = tmp_path / "vectors.npy"
    np.save(path, rows)
    done = hookline(env, "--json", "submit", str(path), "--collection", "cli", "--watch")
    assert done.returncode == 0, done.stderr
    task_id = json.loads(done.stdout)["task_id"]
    # Then ls and show list it with its count
    listed = hookline(env, "collections", "ls", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(c["name"], c["count"], c["dimension"]) for c in json.loads(listed.stdout)["items"]] == \
        [("cli", 20, 6)]
    table = hookline(env, "collections", "ls")
    assert table.stdout.startswith("COLLECTION") and "cli" in table.stdout
    assert json.loads(hookline(env, "collections", "show", "cli", "--json").stdout)["count"] == 20
    # And search by a stored id or by a vector finds that vector first
    by_id = hookline(env, "collections", "search", "cli", "--id", f"{task_id}:3", "-k", "2", "--json")
    assert by_id.returncode == 0, by_id.stderr
    hits = json.loads(by_id.stdout)["items"]
    assert len(hits) == 2 and hits[0]["id"] == f"{task_id}:3" and hits[0]["score"] > 0.999
    by_vector = hookline(env, "collections", "search", "cli", "--vector", json.dumps(rows[7].tolist()))
    assert by_vector.returncode == 0 and by_vector.stdout.splitlines()[1].startswith(f"{task_id}:7 ")
    # Errors: an unknown id or collection is exit 3, a vector of another dimension exit 1
    assert hookline(env, "collections", "search", "cli", "--id", "nope").returncode == 3
    assert hookline(env, "collections", "show", "nope").returncode == 3
    wrong = hookline(env, "collections", "search", "cli", "--vector", "[1, 2]")
    assert wrong.returncode == 1 and "dimension" in wrong.stderr
    # rm asks first: with no answer nothing is deleted; --yes deletes
    assert hookline(env, "collections", "rm", "cli").returncode != 0
    assert hookline(env, "collections", "show", "cli").returncode == 0
    assert hookline(env, "collections", "rm", "cli", "--yes").returncode == 0
    assert hookline(env, "collections", "show", "cli").returncode == 3


def test_an_uploaded_npy_file_is_submitted_as_a_job(search_stack: Stack,
                                                    connect: Callable[..., Client],
                                                    tmp_path: Path) -> None:
    client = connect(search_stack)
    rows = unit_rows(3, 500, 12)
    path = tmp_path / "vectors.npy"
    np.save(path, rows)
    # When the file is sent in small chunks (many PATCHes)
    upload_id = client.upload(path, chunk_bytes=4096)
    state = client.uploads.get(upload_id)
    assert (state["offset"], state["length"], state["rows"], state["dimension"]) == \
        (path.stat().st_size, path.stat().st_size, 500, 12)
    assert client.uploads.head(upload_id) == {"offset": state["length"], "length": state["length"]}
    # Then a job of the upload runs (in chunks) over every row, into a collection made for it
    task_id = client.tasks.submit(upload_id=upload_id, collection="uploaded")["task_id"]
    task = client.wait(task_id, timeout=120)
    assert task["status"] == "SUCCESS", task
    assert task["result"]["processed_vectors"] == 500 and task["chunks"]["failed"] == 0
    assert task["result"]["collection"] == "uploaded"
    assert client.collections.get("uploaded")["dimension"] == 12
    # And a job of the same upload into a collection of another dimension is refused, as inline
    client.collections.create("narrow", 4)
    with pytest.raises(ValidationFailed) as refused:
        client.tasks.submit(upload_id=upload_id, collection="narrow")
    assert "dimension 4" in refused.value.detail
    assert len(list(client.tasks.iter())) == 1


def test_an_uploaded_jobs_vectors_are_searchable(search_stack: Stack, connect: Callable[..., Client],
                                                 tmp_path: Path) -> None:
    client = connect(search_stack)
    rows = unit_rows(5, 40, 8)
    path = tmp_path / "vectors.npy"
    np.save(path, rows)
    task_id = client.tasks.submit(upload_id=client.upload(path), collection="up")["task_id"]
    assert client.wait(task_id, timeout=120)["status"] == "SUCCESS"
    # SPEC section 8: once SUCCESS, the task's vectors are searchable
    assert client.collections.get("up")["count"] == 40
    assert client.collections.search("up", rows[3].tolist(), k=1)[0]["id"] == f"{task_id}:3"


def test_submit_watch_sends_a_large_file_through_the_upload(env: dict[str, str], tmp_path: Path) -> None:
    rows = unit_rows(4, 300, 16)
    path = tmp_path / "large.npy"
    np.save(path, rows)
    # Given a threshold under the file's JSON size, the command uploads it and watches the job
    low = {**env, "HOOKLINE_UPLOAD_THRESHOLD": "1024"}
    watched = hookline(low, "--json", "submit", str(path), "--collection", "large", "--watch")
    assert watched.returncode == 0, watched.stderr
    task = json.loads(watched.stdout)
    assert task["status"] == "SUCCESS" and task["result"]["processed_vectors"] == 300
    assert task["chunks"]["total"] >= 1  # a job from an upload runs as chunks
    # While the default threshold sends the same file inline
    inline = json.loads(hookline(env, "--json", "submit", str(path), "--watch").stdout)
    assert inline["status"] == "SUCCESS" and "chunks" not in inline
    assert task["result"]["collection"] == "large"
