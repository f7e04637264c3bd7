"""Shared fixtures: a real redis-server, the Flask app, real process stacks, a receiver."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis as redis_lib
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from actors.services import Services
from hookline.config import Config
from tests.procs import Receiver, RedisServer, Stack
from webapp import create_app


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis(redis_server: RedisServer) -> Iterator[redis_lib.Redis]:
    """A client of the test server, emptied before each test."""
    if redis_server.proc is None or redis_server.proc.poll() is not None:
        redis_server.start()
    client = redis_lib.Redis.from_url(redis_server.url)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def config(redis: redis_lib.Redis, redis_server: RedisServer) -> Config:
    return Config.from_env(env={
        "REDIS_URL": redis_server.url,
        "HOOKLINE_CALLBACK_ALLOW": "127.0.0.0/8,::1",
        "HOOKLINE_RATE_LIMIT": "0",
        "HOOKLINE_MAX_VECTORS": "1000",
        "HOOKLINE_MAX_DIMENSION": "64",
        "HOOKLINE_MAX_BODY_BYTES": "200000",
    })


@pytest.fixture
def services(config: Config) -> Iterator[Services]:
    """What the actors need, built as a worker process builds it."""
    built = Services.build(config)
    yield built
    built.redis.connection_pool.disconnect()


@pytest.fixture
def app(config: Config) -> Iterator[Flask]:
    app = create_app(config)
    yield app
    # The upload sweeper's thread would outlive the test and its Redis, and
    # log to a capture pytest has closed.
    app.extensions["hookline_uploads"].sweeper.stop()
    # Closed here, not whenever the collector gets to the app's cycles.
    app.extensions["hookline"].redis.connection_pool.disconnect()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


def _create_key(runner: FlaskCliRunner, tenant: str) -> str:
    result = runner.invoke(args=["keys", "create", tenant])
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


@pytest.fixture
def api_key(runner: FlaskCliRunner) -> str:
    return _create_key(runner, "acme")


@pytest.fixture
def other_key(runner: FlaskCliRunner) -> str:
    return _create_key(runner, "umbrella")


@pytest.fixture
def auth(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def make_stack(redis: redis_lib.Redis, redis_server: RedisServer,
               tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """Build stacks of real processes; each is stopped when the test ends."""
    stacks: list[Stack] = []

    def make(**env: str) -> Stack:
        # Over the UNIX socket, as `dev.py run` has it; tests/client and tests/deploy use TCP.
        stack = Stack(redis_server.socket_url, tmp_path, **env)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.stop()


@pytest.fixture
def stack(make_stack: Callable[..., Stack]) -> Stack:
    """A running stack: gunicorn, a job worker and a callbacks worker."""
    return make_stack().start()
