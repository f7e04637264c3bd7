"""Stacks of real processes for the client and CLI tests, one per test module.

A module's stack is stopped when the module ends, so that its workers never
take messages of other tests' stacks on the same Redis.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis as redis_lib

from hookline.client import Client
from tests.client.support import Receiver, Stack, new_key
from tests.procs import RedisServer


def _module_stack(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory,
                  with_workers: bool, with_index: bool = False) -> Iterator[Stack]:
    if redis_server.proc is None or redis_server.proc.poll() is not None:
        redis_server.start()
    redis_lib.Redis.from_url(redis_server.url).flushall()
    stack = Stack(redis_server.url, tmp_path_factory.mktemp("stack"))
    try:
        if with_index:
            stack.start_index()
        if with_workers:
            stack.start()
        else:
            stack.start_web()
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def full_stack(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """gunicorn, a job worker and a callbacks worker, for the whole module."""
    yield from _module_stack(redis_server, tmp_path_factory, with_workers=True)


@pytest.fixture(scope="module")
def search_stack(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """gunicorn, both workers and the index process, for the whole module: collections can be searched."""
    yield from _module_stack(redis_server, tmp_path_factory, with_workers=True, with_index=True)


@pytest.fixture(scope="module")
def web_only(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """gunicorn alone: submitted tasks stay PENDING."""
    yield from _module_stack(redis_server, tmp_path_factory, with_workers=False)


@pytest.fixture
def connect() -> Iterator[Callable[..., Client]]:
    """``connect(stack)``: a Client with a key for a tenant of its own; closed after the test."""
    made: list[Client] = []

    def make(stack: Stack, **kwargs: Any) -> Client:
        client = Client(stack.url, new_key(stack), **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP server that records the webhooks (and forwards) it gets."""
    server = Receiver()
    yield server
    server.close()
