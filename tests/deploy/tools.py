"""External tools the deploy/ tests run: found on PATH, or the test skips (fails in CI)."""
from __future__ import annotations

import os
import shutil

import pytest

IN_CI = bool(os.environ.get("CI"))


def find_tool(name: str, package: str, *, required_in_ci: bool) -> str:
    """The path of ``name`` on PATH; in CI a missing required tool fails the test."""
    found = shutil.which(name)
    if found:
        return found
    if IN_CI and required_in_ci:
        pytest.fail(f"{name} is not on PATH in CI: install it (apt-get install {package})")
    pytest.skip(f"{name} is not installed here (apt-get install {package}); CI runs this test")


def promtool() -> str:
    """promtool's path (Debian package ``prometheus``). Called in the test body,
    not as a fixture, so that a missing promtool in CI is a failed test."""
    return find_tool("promtool", "prometheus", required_in_ci=True)
