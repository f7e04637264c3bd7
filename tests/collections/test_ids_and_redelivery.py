"""Vector ids: sent ids upsert; a job run twice never duplicates a vector."""
from __future__ import annotations

import numpy as np
import redis as redis_lib

from tests.collections.conftest import Api, unit_rows
from tests.procs import Stack, queued, settled, wait_until


def test_the_same_id_again_replaces_the_vector(api: Api) -> None:
    rng = np.random.default_rng(21)
    first, second = unit_rows(rng, 3, 6), unit_rows(rng, 3, 6)
    one = api.submit(first, collection="named", ids=["a", "b", "c"])
    api.wait_success(one)
    two = api.submit(second, collection="named", ids=["c", "d", "e"])
    api.wait_success(two)

    shown = api.call("GET", "/collections/named").json()
    assert shown["count"] == 5
    c = api.call("GET", "/collections/named/vectors/c").json()
    assert c["task_id"] == two
    assert np.allclose(c["vector"], second[0], atol=1e-6)
    # The old vector of "c" is found nowhere; the new one is, under "c".
    assert api.search("named", first[2], k=5)[0]["id"] != "c"
    assert api.search("named", second[0], k=1)[0] == {
        "id": "c", "task_id": two, "score": api.search("named", second[0], k=1)[0]["score"]}
    # Deleting task one's vectors leaves "c", which task two owns now.
    assert api.call("POST", "/collections/named/vectors/delete",
                    {"task_id": one}).json() == {"deleted": 2}
    assert api.call("GET", "/collections/named").json()["count"] == 3
    assert api.call("GET", "/collections/named/vectors/c").status_code == 200


def test_ids_that_start_with_a_hash_are_found_and_deleted_by_task(api: Api) -> None:
    # Given a job whose ids look like the count an entry once held
    rows = unit_rows(np.random.default_rng(23), 3, 4)
    task_id = api.submit(rows, collection="hashes", ids=["#1", "#2", "#3"])
    api.wait_success(task_id)
    # Then a search filtered by the task finds its vectors
    hits = api.search("hashes", rows[0], k=5, filter={"task_id": task_id})
    assert sorted(hit["id"] for hit in hits) == ["#1", "#2", "#3"]
    # And a delete by task removes them
    assert api.call("POST", "/collections/hashes/vectors/delete",
                    {"task_id": task_id}).json() == {"deleted": 3}
    assert api.call("GET", "/collections/hashes").json()["count"] == 0


def test_a_redelivered_job_does_not_duplicate_vectors(
    make_stack: object, redis: redis_lib.Redis, api_key: str
) -> None:
    # Given: a job accepted while no worker runs, whose message is then on the
    # queue twice (as after a redelivery)
    stack: Stack = make_stack()  # type: ignore[operator]
    stack.start_web()
    stack.start_index()
    api = Api(stack.url, api_key)
    rows = unit_rows(np.random.default_rng(22), 25, 5)
    task_id = api.submit(rows, collection="twice")
    (message,) = queued(redis, "jobs")
    redis.lpush("hl:q:jobs", message)
    # When: a worker takes both
    stack.start_worker(threads=2)
    api.wait_success(task_id)
    wait_until(lambda: settled(redis, "jobs"), 30, "both messages are acknowledged")
    # Then: each vector is there once
    assert api.call("GET", "/collections/twice").json()["count"] == 25
    assert len(api.ids("twice", rows[0], k=100)) == 25
