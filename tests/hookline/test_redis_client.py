"""The Redis client every process uses: a connection per thread, against a real redis-server."""
from __future__ import annotations

import gc
import multiprocessing
import threading
from collections.abc import Iterator

import pytest
import redis as redis_lib

from hookline.redis_client import connect
from tests.procs import RedisServer, wait_until


@pytest.fixture(params=["tcp", "unix"])
def client(request: pytest.FixtureRequest, redis: redis_lib.Redis,
           redis_server: RedisServer) -> Iterator[redis_lib.Redis]:
    """A client over TCP, and one over the server's UNIX socket (``unix://...``)."""
    made = connect(redis_server.url if request.param == "tcp" else redis_server.socket_url)
    yield made
    made.close()


def in_thread(call: object) -> object:
    box: list[object] = []
    thread = threading.Thread(target=lambda: box.append(call()))  # type: ignore[operator]
    thread.start()
    thread.join(10)
    return box[0]


def open_ids(redis: redis_lib.Redis) -> set[int]:
    return {int(c["id"]) for c in redis.client_list()}


def test_a_socket_url_reaches_the_server_over_its_unix_socket(
    redis: redis_lib.Redis, redis_server: RedisServer
) -> None:
    made = connect(redis_server.socket_url)
    try:
        made.set("k", "over the socket")
        mine = made.client_id()
        seen = {int(c["id"]): c for c in redis.client_list()}
        # A UNIX socket client has no TCP peer: Redis lists it as "/path:0".
        assert seen[mine]["addr"].startswith(redis_server.socket)
        assert redis.get("k") == b"over the socket"
    finally:
        made.close()


def test_each_thread_keeps_one_connection_of_its_own(client: redis_lib.Redis) -> None:
    mine = client.client_id()
    assert client.client_id() == mine
    assert client.set("k", "v") and client.get("k") == b"v"
    theirs = in_thread(client.client_id)
    assert theirs != mine
    assert client.client_id() == mine


def test_a_threads_connection_closes_when_the_thread_ends(
    client: redis_lib.Redis, redis: redis_lib.Redis
) -> None:
    theirs = in_thread(client.client_id)
    gc.collect()
    wait_until(lambda: theirs not in open_ids(redis), 10, "the ended thread's connection closes")


def test_a_call_inside_a_watch_transaction_does_not_share_the_watching_connection(
    client: redis_lib.Redis,
) -> None:
    client.set("counter", 1)
    client.set("other", "x")

    def bump(pipe: redis_lib.client.Pipeline) -> None:
        current = int(pipe.get("counter"))
        # A plain call while the pipeline holds this thread's connection.
        assert client.get("other") == b"x"
        pipe.multi()
        pipe.set("counter", current + 1)

    client.transaction(bump, "counter")
    assert client.get("counter") == b"2"
    assert client.get("other") == b"x"


def test_the_connection_comes_back_after_redis_restarts(
    client: redis_lib.Redis, redis_server: RedisServer
) -> None:
    client.set("kept", "1")
    redis_server.shutdown()
    with pytest.raises(redis_lib.ConnectionError):
        client.get("kept")
    redis_server.start()
    assert client.get("kept") == b"1"


def _child_id(client: redis_lib.Redis, out: multiprocessing.Queue) -> None:
    out.put((client.client_id(), client.get("k")))


def test_a_forked_child_opens_its_own_connection(client: redis_lib.Redis) -> None:
    client.set("k", "parent")
    mine = client.client_id()
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    child = context.Process(target=_child_id, args=(client, out))
    child.start()
    child_id, value = out.get(timeout=20)
    child.join(20)
    assert child.exitcode == 0
    assert child_id != mine
    assert value == b"parent"
    assert client.client_id() == mine


class Interrupted(BaseException):
    """What Dramatiq's time limit raises inside a thread, at any point."""


def test_a_call_interrupted_before_its_reply_leaves_nothing_for_the_next(
    client: redis_lib.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    client.set("k", "v")
    mine = client.client_id()
    real = redis_lib.Redis.parse_response

    def interrupted(self: redis_lib.Redis, connection: object, command_name: str, **options: object) -> object:
        if command_name == "INCRBY":
            raise Interrupted()  # the command reached Redis; its reply is not read
        return real(self, connection, command_name, **options)

    monkeypatch.setattr(redis_lib.Redis, "parse_response", interrupted)
    with pytest.raises(Interrupted):
        client.incr("n")
    monkeypatch.undo()
    assert client.get("k") == b"v"  # not the INCRBY reply
    assert client.get("n") == b"1"
    assert client.client_id() != mine  # the connection was replaced
