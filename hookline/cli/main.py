"""The ``hookline`` command: the root group, its settings and its exit codes."""
from __future__ import annotations

import os
import sys
from typing import Any

import click

from hookline import __version__
from hookline.cli import callbacks, collections, listen, tasks
from hookline.cli.context import TaskEnded
from hookline.cli.output import dump, json_option, wants_json
from hookline.cli.settings import Settings, SettingsError
from hookline.client import (
    ApiError,
    HooklineError,
    NotFound,
    ServerError,
    TransportError,
    WaitTimeout,
)

#: Exit codes: what failed, for scripts.
EXIT_OK = 0
EXIT_API_ERROR = 1  # the API refused the request (4xx other than 404)
EXIT_USAGE = 2  # bad arguments or settings (click's own code for usage errors)
EXIT_NOT_FOUND = 3  # no such task, callback, collection or upload
EXIT_TASK_FAILED = 4  # the awaited task ended FAILURE or REVOKED
EXIT_UNAVAILABLE = 5  # the server answered 5xx or could not be reached
EXIT_TIMEOUT = 6  # the task did not finish within --timeout
EXIT_INTERRUPTED = 130  # Ctrl-C

EXIT_CODES_HELP = """\b
Exit codes:
  0    done
  1    the API refused the request (4xx other than 404)
  2    usage: bad arguments, no API key
  3    not found
  4    the task ended FAILURE or REVOKED (submit --watch, tasks wait)
  5    the server is unavailable or unreachable (5xx, connection)
  6    the task did not finish within --timeout
  130  interrupted
"""


def exit_code_for(exc: BaseException) -> int:
    if isinstance(exc, NotFound):
        return EXIT_NOT_FOUND
    if isinstance(exc, ServerError | TransportError):
        return EXIT_UNAVAILABLE
    if isinstance(exc, WaitTimeout):
        return EXIT_TIMEOUT
    if isinstance(exc, TaskEnded):
        return EXIT_TASK_FAILED
    return EXIT_API_ERROR


class HooklineGroup(click.Group):
    """The root group: turns the client's exceptions into a message and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (HooklineError, TaskEnded) as exc:
            report(ctx, exc)
            raise click.exceptions.Exit(exit_code_for(exc)) from None
        except SettingsError as exc:
            raise click.UsageError(str(exc)) from None
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None


def report(ctx: click.Context, exc: BaseException) -> None:
    """The error on stderr; with ``--json`` as ``{"error": {...}}`` on stdout as well."""
    problem: dict[str, Any]
    if isinstance(exc, ApiError):
        problem = exc.problem
        message = f"{exc.status} {problem.get('title', '')}: {exc.detail}"
        for field, messages in exc.errors.items():
            message += f"\n  {field}: {messages}"
    else:
        problem = {"title": type(exc).__name__, "detail": str(exc)}
        if isinstance(exc, WaitTimeout):
            problem["task"] = exc.task
        message = str(exc)
    # A task that ended badly was printed already; a second JSON document would spoil stdout.
    if wants_json(ctx) and not isinstance(exc, TaskEnded):
        click.echo(dump({"error": problem}))
    click.echo(f"error: {message}", err=True)


@click.group(cls=HooklineGroup, epilog=EXIT_CODES_HELP,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", envvar="HOOKLINE_URL", help="The API's base URL [env HOOKLINE_URL; default "
              "http://127.0.0.1:8000].")
@click.option("--api-key", envvar="HOOKLINE_API_KEY", help="An API key [env HOOKLINE_API_KEY].")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="A TOML file with url and api_key [env HOOKLINE_CONFIG; default "
                   "~/.config/hookline/config.toml].")
@json_option
@click.version_option(__version__, message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, url: str | None, api_key: str | None, config_path: str | None) -> None:
    """Hookline from the command line: submit jobs, watch tasks, manage callbacks, relay webhooks.

    Flags win over the environment, which wins over the config file.
    """
    ctx.obj = Settings.resolve(url=url, api_key=api_key, config_path=config_path, env=os.environ)


for _module in (tasks, callbacks, collections, listen):
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    """The console-script entry point."""
    cli.main(args=argv, prog_name="hookline")


if __name__ == "__main__":
    sys.exit(main())
