"""The sandbox as a child process, for code under test that runs in other processes (Airflow tasks)."""

from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from typing import Any

import orjson

from sandbox.admin import SandboxAdmin
from sandbox.scenario import Scenario, load_scenario

INCLUDE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_BANNER = re.compile(rb"sandbox listening on (http://\S+)")


class SandboxProcess:
    """`python -m sandbox serve` in a subprocess: `with SandboxProcess(scenario) as proc: proc.url`.

    `scenario` may be a file path (passed through) or a dict/Scenario (written to a temp file).
    start() returns once the server is accepting connections.
    """

    def __init__(
        self,
        scenario: Scenario | Mapping[str, Any] | str | os.PathLike[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = 30.0,
    ) -> None:
        self._scenario = scenario
        self._host = host
        self._port = port
        self._startup_timeout = startup_timeout
        self._scenario_file: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.port = 0
        self.admin: SandboxAdmin | None = None
        self.returncode: int | None = None

    def __enter__(self) -> SandboxProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> SandboxProcess:
        scenario_path = self._scenario_path()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (INCLUDE_DIR, env.get("PYTHONPATH")) if p)
        cmd = [
            sys.executable,
            "-m",
            "sandbox",
            "serve",
            "--host",
            self._host,
            "--port",
            str(self._port),
            "--scenario",
            scenario_path,
        ]
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env)
        try:
            self.url = self._read_banner()
        except BaseException:
            self.stop()
            raise
        self.port = int(self.url.rsplit(":", 1)[1])
        self.admin = SandboxAdmin(self.url)
        return self

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns (and keeps in `returncode`) the exit code, 0 on a
        clean stop."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            assert proc.stdout is not None
            proc.stdout.close()
            self.returncode = proc.returncode
        if self._scenario_file is not None:
            os.unlink(self._scenario_file)
            self._scenario_file = None
        return self.returncode

    def _scenario_path(self) -> str:
        if isinstance(self._scenario, (str, os.PathLike)):
            return os.fspath(self._scenario)
        fd, self._scenario_file = tempfile.mkstemp(prefix="sandbox-scenario-", suffix=".json")
        with os.fdopen(fd, "wb") as fh:
            fh.write(orjson.dumps(load_scenario(self._scenario).to_dict()))  # JSON is valid YAML
        return self._scenario_file

    def _read_banner(self) -> str:
        """Wait for the banner line without blocking forever on a wedged child."""
        assert self._proc is not None and self._proc.stdout is not None
        out = self._proc.stdout
        deadline = time.monotonic() + self._startup_timeout
        buf = b""
        with selectors.DefaultSelector() as sel:
            sel.register(out, selectors.EVENT_READ)
            while b"\n" not in buf:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"sandbox did not start within {self._startup_timeout}s")
                if not sel.select(remaining):
                    continue
                chunk = os.read(out.fileno(), 4096)
                if not chunk:
                    raise RuntimeError(f"sandbox exited with code {self._proc.wait()} before listening")
                buf += chunk
        match = _BANNER.search(buf)
        if match is None:
            raise RuntimeError(f"unexpected sandbox output: {buf!r}")
        return match.group(1).decode()
