"""``hookline collections ...``: vector collections and search."""
from __future__ import annotations

import json

import click

from hookline.cli.context import client, id_command
from hookline.cli.output import emit, fields, json_option, table

COLLECTION_FIELDS = ("name", "dimension", "dimensions", "metric", "dtype", "count", "bytes", "created_at")


@click.group()
def collections() -> None:
    """List, show, search and delete vector collections."""


@collections.command("ls")
@json_option
@click.pass_context
def collections_ls(ctx: click.Context) -> None:
    """Every collection of this tenant."""
    items = list(client(ctx).collections.iter())
    emit({"items": items, "next_cursor": None}, lambda: table(
        [(c.get("name"), c.get("dimension"), c.get("metric"), c.get("dtype"), c.get("count"), c.get("bytes"))
         for c in items], ("COLLECTION", "DIMENSION", "METRIC", "DTYPE", "VECTORS", "BYTES")))


@id_command(collections, "show", "name")
def collections_show(ctx: click.Context, name: str) -> None:
    """Show one collection."""
    record = client(ctx).collections.get(name)
    emit(record, lambda: fields(dict(record), COLLECTION_FIELDS))


@collections.command("search")
@click.argument("name")
@click.option("--vector", "vector_json", help="The query as a JSON list of numbers.")
@click.option("--id", "vector_id", help="Use the stored vector with this id as the query.")
@click.option("-k", "k", type=click.IntRange(1, 1000), default=10, show_default=True, help="Hits to return.")
@json_option
@click.pass_context
def collections_search(ctx: click.Context, name: str, vector_json: str | None, vector_id: str | None,
                       k: int) -> None:
    """The K nearest vectors to a query (--vector) or to a stored vector (--id)."""
    if (vector_json is None) == (vector_id is None):
        raise click.UsageError("pass --vector or --id")
    api = client(ctx)
    if vector_json is not None:
        try:
            vector = json.loads(vector_json)
        except ValueError:
            vector = None
        if not isinstance(vector, list):
            raise click.BadParameter("must be a JSON list of numbers", param_hint="--vector")
    else:
        vector = api.collections.get_vector(name, str(vector_id))["vector"]
    hits = api.collections.search(name, vector, k=k)
    emit({"items": hits}, lambda: table([(h["id"], f"{h['score']:.6f}", h["task_id"]) for h in hits],
                                        ("ID", "SCORE", "TASK")))


@collections.command("rm")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option
@click.pass_context
def collections_rm(ctx: click.Context, name: str, yes: bool) -> None:
    """Delete a collection and every vector in it."""
    if not yes:
        click.confirm(f"Delete collection {name} and all its vectors?", abort=True, err=True)
    client(ctx).collections.delete(name)
    emit({"name": name, "deleted": True}, lambda: click.echo(f"deleted {name}"))


COMMANDS = (collections,)
