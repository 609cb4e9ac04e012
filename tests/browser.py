"""Headless Chromium (Debian's `chromium`) driven over the DevTools protocol: set a cookie, load a page, read
the DOM with a script, take a screenshot. Polls with a deadline, never sleeps for a fixed time."""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import requests
from websockets.sync.client import connect

from sandbox.cluster import wait_for

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


class Browser:
    def __init__(self, width: int = 1500, height: int = 900):
        self.size = (width, height)
        self._ids = itertools.count(1)

    def __enter__(self) -> Browser:
        self._profile = tempfile.TemporaryDirectory(prefix="auditlogs-chromium-")
        self._proc = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--remote-debugging-port=0",
                f"--user-data-dir={self._profile.name}",
                f"--window-size={self.size[0]},{self.size[1]}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self._profile.name) / "DevToolsActivePort"
        wait_for("chromium's DevTools port", lambda: port_file.exists() and port_file.read_text().strip(), 60, poll=0.2)
        port = port_file.read_text().split()[0]
        pages = wait_for(
            "chromium's first page",
            lambda: [
                t for t in requests.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json() if t["type"] == "page"
            ],
            30,
            poll=0.2,
        )
        self._ws = connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=30)
        return self

    def __exit__(self, *exc) -> None:
        self._ws.close()
        self._proc.terminate()
        self._proc.wait(20)
        self._profile.cleanup()

    def call(self, method: str, **params) -> dict:
        message_id = next(self._ids)
        self._ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self._ws.recv(timeout=60))
            if reply.get("id") == message_id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return reply["result"]

    def open(self, url: str, cookies: dict[str, str] | None = None) -> None:
        for name, value in (cookies or {}).items():
            self.call("Network.setCookie", name=name, value=value, url=url)
        self.call("Page.navigate", url=url)
        wait_for(f"{url} to load", lambda: self.evaluate("document.readyState") == "complete", 60, poll=0.2)

    def evaluate(self, script: str):
        result = self.call("Runtime.evaluate", expression=script, returnByValue=True)
        return result["result"].get("value")

    def screenshot(self, path: Path) -> Path:
        """The whole page, not only the window."""
        height = self.evaluate("document.documentElement.scrollHeight")
        data = self.call(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": self.size[0], "height": height, "scale": 1},
        )["data"]
        path.write_bytes(base64.b64decode(data))
        return path
