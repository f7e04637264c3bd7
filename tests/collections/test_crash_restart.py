"""SIGKILL every process, Redis included, and start again: the same answers."""
from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path
from typing import Any

import numpy as np
import redis as redis_lib

from tests.collections.conftest import Api, index_vectors, unit_rows
from tests.procs import RedisServer, Stack, wait_until


def _kill_all(stack: Stack, redis_server: RedisServer) -> None:
    for proc in stack.procs.values():
        if proc.proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.proc.wait(timeout=20)
    assert redis_server.proc is not None
    redis_server.proc.send_signal(signal.SIGKILL)
    redis_server.proc.wait(timeout=20)
    redis_server.proc = None


def _answers(api: Api, queries: np.ndarray) -> list[Any]:
    out = []
    for name in ("crash", "crash8"):
        for query in queries:
            hits = api.search(name, query[: 16 if name == "crash" else 8], k=20)
            out.append([(h["id"], h["task_id"], round(h["score"], 5)) for h in hits])
    return out


def test_kill_everything_and_restart_gives_the_same_results(
    make_stack: object, redis: redis_lib.Redis, redis_server: RedisServer, api_key: str,
    tmp_path: Path,
) -> None:
    # Given: two collections (f32 and i8), the index saving often, and more
    # jobs after its last save, so a restart loads files and replays the stream
    index_dir = str(tmp_path / "index")
    env = {"HOOKLINE_INDEX_DIR": index_dir, "HOOKLINE_INDEX_SAVE_SECONDS": "0.5"}
    stack: Stack = make_stack(**env)  # type: ignore[operator]
    stack.start_index()
    stack.start()
    api = Api(stack.url, api_key)
    assert api.call("POST", "/collections",
                    {"name": "crash8", "dimension": 8, "dtype": "i8"}).status_code == 201
    rng = np.random.default_rng(51)
    for _ in range(3):
        api.wait_success(api.submit(unit_rows(rng, 300, 16), collection="crash"))
    api.wait_success(api.submit(unit_rows(rng, 200, 8), collection="crash8",
                                ids=[f"n{i}" for i in range(200)]))
    wait_until(lambda: (Path(index_dir) / "manifest.json").exists(), 30, "the index saves")
    stack.procs["index"].signal(signal.SIGSTOP)  # no save after this point
    late = api.submit(unit_rows(rng, 100, 16), collection="crash")
    deleted = api.call("POST", "/collections/crash8/vectors/delete", {"ids": ["n3", "n4"]})
    assert deleted.json() == {"deleted": 2}
    wait_until(lambda: api.call("GET", f"/tasks/{late}").json()["status"] == "SUCCESS", 60,
               "the late job ends")
    stack.procs["index"].signal(signal.SIGCONT)
    # The answers to compare are the index's own, once it has caught up (a
    # search it has not caught up with scores the newest vectors exactly).
    wait_until(lambda: index_vectors(stack) == 1198, 30, "the index catches up")
    queries = unit_rows(rng, 6, 16)
    before = _answers(api, queries)
    counts = [api.call("GET", f"/collections/{n}").json()["count"] for n in ("crash", "crash8")]
    assert counts == [1000, 198]
    assert any(hit[1] == late for page in before for hit in page)

    # When: every process and Redis die by SIGKILL, and start again
    _kill_all(stack, redis_server)
    redis_server.start()
    again: Stack = make_stack(**env)  # type: ignore[operator]
    again.start_index()
    again.start()
    api = Api(again.url, api_key)
    wait_until(lambda: index_vectors(again) == 1198, 30, "the index replays the stream")

    # Then: the same answers, the same counts, nothing lost or doubled
    # (both index processes write to one log: the second's part is after its start)
    restarted = again.procs["index"].log().split("index process ready")[-1]
    assert "index rebuilt" not in restarted
    assert _answers(api, queries) == before
    assert [api.call("GET", f"/collections/{n}").json()["count"]
            for n in ("crash", "crash8")] == counts
    assert api.call("GET", "/collections/crash8/vectors/n3").status_code == 404

    # And: with its files gone, the index rebuilds from Redis to the same answers
    again.procs["index"].stop()
    shutil.rmtree(index_dir)
    again.start_index()
    wait_until(lambda: index_vectors(again) == 1198, 30, "the index is rebuilt")
    assert "index rebuilt" in again.procs["index"].log().split("index process ready")[-1]
    assert _answers(api, queries) == before
