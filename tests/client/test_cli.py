"""The hookline command against the whole stack: through click's runner, and once as a real process."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from hookline.cli import cli
from hookline.client import Client
from tests.client.support import ROOT, Receiver, Stack, new_key, wait_until


@pytest.fixture
def env(full_stack: Stack) -> dict[str, str]:
    """The CLI's environment for a tenant of its own (and no config file of the machine's)."""
    return {"HOOKLINE_URL": full_stack.url, "HOOKLINE_API_KEY": new_key(full_stack),
            "HOOKLINE_CONFIG": "", "XDG_CONFIG_HOME": "/nonexistent"}


@pytest.fixture
def api(env: dict[str, str]) -> Iterator[Client]:
    client = Client(env["HOOKLINE_URL"], env["HOOKLINE_API_KEY"])
    yield client
    client.close()


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def as_json(result: Result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_submit_a_json_file_and_watch_it(env: dict[str, str], tmp_path: Path) -> None:
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"vector_data": [[3, 4], [1, 0]], "metadata": {"run": 7}}))
    task = as_json(run(env, "submit", str(job), "--watch", "--json"))
    assert task["status"] == "SUCCESS"
    assert task["result"]["processed_vectors"] == 2
    assert task["result"]["metadata_processed"] == {"run": 7}
    # Without --json: the id alone, for shell variables
    plain = run(env, "submit", str(job))
    assert plain.exit_code == 0
    assert len(plain.stdout.strip().splitlines()) == 1


def test_submit_an_npy_file_into_a_collection(env: dict[str, str], tmp_path: Path, api: Client) -> None:
    vectors = tmp_path / "vectors.npy"
    np.save(vectors, np.arange(12, dtype=np.float32).reshape(4, 3))
    result = run(env, "submit", str(vectors), "--collection", "demo", "--watch")
    assert result.exit_code == 0, result.output
    assert "SUCCESS" in result.stdout
    task = api.tasks.list()["items"][0]
    assert task["result"]["processed_vectors"] == 4 and task["result"]["dimension"] == 3
    assert task["metadata"] == {"collection": "demo"}


def test_submit_with_no_index_keeps_the_vectors_in_no_collection(
        env: dict[str, str], tmp_path: Path, api: Client) -> None:
    vectors = tmp_path / "vectors.npy"
    np.save(vectors, np.arange(12, dtype=np.float32).reshape(4, 3))
    for extra in ([], ["--upload"]):
        result = run(env, "submit", str(vectors), "--no-index", "--watch", *extra)
        assert result.exit_code == 0, result.output
        task = api.tasks.list()["items"][0]
        assert (task["result"]["status"], task["result"]["collection"]) == ("processed", None)
        assert task["result"]["processed_vectors"] == 4
    assert api.collections.list()["items"] == []


def test_tasks_ls_show_and_errors(env: dict[str, str], tmp_path: Path, api: Client) -> None:
    task_id = api.tasks.submit([1.0, 2.0])["task_id"]
    api.wait(task_id, timeout=30)
    listed = as_json(run(env, "tasks", "ls", "--json"))
    assert [t["task_id"] for t in listed["items"]] == [task_id] and listed["next_cursor"] is None
    assert as_json(run(env, "tasks", "show", task_id, "--json"))["status"] == "SUCCESS"
    table = run(env, "tasks", "ls", "--status", "success")
    assert table.exit_code == 0 and task_id in table.stdout and table.stdout.startswith("TASK")
    # Not found: exit 3, the problem as JSON
    missing = run(env, "--json", "tasks", "show", "no-such-task")
    assert missing.exit_code == 3
    assert json.loads(missing.stdout)["error"]["status"] == 404
    # Refused: exit 1, with the fields at fault
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"vector_data": [1, "x"]}))
    refused = run(env, "submit", str(bad))
    assert refused.exit_code == 1
    assert "422" in refused.stderr and "vector_data" in refused.stderr
    # Usage: exit 2 (a file of another kind, no API key)
    other = tmp_path / "job.csv"
    other.write_text("1,2\n")
    assert run(env, "submit", str(other)).exit_code == 2
    assert run({**env, "HOOKLINE_API_KEY": ""}, "tasks", "ls").exit_code == 2
    assert len(api.tasks.list()["items"]) == 1


def test_callbacks_commands(env: dict[str, str], receiver: Receiver, api: Client) -> None:
    created = as_json(run(env, "callbacks", "create", receiver.url("/cli"), "--description", "from the cli",
                          "--json"))
    cb_id = created["id"]
    assert created["secret"].startswith("whsec_")
    assert [c["id"] for c in as_json(run(env, "callbacks", "ls", "--json"))["items"]] == [cb_id]
    assert as_json(run(env, "callbacks", "disable", cb_id, "--json"))["disabled"] is True
    assert api.callbacks.get(cb_id)["disabled"] is True
    assert as_json(run(env, "callbacks", "enable", cb_id, "--json"))["disabled"] is False
    rotated = as_json(run(env, "callbacks", "rotate", cb_id, "--json"))
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != created["secret"]
    recovered = as_json(run(env, "callbacks", "recover", cb_id, "--since", "2026-01-01T00:00:00", "--json"))
    assert recovered["count"] == 0
    human = run(env, "callbacks", "ls")
    assert human.exit_code == 0 and "enabled" in human.stdout and receiver.url("/cli") in human.stdout
    assert run(env, "callbacks", "rm", cb_id).exit_code == 0
    assert run(env, "callbacks", "show", cb_id).exit_code == 3


def test_deliveries_commands(env: dict[str, str], receiver: Receiver, api: Client, tmp_path: Path) -> None:
    callback = api.callbacks.create(receiver.url("/d"))
    job = tmp_path / "job.json"
    job.write_text("[0.5, 0.25]")
    task = as_json(run(env, "submit", str(job), "--callback", callback["id"], "--watch", "--json"))
    wait_until(lambda: api.tasks.get(task["task_id"])["callback"]["delivery"] == "delivered", 30, "delivered")
    attempts = as_json(run(env, "deliveries", "ls", task["task_id"], "--json"))["items"]
    assert [(a["attempt"], a["status_code"]) for a in attempts] == [(1, 204)]
    assert run(env, "deliveries", "resend", task["task_id"]).exit_code == 0
    wait_until(lambda: len(receiver.received("/d")) == 2, 30, "the resend arrives")
    wait_until(lambda: len(api.tasks.deliveries(task["task_id"])["items"]) == 2, 10, "logged")
    shown = run(env, "deliveries", "ls", task["task_id"])
    assert shown.exit_code == 0 and "manual" in shown.stdout


def test_flags_beat_the_environment_which_beats_the_config_file(env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'url = "{env["HOOKLINE_URL"]}"\napi_key = "{env["HOOKLINE_API_KEY"]}"\n')
    file_only = {"HOOKLINE_CONFIG": str(config), "HOOKLINE_URL": "", "HOOKLINE_API_KEY": ""}
    assert as_json(run(file_only, "tasks", "ls", "--json"))["items"] == []
    assert run({**file_only, "HOOKLINE_API_KEY": "hlk_bad_bad"}, "tasks", "ls").exit_code == 1
    assert run({**file_only, "HOOKLINE_API_KEY": "hlk_bad_bad"}, "--api-key", env["HOOKLINE_API_KEY"],
               "tasks", "ls").exit_code == 0
    assert run({"HOOKLINE_CONFIG": str(tmp_path / "missing.toml")}, "tasks", "ls").exit_code == 2


def test_the_command_as_a_real_process(env: dict[str, str], tmp_path: Path) -> None:
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"vector_data": [[1, 2, 3]], "collection": "proc"}))
    proc_env = {**os.environ, **env}
    done = subprocess.run([sys.executable, "-m", "hookline.cli", "submit", str(job), "--watch"],
                          env=proc_env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "SUCCESS" in done.stdout and "status:" in done.stdout
    listed = subprocess.run([sys.executable, "-m", "hookline.cli", "--json", "tasks", "ls"],
                            env=proc_env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0
    task = json.loads(listed.stdout)["items"][0]
    assert task["metadata"] == {"collection": "proc"}
    # The progress line went to stderr, away from the output
    progress = f"{task['task_id']} SUCCESS"
    assert progress in done.stderr and progress not in done.stdout
