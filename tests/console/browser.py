"""Headless Chromium for the console's tests, and a receiver that can be stopped and restarted."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from tests.procs import ROOT, Receiver, Stack, wait_until

#: Debian's packages (``chromium``, ``chromium-driver``).
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: Names the folder a run saves its screenshots to (relative to the repository);
#: unset, they go to a temporary folder and the committed ones (``docs/console/``,
#: shown by the README) stay as they are.
SCREENSHOTS_ENV = "HOOKLINE_SCREENSHOTS_DIR"


def screenshot_dir() -> Path:
    """Where this run saves screenshots: ``$HOOKLINE_SCREENSHOTS_DIR``, else a temporary folder.

    Every run shows task ids and times of its own, so its pictures always
    differ from the committed ones by some pixels; they are refreshed on
    purpose (``HOOKLINE_SCREENSHOTS_DIR=docs/console``) when a page changes.
    """
    chosen = os.environ.get(SCREENSHOTS_ENV)
    return ROOT / chosen if chosen else Path(tempfile.gettempdir()) / "hookline-console-screenshots"


def chromium() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1360,900", "--lang=en-US"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def chromium_driver() -> Iterator[webdriver.Chrome]:
    """A browser for one test (the ``driver`` fixture); a skip where Chromium is missing, outside CI."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(path)]
    if missing:
        # CI installs Debian's chromium and chromium-driver: there, a missing one fails.
        message = f"headless Chromium needs {', '.join(missing)} (apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    browser = chromium()
    yield browser
    browser.quit()


def api(stack: Stack, key: str) -> Callable[..., requests.Response]:
    """The stack's HTTP API as the tenant of ``key``: ``call(method, path, **requests_kwargs)``."""
    def call(method: str, path: str, **kwargs: object) -> requests.Response:
        return requests.request(method, stack.url + path, headers={"Authorization": f"Bearer {key}"},
                                timeout=10, **kwargs)  # type: ignore[arg-type]
    return call


class Console:
    """The console in a real browser, seen as a user sees it."""

    def __init__(self, driver: webdriver.Chrome, base: str) -> None:
        self.driver = driver
        self.base = base

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def text(self, css: str = "body") -> str:
        return str(self.driver.find_element(By.CSS_SELECTOR, css).text)

    def click(self, css: str, *, confirm: bool = False) -> None:
        self.driver.find_element(By.CSS_SELECTOR, css).click()
        if confirm:
            alert = wait_until(lambda: self._alert(), 5, "the confirm dialog opens")
            alert.accept()

    def _alert(self) -> Any:
        try:
            return self.driver.switch_to.alert
        except NoAlertPresentException:
            return None

    def sign_in(self, key: str) -> None:
        self.open("/console/sign-in")
        self.driver.find_element(By.ID, "api_key").send_keys(key)
        self.click("#sign-in")
        wait_until(lambda: "Sign out" in self.text(".bar"), 10, "signed in")

    def sign_out(self) -> None:
        self.click(".who button")
        wait_until(lambda: "/console/sign-in" in self.driver.current_url, 10, "signed out")

    def shot(self, name: str) -> Path:
        folder = screenshot_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        # The whole page, up to a limit: the window grows by the page's height
        # plus what the browser's frame takes of it.
        height, frame = self.driver.execute_script(
            "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]")
        self.driver.set_window_size(1360, min(int(height) + int(frame) + 8, 2400))
        self.driver.save_screenshot(str(path))
        self.driver.set_window_size(1360, 900)
        return path

    def reload_until(self, condition: Callable[[], Any], timeout: float, message: str) -> Any:
        def check() -> Any:
            self.driver.refresh()
            return condition()
        return wait_until(check, timeout, message, interval=0.3)


class _StoppableServer(ThreadingHTTPServer):
    """An HTTP server that can also drop the keep-alive connections it is serving."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: Any) -> None:
        super().__init__(address, handler)
        self.connections: set[socket.socket] = set()

    def process_request(self, request: Any, client_address: Any) -> None:
        self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        for connection in list(self.connections):
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def stop_receiver(receiver: Receiver) -> None:
    """Stop listening and drop open connections: deliveries meet a refused connection."""
    receiver.server.shutdown()
    if isinstance(receiver.server, _StoppableServer):
        receiver.server.drop_connections()
    receiver.server.server_close()


def start_receiver(receiver: Receiver) -> None:
    """Listen again on the same port, recording into the same list."""
    server = _StoppableServer(("127.0.0.1", receiver.port), receiver.server.RequestHandlerClass)
    receiver.server = server
    receiver.thread = threading.Thread(target=server.serve_forever, daemon=True)
    receiver.thread.start()


def create_key(stack: Stack, name: str, *flags: str) -> str:
    """``flask --app webapp keys create NAME [--operator]``, as an operator runs it."""
    out = subprocess.run([sys.executable, "-m", "flask", "--app", "webapp", "keys", "create", name, *flags],
                         env=stack.env, capture_output=True, text=True, check=True, cwd=ROOT)
    return out.stdout.strip().splitlines()[-1]
