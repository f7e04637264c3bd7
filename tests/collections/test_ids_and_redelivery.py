"""Vector ids: sent ids upsert; a job run twice never duplicates a vector."""
from __future__ import annotations

import numpy as np
import redis as redis_lib

from tests.collections.conftest import Api, unit_rows
from tests.procs import Stack, queued, settled, wait_until


def without_workers(make_stack: object, api_key: str) -> tuple[Stack, Api]:
    """A stack with its web and index running, and no job worker yet."""
    stack: Stack = make_stack()  # type: ignore[operator]
    stack.start_web()
    stack.start_index()
    return stack, Api(stack.url, api_key)


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
    stack, api = without_workers(make_stack, api_key)
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


def test_a_jobs_ids_live_in_its_record_until_it_ends_and_leave_nothing_behind(
    make_stack: object, redis: redis_lib.Redis, api_key: str
) -> None:
    # Given: a job with ids accepted while no worker runs
    stack, api = without_workers(make_stack, api_key)
    rng = np.random.default_rng(23)
    task_id = api.submit(unit_rows(rng, 2, 4), collection="kept", ids=["x", "y"])
    assert redis.hget(f"hl:task:{task_id}", "ids") == b'["x","y"]'
    # and one whose collection is made again with another dimension before it runs, so it fails
    failed = api.submit(unit_rows(rng, 2, 4), collection="moved", ids=["p", "q"])
    assert api.call("DELETE", "/collections/moved").status_code == 204
    assert api.call("POST", "/collections", {"name": "moved", "dimension": 8}).status_code == 201
    # When: a worker runs both
    stack.start_worker(threads=2)
    api.wait_success(task_id)
    wait_until(lambda: api.call("GET", f"/tasks/{failed}").json()["status"] == "FAILURE", 30,
               "the bad job fails")
    # Then: the ids are the vectors' and neither record nor any other key keeps them
    assert api.call("GET", "/collections/kept/vectors/y").json()["task_id"] == task_id
    for done in (task_id, failed):
        assert redis.hget(f"hl:task:{done}", "ids") is None
    assert not redis.keys("hl:tids:*")


def test_a_collection_made_again_between_two_jobs_gets_the_second_jobs_vectors_in_its_own_type(
    api: Api,
) -> None:
    rng = np.random.default_rng(24)
    # Given: a worker that wrote a job into an f32 collection
    api.wait_success(api.submit(unit_rows(rng, 2, 6), collection="again"))
    # When: the collection is made again, as i8, and a job of the same dimension follows
    assert api.call("DELETE", "/collections/again").status_code == 204
    assert api.call("POST", "/collections",
                    {"name": "again", "dimension": 6, "dtype": "i8"}).status_code == 201
    rows = unit_rows(rng, 3, 6)
    second = api.submit(rows, collection="again")
    api.wait_success(second)
    # Then: the new collection holds the second job's vectors, stored as i8 (close, not exact)
    assert api.call("GET", "/collections/again").json()["count"] == 3
    found = api.call("GET", f"/collections/again/vectors/{second}:1").json()
    assert np.allclose(found["vector"], rows[1], atol=0.02)
    assert api.search("again", rows[2], k=1)[0]["id"] == f"{second}:2"
