"""The set-up installs the optional C extensions where it can, and goes on where it cannot."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.procs import ROOT

sys.path.insert(0, str(ROOT))

import dev  # noqa: E402

#: Real pip, offline: nothing here may reach a package index.
PIP = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-index", "-q"]


def test_an_optional_requirement_that_cannot_be_installed_is_skipped_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    requirements = tmp_path / "requirements-fast.txt"
    requirements.write_text(f"{tmp_path / 'no-such-source-tree'}\n")
    assert dev.install_optional(PIP, requirements) is False
    said = capsys.readouterr().out
    assert "skipped requirements-fast.txt" in said
    assert "runs without them" in said
    assert "add them later: .venv/bin/pip install -r requirements-fast.txt" in said


def test_an_optional_requirement_that_installs_says_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    requirements = tmp_path / "requirements-fast.txt"
    requirements.write_text("pip\n")  # already there: pip succeeds without an index
    assert dev.install_optional(PIP, requirements) is True
    assert capsys.readouterr().out == ""


def test_every_optional_requirement_is_pinned() -> None:
    lines = [line.strip() for line in (ROOT / dev.OPTIONAL_REQUIREMENTS).read_text().splitlines()]
    pins = [line for line in lines if line and not line.startswith("#")]
    assert pins
    for pin in pins:
        name, _, version = pin.partition("==")
        assert name and version, f"{pin} is not pinned"
