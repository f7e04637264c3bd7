"""Redis Lua scripts kept as ``.lua`` files beside the module that runs them.

A script's first lines are comments naming its KEYS and ARGV. A line
``-- include: name`` is replaced by the file ``name.lua`` from the same
folder (each piece at most once per script), so shared pieces such as
``as_record`` live in one file instead of being glued on as strings.
"""
from __future__ import annotations

import re
from importlib import resources
from typing import Any

import redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

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


class LuaScript(Script):
    """A registered script, called straight by its hash.

    redis-py's ``Script.__call__`` imports its pipeline class on every call
    to check whether it is given one; in a job worker that was about 6 % of
    the time it held the GIL (py-spy). Only a call with a ``client`` (a
    pipeline) goes through it now.
    """

    def __call__(self, keys: Any = None, args: Any = None, client: Any = None) -> Any:
        if client is not None:
            return super().__call__(keys, args, client)
        keys = keys or ()
        try:
            return self.registered_client.evalsha(self.sha, len(keys), *keys, *(args or ()))
        except NoScriptError:
            # Redis restarted without the script, or this is another server.
            self.sha = self.registered_client.script_load(self.script)  # type: ignore[assignment]
            return self.registered_client.evalsha(self.sha, len(keys), *keys, *(args or ()))


def register(client: redis.Redis, package: str, name: str) -> Script:
    """Register ``<package>/lua/<name>.lua`` with ``client`` (no round trip until first run)."""
    return LuaScript(client, source(package, name))
