"""Following a task until it ends: a progress bar on stderr, then the task."""
from __future__ import annotations

import sys
from typing import Any

import click

from hookline.cli.context import TaskEnded
from hookline.cli.output import emit, fields, wants_json
from hookline.client import Client
from hookline.client.models import Task

#: What ``tasks show`` and the end of a watch print, in this order.
TASK_FIELDS = ("task_id", "status", "created_at", "started_at", "finished_at", "attempts", "progress",
               "chunks", "result", "error", "metadata", "callback")


class ProgressLine:
    """A click progress bar fed with each new version of the task."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        self.bar: Any = None
        self.shown = 0

    def __call__(self, task: Task) -> None:
        progress = task.get("progress") or {"done": 0, "total": 0}
        total, done = max(1, int(progress.get("total") or 0)), int(progress.get("done") or 0)
        if self.bar is None:
            self.bar = click.progressbar(length=total, label=f"{self.task_id} {task.get('status')}",
                                         file=sys.stderr, show_pos=True)
            self.bar.__enter__()
        self.bar.label = f"{self.task_id} {task.get('status')}"
        if done > self.shown:
            self.bar.update(done - self.shown)
            self.shown = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


def show_task(task: Task) -> None:
    emit(task, lambda: fields(dict(task), TASK_FIELDS))


def follow(ctx: click.Context, api: Client, task_id: str, timeout: float) -> Task:
    """Wait for the task with a progress bar (none with ``--json``) and print it.

    Raises:
        TaskEnded: it ended FAILURE or REVOKED (after it is printed).
        WaitTimeout: it did not end within ``timeout`` seconds.
    """
    line = None if wants_json(ctx) else ProgressLine(task_id)
    try:
        task = api.wait(task_id, timeout, on_change=line)
    finally:
        if line is not None:
            line.close()
    show_task(task)
    if task.get("status") != "SUCCESS":
        raise TaskEnded(f"task {task_id} ended {task.get('status')}: {task.get('error', '')}".rstrip(": "))
    return task
