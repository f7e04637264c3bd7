"""``default`` keeps one index per dimension; deletes free Redis memory and disk."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import redis as redis_lib

from tests.collections.conftest import Api, index_vectors, unit_rows
from tests.procs import Stack, wait_until


def test_default_takes_two_dimensions_and_searches_each(api: Api) -> None:
    rng = np.random.default_rng(41)
    threes, fives = unit_rows(rng, 12, 3), unit_rows(rng, 7, 5)
    # The seed's jobs: no collection named, and a flat list of numbers.
    three = api.submit(threes)
    five = api.submit(fives, metadata={"collection": "default"})
    flat = api.submit([0.5, -1.0])
    for task_id in (three, five, flat):
        assert api.wait_success(task_id)["result"]["status"] == "indexed"

    shown = api.call("GET", "/collections/default").json()
    assert shown["dimension"] is None
    assert shown["dimensions"] == {"3": 12, "5": 7, "1": 2}
    assert shown["count"] == 21
    assert {h["task_id"] for h in api.search("default", threes[0], k=100)} == {three}
    assert {h["task_id"] for h in api.search("default", fives[0], k=100)} == {five}
    assert len(api.search("default", fives[0], k=100)) == 7
    assert api.search("default", [1.0, 2.0, 3.0, 4.0]) == []
    # A named collection keeps one dimension: a job of another is refused.
    assert api.wait_success(api.submit(threes, collection="three"))
    resp = api.call("POST", "/tasks", {"vector_data": fives.tolist(), "collection": "three"})
    assert resp.status_code == 422


def test_deleting_frees_memory_and_disk(make_stack: object, redis: redis_lib.Redis,
                                        api_key: str) -> None:
    stack: Stack = make_stack(HOOKLINE_INDEX_SAVE_SECONDS="0.2")  # type: ignore[operator]
    stack.start_index()
    stack.start()
    api = Api(stack.url, api_key)
    rng = np.random.default_rng(42)
    tasks = [api.submit(unit_rows(rng, 500, 384), collection="big") for _ in range(4)]
    for task_id in tasks:
        api.wait_success(task_id)
    index_dir = Path(stack.env["HOOKLINE_INDEX_DIR"])
    wait_until(lambda: index_vectors(stack) == 2000, 30, "the index holds 2000 vectors")
    wait_until(lambda: list(index_dir.glob("*.big.*.usearch")), 30, "the index is saved")

    # Deleting one task's vectors: they leave Redis and the index.
    used = redis.info("memory")["used_memory"]
    resp = api.call("POST", "/collections/big/vectors/delete", {"task_id": tasks[0]})
    assert resp.json() == {"deleted": 500}
    wait_until(lambda: index_vectors(stack) == 1500, 30, "the index holds 1500 vectors")
    assert used - redis.info("memory")["used_memory"] > 500 * 1536
    assert api.call("GET", "/collections/big").json()["count"] == 1500

    # Deleting the collection: its keys, its graph and its files go.
    used = redis.info("memory")["used_memory"]
    assert api.call("DELETE", "/collections/big").status_code == 204
    assert api.call("GET", "/collections/big").status_code == 404
    assert not redis.keys("hl:c*:*:big")
    wait_until(lambda: used - redis.info("memory")["used_memory"] > 1500 * 1536, 30,
               "Redis frees the vectors")
    wait_until(lambda: index_vectors(stack) == 0, 30, "the index holds nothing")
    wait_until(lambda: not list(index_dir.glob("*.big.*.usearch")), 30, "the files are gone")
