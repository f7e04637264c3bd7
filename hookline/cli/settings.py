"""Where the CLI connects: flags, then the environment, then a config file.

The file is TOML, ``~/.config/hookline/config.toml`` unless ``--config`` or
``HOOKLINE_CONFIG`` names another::

    url = "https://hookline.example"
    api_key = "hlk_..."
"""
from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from hookline.client import DEFAULT_URL


class SettingsError(Exception):
    """The config file cannot be read, or no API key is set anywhere."""


def default_config_path(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME", "~"), ".config")
    return Path(base).expanduser() / "hookline" / "config.toml"


@dataclass(frozen=True)
class Settings:
    url: str
    api_key: str | None

    @classmethod
    def resolve(cls, *, url: str | None, api_key: str | None, config_path: str | None,
                env: Mapping[str, str]) -> Settings:
        """Settings from the flags given, else the environment, else the file.

        ``url`` and ``api_key`` are the flags' values, already falling back to
        ``HOOKLINE_URL`` / ``HOOKLINE_API_KEY`` (click reads those).

        Raises:
            SettingsError: the named config file is missing or not valid TOML.
        """
        named = config_path or env.get("HOOKLINE_CONFIG")
        path = Path(named).expanduser() if named else default_config_path(env)
        file: dict[str, object] = {}
        if path.is_file():
            try:
                file = tomllib.loads(path.read_text())
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise SettingsError(f"cannot read {path}: {exc}") from None
        elif named:
            raise SettingsError(f"no config file at {path}")
        file_url, file_key = file.get("url"), file.get("api_key")
        return cls(
            url=url or (str(file_url) if file_url else DEFAULT_URL),
            api_key=api_key or (str(file_key) if file_key else None),
        )
