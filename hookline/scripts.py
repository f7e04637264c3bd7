"""Redis Lua scripts kept as ``.lua`` files beside the module that runs them.

A script's first lines are comments naming its KEYS and ARGV. A line
``-- include: name`` is replaced by the file ``name.lua`` from the same
folder (each piece at most once per script), so shared pieces such as
``as_record`` live in one file instead of being glued on as strings.
"""
from __future__ import annotations

import re
from importlib import resources

import redis
from redis.commands.core import Script

_INCLUDE = re.compile(r"^--\s*include:\s*([A-Za-z0-9_]+)\s*$")


class ScriptError(Exception):
    """A script file is missing or includes a piece that does not exist."""


def source(package: str, name: str) -> str:
    """The text of ``<package>/lua/<name>.lua`` with its includes resolved.

    Raises:
        ScriptError: the file, or a piece it includes, does not exist.
    """
    return _resolve(package, name, set())


def _resolve(package: str, name: str, seen: set[str]) -> str:
    seen.add(name)
    try:
        text = resources.files(package).joinpath("lua", f"{name}.lua").read_text()
    except (FileNotFoundError, ModuleNotFoundError) as exc:
        raise ScriptError(f"no Lua script {name!r} in {package}") from exc
    lines = []
    for line in text.splitlines():
        match = _INCLUDE.match(line)
        if match is None:
            lines.append(line)
        elif match.group(1) not in seen:
            lines.append(_resolve(package, match.group(1), seen))
    return "\n".join(lines) + "\n"


def register(client: redis.Redis, package: str, name: str) -> Script:
    """Register ``<package>/lua/<name>.lua`` with ``client`` (no round trip until first run)."""
    return client.register_script(source(package, name))
