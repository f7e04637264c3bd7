"""Fixtures for the deploy/ tests: the shipped files, parsed, and the renderer as a module."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.deploy.promql import ALERTS, DASHBOARD, DEPLOY


@pytest.fixture(scope="session")
def deploy_dir() -> Path:
    return DEPLOY


@pytest.fixture(scope="session")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def alerts() -> dict[str, Any]:
    return yaml.safe_load(ALERTS.read_text())  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def render_dashboard() -> ModuleType:
    """deploy/render_dashboard.py, imported as a module (deploy/ is no package)."""
    spec = importlib.util.spec_from_file_location("render_dashboard", DEPLOY / "render_dashboard.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
