"""Fixtures for the high-availability tests: a real Sentinel set-up, an app pointed at it."""
from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from hookline.config import Config
from tests.deploy.tools import find_tool
from tests.ha.cluster import SentinelCluster
from tests.procs import wait_until
from webapp import create_app


def need_sentinel() -> None:
    find_tool("redis-sentinel", "redis-sentinel", required_in_ci=True)


@pytest.fixture
def cluster() -> Iterator[SentinelCluster]:
    """A primary, one replica and three Sentinels; the test may kill any of them."""
    need_sentinel()
    started = SentinelCluster(replicas=1)
    try:
        yield started.start()
    finally:
        started.stop()


def app_config(url: str, **env: str) -> Config:
    return Config.from_env(env={
        "REDIS_URL": url,
        "HOOKLINE_CALLBACK_ALLOW": "127.0.0.0/8,::1",
        "HOOKLINE_RATE_LIMIT": "0",
        **env,
    })


@pytest.fixture
def make_app() -> Iterator[Callable[..., Flask]]:
    """Build apps against a given ``REDIS_URL``; their clients are closed at the end."""
    made: list[Flask] = []

    def make(url: str, **env: str) -> Flask:
        app = create_app(app_config(url, **env))
        made.append(app)
        return app

    yield make
    for app in made:
        app.extensions["hookline"].redis.connection_pool.disconnect()


def api_key(app: Flask, tenant: str = "acme") -> dict[str, str]:
    result = app.test_cli_runner().invoke(args=["keys", "create", tenant])
    assert result.exit_code == 0, result.output
    return {"Authorization": f"Bearer {result.output.strip().splitlines()[-1]}"}


def submit(client: FlaskClient, auth: dict[str, str], key: str | None = None) -> tuple[int, dict, dict]:  # type: ignore[type-arg]
    """POST a small task; ``(status, body, headers)``."""
    headers = dict(auth)
    if key is not None:
        headers["Idempotency-Key"] = key
    resp = client.post("/tasks", json={"vector_data": [[1.0, 2.0], [3.0, 4.0]]}, headers=headers)
    return resp.status_code, resp.get_json(silent=True) or {}, dict(resp.headers)


def until_accepted(client: FlaskClient, auth: dict[str, str], key: str,
                   timeout: float) -> tuple[int, dict, dict]:  # type: ignore[type-arg]
    """Retry a submit with ``key`` until it is a 202, or fail with the last answer."""
    answers: list[tuple[int, dict, dict]] = []  # type: ignore[type-arg]

    def accepted() -> bool:
        answers.append(submit(client, auth, key))
        return answers[-1][0] == 202

    try:
        wait_until(accepted, timeout, f"a retry with Idempotency-Key {key} is accepted", interval=0.1)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; answers {sorted({a[0] for a in answers})}, last {answers[-1][:2]}") from None
    return answers[-1]
