"""``hookline callbacks ...``: registered webhook endpoints."""
from __future__ import annotations

from datetime import datetime

import click

from hookline.cli.context import client, id_command
from hookline.cli.output import emit, fields, json_option, table
from hookline.client.models import Callback

CALLBACK_FIELDS = ("id", "url", "description", "disabled", "disabled_reason", "created_at")


def show(record: Callback) -> None:
    emit(record, lambda: fields(dict(record), CALLBACK_FIELDS))


def show_secret(record: dict[str, object]) -> None:
    """A new secret: shown once, here, so it is printed in full."""
    def human() -> None:
        fields(record, (*CALLBACK_FIELDS, "secret", "previous_secret_expires_at"))
        click.echo("Store the secret now; it is not shown again.", err=True)

    emit(record, human)


@click.group()
def callbacks() -> None:
    """Register, change and recover webhook endpoints."""


@callbacks.command("ls")
@json_option
@click.pass_context
def callbacks_ls(ctx: click.Context) -> None:
    """Every registered callback."""
    items = list(client(ctx).callbacks.iter())
    emit({"items": items, "next_cursor": None}, lambda: table(
        [(c.get("id"), "disabled" if c.get("disabled") else "enabled", c.get("url"), c.get("disabled_reason"))
         for c in items], ("CALLBACK", "STATE", "URL", "DISABLED REASON")))


@id_command(callbacks, "show", "callback_id")
def callbacks_show(ctx: click.Context, callback_id: str) -> None:
    """Show one callback."""
    show(client(ctx).callbacks.get(callback_id))


@callbacks.command("create")
@click.argument("url")
@click.option("--description", help="What the endpoint is for.")
@json_option
@click.pass_context
def callbacks_create(ctx: click.Context, url: str, description: str | None) -> None:
    """Register URL; prints its signing secret, once."""
    show_secret(dict(client(ctx).callbacks.create(url, description)))


@id_command(callbacks, "rotate", "callback_id")
def callbacks_rotate(ctx: click.Context, callback_id: str) -> None:
    """A new signing secret; the old one keeps signing beside it for a grace period."""
    show_secret(dict(client(ctx).callbacks.rotate(callback_id)))


@callbacks.command("recover")
@click.argument("callback_id")
@click.option("--since", required=True, type=click.DateTime(("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S",
                                                            "%Y-%m-%d %H:%M:%S", "%Y-%m-%d")),
              help="Resend deliveries that failed since this time (ISO 8601; UTC unless it says).")
@json_option
@click.pass_context
def callbacks_recover(ctx: click.Context, callback_id: str, since: datetime) -> None:
    """Resend every delivery of a callback that failed since a time."""
    answer = client(ctx).callbacks.recover(callback_id, since)
    emit(answer, lambda: click.echo(f"{answer['count']} deliveries queued for resending"))


@id_command(callbacks, "enable", "callback_id")
def callbacks_enable(ctx: click.Context, callback_id: str) -> None:
    """Deliver to this callback again."""
    show(client(ctx).callbacks.enable(callback_id))


@id_command(callbacks, "disable", "callback_id")
def callbacks_disable(ctx: click.Context, callback_id: str) -> None:
    """Stop delivering to this callback."""
    show(client(ctx).callbacks.disable(callback_id))


@id_command(callbacks, "rm", "callback_id")
def callbacks_rm(ctx: click.Context, callback_id: str) -> None:
    """Delete a callback."""
    client(ctx).callbacks.delete(callback_id)
    emit({"id": callback_id, "deleted": True}, lambda: click.echo(f"deleted {callback_id}"))


COMMANDS = (callbacks,)
