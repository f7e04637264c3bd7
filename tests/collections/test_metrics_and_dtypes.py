"""Each metric scores as SPEC section 8 says, for each storage type; batches and filters."""
from __future__ import annotations

import numpy as np

from tests.collections.conftest import Api


def test_scores_follow_the_metric_and_the_storage_type(api: Api) -> None:
    rng = np.random.default_rng(61)
    rows = rng.normal(size=(40, 6)) * 3
    query = rng.normal(size=6)
    for metric, dtype, tolerance in (("ip", "f32", 1e-4), ("l2", "f16", 2e-2),
                                     ("cosine", "i8", 2e-2), ("l2", "i8", 0.3)):
        name = f"{metric}-{dtype}"
        created = api.call("POST", "/collections",
                           {"name": name, "dimension": 6, "metric": metric, "dtype": dtype})
        assert created.status_code == 201, created.text
        assert created.json()["metric"] == metric and created.json()["dtype"] == dtype
        api.wait_success(api.submit(rows, collection=name, ids=[f"r{i}" for i in range(40)]))
        if metric == "ip":
            exact = rows @ query
        elif metric == "l2":
            exact = -((rows - query) ** 2).sum(axis=1)
        else:
            exact = (rows / np.linalg.norm(rows, axis=1, keepdims=True)) @ (query / np.linalg.norm(query))
        hits = api.search(name, query, k=40)
        # Best first, every vector once, each score the metric's (within the
        # storage type's precision), and the order the exact one where it is clear.
        assert len(hits) == 40 and len({h["id"] for h in hits}) == 40
        scores = [h["score"] for h in hits]
        assert scores == sorted(scores, reverse=True), name
        for hit in hits:
            assert abs(hit["score"] - exact[int(hit["id"][1:])]) <= tolerance * max(1, abs(
                exact[int(hit["id"][1:])])), (name, hit)
        assert hits[0]["id"] == f"r{int(np.argmax(exact))}", name
        stored = api.call("GET", f"/collections/{name}/vectors/r7").json()["vector"]
        expected = rows[7] if metric != "cosine" else rows[7] / np.linalg.norm(rows[7])
        assert np.allclose(stored, expected, atol=tolerance * np.abs(expected).max()), name


def test_a_batch_and_a_task_filter(api: Api) -> None:
    rng = np.random.default_rng(62)
    first, second = rng.normal(size=(30, 5)), rng.normal(size=(30, 5))
    one = api.submit(first, collection="mixed")
    two = api.submit(second, collection="mixed")
    api.wait_success(one)
    api.wait_success(two)
    resp = api.call("POST", "/collections/mixed/search",
                    {"vectors": [first[3].tolist(), second[4].tolist()], "k": 2})
    assert resp.status_code == 200
    results = resp.json()["results"]
    assert [r["items"][0]["id"] for r in results] == [f"{one}:3", f"{two}:4"]
    only_two = api.search("mixed", first[3], k=60, filter={"task_id": two})
    assert len(only_two) == 30 and {h["task_id"] for h in only_two} == {two}
    assert api.search("mixed", first[3], k=5, filter={"task_id": "no-such-task"}) == []
