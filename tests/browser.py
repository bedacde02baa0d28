"""A real headless Chromium driven over the DevTools protocol (no Selenium/Playwright needed).

``Browser`` starts Debian's ``chromium`` with ``--remote-debugging-port=0``, connects to its
first page over a websocket (``websockets``' sync client) and offers what the page tests
need: navigate and wait for the load, evaluate JavaScript, wait for a condition, fill and
submit forms through the DOM, count DOM nodes, and save a PNG screenshot.
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

WINDOW = (1400, 1100)


def chromium_path() -> str:
    found = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    if found is None:
        message = (
            "\n" + "!" * 78 + "\n!! CHROMIUM IS NOT INSTALLED: the browser tests are SKIPPED.\n"
            "!! Install Debian's `chromium` package (make test does when it runs as root).\n" + "!" * 78
        )
        print(message, file=sys.__stderr__)
        pytest.skip("CHROMIUM NOT INSTALLED - browser tests skipped (apt-get install chromium)")
    return found


class Browser:
    def __init__(self, executable: str, *, window: tuple[int, int] = WINDOW) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="st-chromium-"))
        self.window = window
        self.proc = subprocess.Popen(
            [
                executable,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}",
                f"--window-size={window[0]},{window[1]}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.exists() or len(port_file.read_text().splitlines()) < 2:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.1)
        port = port_file.read_text().splitlines()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            pages = [t for t in json.load(r) if t.get("type") == "page"]
        self.ws = connect(pages[0]["webSocketDebuggerUrl"], max_size=64 * 1024 * 1024, open_timeout=30).__enter__()
        self.ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []
        self.send("Page.enable")
        self.send("Runtime.enable")

    # ---------------------------------------------------------------- protocol
    def send(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=90))
            if message.get("id") == msg_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self.events.append(message)

    def _wait_event(self, method: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if any(e.get("method") == method for e in self.events):
                self.events = [e for e in self.events if e.get("method") != method]
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(method)
            try:
                self.events.append(json.loads(self.ws.recv(timeout=left)))
            except TimeoutError:
                continue

    # ------------------------------------------------------------------ pages
    def goto(self, url: str, *, timeout: float = 60, lands_on: str | None = None) -> None:
        """Navigate and wait until ``lands_on`` (default ``url``; a redirect lands elsewhere) has loaded."""
        self.events.clear()
        self.send("Page.navigate", url=url)
        self._wait_event("Page.loadEventFired", timeout)
        # A load event of an earlier navigation (a redirect, a meta refresh) may have come first.
        expected = json.dumps(lands_on or url)
        self.wait_for(f"location.href === {expected} && document.readyState === 'complete'", timeout=timeout)

    def js(self, expression: str) -> Any:
        out = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in out:
            raise RuntimeError(f"{expression}: {out['exceptionDetails']}")
        return out.get("result", {}).get("value")

    def wait_for(self, expression: str, *, timeout: float = 15, every: float = 0.2) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.js(f"!!({expression})")
            except RuntimeError:
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(expression)
            time.sleep(every)

    def submit(self, form_selector: str, values: dict[str, str], *, timeout: float = 60) -> None:
        """Set the form's controls (by name) and submit it like a click on its button."""
        self.events.clear()
        script = (
            f"(function(){{var f=document.querySelector({json.dumps(form_selector)});"
            f"var v={json.dumps(values)};for(var k in v){{f.elements[k].value=v[k];}}"
            "f.requestSubmit();return true;})()"
        )
        self.js(script)
        self._wait_event("Page.loadEventFired", timeout)

    def click(self, selector: str, *, timeout: float = 60) -> None:
        self.events.clear()
        self.js(f"document.querySelector({json.dumps(selector)}).click()")
        self._wait_event("Page.loadEventFired", timeout)

    def url(self) -> str:
        return str(self.js("location.href"))

    def screenshot(self, path: Path, *, full_page: bool = True) -> bytes:
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            height = int(self.js("Math.min(document.documentElement.scrollHeight, 4000)"))
            params["clip"] = {"x": 0, "y": 0, "width": self.window[0], "height": max(height, 200), "scale": 1}
            params["captureBeyondViewport"] = True
        data = base64.b64decode(self.send("Page.captureScreenshot", **params)["data"])
        path.write_bytes(data)
        return data

    def close(self) -> None:
        try:
            if hasattr(self, "ws"):
                self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            shutil.rmtree(self.profile, ignore_errors=True)
