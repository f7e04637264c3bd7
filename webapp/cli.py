"""``flask --app webapp keys ...``: API key management."""
from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from webapp.services import services


def register(app: Flask) -> None:
    keys = AppGroup("keys", help="Create, list and revoke API keys.")

    @keys.command("create")
    @click.argument("name")
    @click.option("--operator", is_flag=True,
                  help="An operator's key: signs in to the console across tenants; "
                       "the tenant API refuses it.")
    def create(name: str, operator: bool) -> None:
        """Create an API key for tenant NAME; the key is printed once, on the last line."""
        try:
            key = services().keys.create(name, operator=operator)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="NAME") from None
        whose = f"operator {name!r}" if operator else f"tenant {name!r}"
        click.echo(f"Created an API key for {whose}. Store it now; it is not shown again:")
        click.echo(key)

    @keys.command("list")
    def list_keys() -> None:
        """List key ids and their tenants (never the keys); operators' keys are marked."""
        for key_id, tenant, operator in services().keys.list():
            click.echo(f"{key_id}\t{tenant}" + ("\toperator" if operator else ""))

    @keys.command("revoke")
    @click.argument("key_id")
    def revoke(key_id: str) -> None:
        """Revoke the key with id KEY_ID (the part after 'hlk_')."""
        if not services().keys.revoke(key_id):
            raise click.ClickException(f"no key with id {key_id}")
        click.echo(f"Revoked key {key_id}.")

    app.cli.add_command(keys)
