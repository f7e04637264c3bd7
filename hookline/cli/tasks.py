"""``hookline submit``, ``hookline tasks ...`` and ``hookline deliveries ...``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from hookline.cli.context import client, id_command
from hookline.cli.output import emit, json_option, table
from hookline.cli.payload import UPLOAD_THRESHOLD_BYTES, load_job
from hookline.cli.watch import follow, show_task
from hookline.client.models import Page, Task

STATUSES = ("PENDING", "STARTED", "RETRY", "SUCCESS", "FAILURE", "REVOKED")
#: Seconds ``--watch`` and ``tasks wait`` wait by default.
DEFAULT_WAIT_SECONDS = 600.0

timeout_option = click.option("--timeout", type=click.FloatRange(min=0), default=DEFAULT_WAIT_SECONDS,
                              show_default=True, help="Seconds to wait for the task to end.")


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--collection", help="The collection to index the vectors into.")
@click.option("--no-index", is_flag=True,
              help="Process and summarise the vectors, and keep them in no collection.")
@click.option("--callback", help="A registered callback's id (or its URL) to notify when the task ends.")
@click.option("--metadata", "metadata_json", help="A JSON object stored with the task.")
@click.option("--upload", "force_upload", is_flag=True,
              help="Send the vectors through the resumable upload whatever their size.")
@click.option("--upload-threshold", type=click.IntRange(min=0), default=UPLOAD_THRESHOLD_BYTES,
              envvar="HOOKLINE_UPLOAD_THRESHOLD", show_default=True,
              help="Bytes of JSON above which the vectors go through the resumable upload; lower "
                   "it for a server with a smaller HOOKLINE_MAX_BODY_BYTES [env HOOKLINE_UPLOAD_THRESHOLD].")
@click.option("--watch", is_flag=True, help="Show progress until the task ends, then print it.")
@timeout_option
@json_option
@click.pass_context
def submit(ctx: click.Context, file: Path, collection: str | None, no_index: bool,
           callback: str | None, metadata_json: str | None, force_upload: bool,
           upload_threshold: int, watch: bool, timeout: float) -> None:
    """Submit the job in FILE: .json (a task body or a list of vectors) or .npy.

    Jobs too big for one request (over --upload-threshold, 8 MiB of JSON by
    default) are sent through the resumable upload first.
    """
    job = load_job(file, force_upload=force_upload, threshold=upload_threshold)
    fields: dict[str, Any] = dict(job.fields)
    if metadata_json is not None:
        fields["metadata"] = {**fields.get("metadata", {}), **_json_object(metadata_json, "--metadata")}
    if collection is not None:
        fields["collection"] = collection
    if no_index:
        fields["index"] = False
    if callback is not None:
        fields.pop("callback_id", None)
        fields.pop("callback_url", None)
        fields["callback_url" if "://" in callback else "callback_id"] = callback
    api = client(ctx)
    if job.upload_path is not None:
        try:
            fields["upload_id"] = api.upload(job.upload_path)
        finally:
            if job.temporary:
                job.upload_path.unlink(missing_ok=True)
    accepted = api.tasks.submit(**fields)
    if watch:
        follow(ctx, api, accepted["task_id"], timeout)
        return
    emit(accepted, lambda: click.echo(accepted["task_id"]))


def _json_object(text: str, name: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object", param_hint=name)
    return value


@click.group()
def tasks() -> None:
    """List, show, cancel and wait for tasks."""


@tasks.command("ls")
@click.option("--status", type=click.Choice(STATUSES, case_sensitive=False),
              help="Only tasks in this status.")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True, help="Tasks per page.")
@click.option("--cursor", help="Where the previous page ended (its next_cursor).")
@click.option("--all", "every", is_flag=True, help="Every page, not just one.")
@json_option
@click.pass_context
def tasks_ls(ctx: click.Context, status: str | None, limit: int, cursor: str | None, every: bool) -> None:
    """List tasks, newest first."""
    api = client(ctx)
    status = status.upper() if status else None
    page: Page[Task]
    if every:
        page = {"items": list(api.tasks.iter(status=status, page_size=limit)), "next_cursor": None}
    else:
        page = api.tasks.list(status=status, limit=limit, cursor=cursor)

    def human() -> None:
        table([(t.get("task_id"), t.get("status"), t.get("created_at"), t.get("finished_at"),
                _delivery(t)) for t in page["items"]],
              ("TASK", "STATUS", "CREATED", "FINISHED", "WEBHOOK"))
        if page["next_cursor"]:
            click.echo(f"more: --cursor {page['next_cursor']}")

    emit(page, human)


def _delivery(task: Task) -> str | None:
    callback = task.get("callback")
    return callback["delivery"] if callback else None


@id_command(tasks, "show", "task_id")
def tasks_show(ctx: click.Context, task_id: str) -> None:
    """Show one task."""
    show_task(client(ctx).tasks.get(task_id))


@id_command(tasks, "cancel", "task_id")
def tasks_cancel(ctx: click.Context, task_id: str) -> None:
    """Cancel a task: a pending one never runs, a running one stops at its next step."""
    show_task(client(ctx).tasks.cancel(task_id))


@tasks.command("wait")
@click.argument("task_id")
@timeout_option
@json_option
@click.pass_context
def tasks_wait(ctx: click.Context, task_id: str, timeout: float) -> None:
    """Wait for a task to end, with a progress bar, then print it."""
    follow(ctx, client(ctx), task_id, timeout)


@click.group()
def deliveries() -> None:
    """A task's webhook attempts, and resending its webhook."""


@id_command(deliveries, "ls", "task_id")
def deliveries_ls(ctx: click.Context, task_id: str) -> None:
    """Every webhook attempt of a task, oldest first."""
    items = list(client(ctx).tasks.iter_deliveries(task_id))
    emit({"items": items, "next_cursor": None}, lambda: table(
        [(d["attempt"], d["at"], d["trigger"], d["status_code"], d["error"], d["duration_ms"])
         for d in items],
        ("ATTEMPT", "AT", "TRIGGER", "STATUS", "ERROR", "MS")))


@id_command(deliveries, "resend", "task_id")
def deliveries_resend(ctx: click.Context, task_id: str) -> None:
    """Send a finished task's webhook once more."""
    answer = client(ctx).tasks.retry_delivery(task_id)
    emit(answer, lambda: click.echo(f"resend of {task_id} queued"))


COMMANDS = (submit, tasks, deliveries)
