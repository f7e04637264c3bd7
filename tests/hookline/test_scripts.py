"""Lua scripts in files: includes resolve, every shipped script loads into a real Redis."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import redis as redis_lib

from hookline import scripts

SHIPPED = [(package, path.stem)
           for package in ("hookline", "actors", "callbacks", "webapp")
           for path in sorted(Path(str(resources.files(package).joinpath("lua"))).glob("*.lua"))]
#: Pieces that other scripts include; they are not run on their own.
PIECES = {"as_record", "settle", "chunk_gate", "repoint", "vectors_write", "claimed_answer",
          "piece_names"}


def test_an_include_line_is_replaced_by_its_piece_once() -> None:
    finish = scripts.source("hookline", "task_finish")
    assert "-- include:" not in finish
    # settle includes as_record, and so does nothing else here: one copy each
    assert finish.count("local function as_record(") == 1
    assert finish.count("local function settle(") == 1
    assert finish.index("local function as_record(") < finish.index("local function settle(")


def test_a_missing_script_or_piece_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(scripts.ScriptError, match="no Lua script 'nope' in hookline"):
        scripts.source("hookline", "nope")
    # Given a package whose script includes a piece that does not exist
    package = tmp_path / "luapkg"
    (package / "lua").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "lua" / "main.lua").write_text("-- include: missing\nreturn 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(scripts.ScriptError, match="'missing'"):
        scripts.source("luapkg", "main")


def test_every_package_with_lua_files_is_covered() -> None:
    # A package that ships scripts but is missing above would go unchecked.
    root = Path(str(resources.files("hookline"))).parent
    shipping = {path.parent.parent.name for path in root.glob("*/lua/*.lua")}
    assert shipping == {package for package, _ in SHIPPED}


@pytest.mark.parametrize(("package", "name"), SHIPPED)
def test_every_script_names_its_keys_and_argv_and_compiles(
        package: str, name: str, redis: redis_lib.Redis) -> None:
    text = scripts.source(package, name)
    if name not in PIECES:
        head = [line for line in text.splitlines() if line.startswith("--")]
        assert any("KEYS:" in line for line in head) and any("ARGV:" in line for line in head)
    # SCRIPT LOAD compiles without running: a syntax error would fail here
    sha = redis.script_load(text)
    assert redis.script_exists(sha) == [True]
