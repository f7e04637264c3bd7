"""What every command shares: the invocation's ``Client``, and how a task ends badly."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from hookline.cli.output import json_option
from hookline.cli.settings import Settings
from hookline.client import Client


class TaskEnded(Exception):
    """An awaited task ended without success; the CLI exits with ``EXIT_TASK_FAILED``."""


def client(ctx: click.Context) -> Client:
    """The one ``Client`` of this invocation, made on first use and closed at exit.

    Raises:
        click.UsageError: no API key in the flags, the environment or the config file.
    """
    root = ctx.find_root()
    made = root.meta.get("hookline.client")
    if made is None:
        settings: Settings = root.obj
        if not settings.api_key:
            raise click.UsageError("no API key: pass --api-key, set HOOKLINE_API_KEY, or put "
                                   "api_key in the config file")
        made = Client(settings.url, settings.api_key)
        root.meta["hookline.client"] = made
        root.call_on_close(made.close)
    return made  # type: ignore[no-any-return]


def id_command(group: click.Group, name: str, argument: str) -> Callable[[Callable[..., Any]], click.Command]:
    """A command of ``group`` that takes one id (``argument``), ``--json`` and the context."""
    def decorate(func: Callable[..., Any]) -> click.Command:
        return group.command(name)(click.argument(argument)(json_option(click.pass_context(func))))

    return decorate
