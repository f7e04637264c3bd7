"""The package's shape: what it exports, what it imports, and the example receiver."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import callbacks
from callbacks import generate_secret, sign

PACKAGE = Path(callbacks.__file__).resolve().parent
EXPORTS = {
    "verify", "sign", "signature_header", "generate_secret", "SignatureError", "CallbackError",
    "DeliveryError", "PermanentDeliveryError", "UnsafeUrlError", "UrlGuard", "CheckedUrl",
    "RetryPolicy", "Verdict", "classify", "parse_retry_after", "status_class", "Deliverer",
    "AttemptResult", "CallbackRegistry",
}


def test_everything_promised_is_exported() -> None:
    assert set(callbacks.__all__) == EXPORTS
    for name in EXPORTS:
        assert getattr(callbacks, name) is not None
    assert EXPORTS <= set(dir(callbacks))
    with pytest.raises(AttributeError):
        callbacks.nothing_like_this  # noqa: B018


def test_one_root_exception() -> None:
    for name in ("SignatureError", "DeliveryError", "PermanentDeliveryError", "UnsafeUrlError"):
        assert issubclass(getattr(callbacks, name), callbacks.CallbackError)
    assert issubclass(callbacks.PermanentDeliveryError, callbacks.DeliveryError)


def test_importing_for_verify_alone_stays_light() -> None:
    # A receiver that only verifies must not load Redis, HTTP or web frameworks.
    code = ("import sys, callbacks; from callbacks import verify, SignatureError; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'redis', 'flask', 'dramatiq', 'requests', 'urllib3', 'http', 'hookline', 'webapp', 'actors'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=PACKAGE.parent, capture_output=True,
                         text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


#: The one part of Hookline's core that callbacks/ uses: loading its Lua files
#: (it imports only the standard library and redis, so the package still stands alone).
CORE = {"hookline.scripts"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return {name if name in CORE else name.split(".")[0] for name in names}


@pytest.mark.parametrize("path", sorted(p for p in PACKAGE.glob("*.py") if p.name != "example_receiver.py"),
                         ids=lambda p: p.name)
def test_modules_import_only_the_stdlib_redis_http_clients_and_the_script_loader(path: Path) -> None:
    allowed = set(sys.stdlib_module_names) | {"callbacks", "redis", "requests", "urllib3"} | CORE
    assert _imports(path) <= allowed, _imports(path) - allowed


def test_the_script_loader_it_uses_needs_nothing_but_the_stdlib_and_redis() -> None:
    loader = PACKAGE.parent / "hookline" / "scripts.py"
    allowed = set(sys.stdlib_module_names) | {"redis"}
    assert _imports(loader) <= allowed, _imports(loader) - allowed


def test_the_example_receiver_verifies_and_dedupes(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from callbacks import example_receiver

    secret = generate_secret()
    monkeypatch.setenv("HOOKLINE_WEBHOOK_SECRET", secret)
    monkeypatch.setattr(example_receiver, "seen", set())
    client = example_receiver.app.test_client()
    body = json.dumps({"type": "task.succeeded", "timestamp": "2024-01-01T00:00:00.000Z",
                       "data": {"task_id": "t1", "status": "SUCCESS"}})
    now = int(time.time())
    headers = {"webhook-id": "msg_t1", "webhook-timestamp": str(now),
               "webhook-signature": sign(secret, "msg_t1", now, body),
               "content-type": "application/json"}
    assert client.post("/hooks/hookline", data=body, headers=headers).status_code == 204
    assert client.post("/hooks/hookline", data=body, headers=headers).status_code == 204  # a retry
    assert capsys.readouterr().out.count("task t1 is SUCCESS") == 1
    forged = {**headers, "webhook-signature": sign(generate_secret(), "msg_t1", now, body)}
    response = client.post("/hooks/hookline", data=body, headers=forged)
    assert response.status_code == 400
    assert client.post("/hooks/hookline", data=body).status_code == 400  # no headers at all
