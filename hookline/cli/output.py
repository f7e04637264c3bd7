"""What the CLI prints: JSON for scripts (``--json``), short tables for people."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import click


def wants_json(ctx: click.Context) -> bool:
    return bool(ctx.find_root().meta.get("hookline.json"))


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.find_root().meta["hookline.json"] = True
    return value


def json_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--json`` on a command: print JSON on stdout instead of text."""
    return click.option("--json", "as_json", is_flag=True, expose_value=False, is_eager=True,
                        callback=_set_json, help="Print JSON for scripts.")(func)


def dump(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=str)


def emit(data: Any, human: Callable[[], None] | None = None) -> None:
    """Print ``data`` as JSON with ``--json``; otherwise call ``human`` (or print it as JSON)."""
    if human is None or wants_json(click.get_current_context()):
        click.echo(dump(data))
    else:
        human()


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> None:
    """Columns padded to their widest cell; ``-`` for an empty cell."""
    cells = [[("-" if v is None or v == "" else str(v)) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    for row in [list(headers), *cells]:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def fields(record: dict[str, Any], names: Sequence[str]) -> None:
    """``name: value`` lines; nested values as compact JSON."""
    for name in names:
        if name in record:
            value = record[name]
            shown = json.dumps(value, default=str) if isinstance(value, dict | list) else value
            click.echo(f"{name + ':':<16}{'-' if shown is None else shown}")
