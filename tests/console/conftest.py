"""Fixtures of the console's tests: signed-in test clients over a real Redis."""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from selenium import webdriver

from tests.console.browser import chromium_driver

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = _CSRF.search(html)
    assert found, "the page has a form with a CSRF token"
    return found.group(1)


def sign_in(client: FlaskClient, key: str) -> FlaskClient:
    """Sign ``client`` in to the console with ``key``, as the sign-in form does."""
    page = client.get("/console/sign-in")
    resp = client.post("/console/sign-in", data={"api_key": key, "csrf_token": csrf_of(page.text)})
    assert resp.status_code == 302, resp.text
    return client


@pytest.fixture
def operator_key(runner: FlaskCliRunner) -> str:
    result = runner.invoke(args=["keys", "create", "ops", "--operator"])
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


@pytest.fixture
def console(app: Flask, api_key: str) -> FlaskClient:
    """A test client signed in as tenant ``acme``."""
    return sign_in(app.test_client(), api_key)


@pytest.fixture
def submit(client: FlaskClient, auth: dict[str, str]) -> Callable[..., str]:
    """Submit a task through the API as ``acme``; returns its id."""

    def submit_one(**extra: object) -> str:
        body = {"vector_data": [0.1, 0.2], "metadata": {"source": "test"}, **extra}
        resp = client.post("/tasks", json=body, headers=auth)
        assert resp.status_code == 202, resp.text
        return str(resp.get_json()["task_id"])

    return submit_one


@pytest.fixture
def driver() -> Iterator[webdriver.Chrome]:
    """Headless Chromium, closed after the test."""
    yield from chromium_driver()
