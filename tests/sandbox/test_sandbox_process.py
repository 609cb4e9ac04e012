"""The sandbox as a separate process: the launcher helper and the CLI contract."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from conftest import AUTH, TOKEN, new_session
from sandbox import DEFAULT_SCENARIO_PATH, SandboxProcess

INCLUDE = str(Path(__file__).resolve().parents[2] / "include")


def test_sandbox_process_serves_and_stops_cleanly():
    scenario = {"seed": 2, "sources": {"slack": {"token": TOKEN, "rate_limit_per_minute": 0}}}
    with SandboxProcess(scenario) as proc:
        assert proc.admin.health() == {"ok": True}
        with new_session() as http:
            resp = http.get(proc.url + "/audit/v1/logs", params={"limit": 3}, headers=AUTH)
        assert resp.status_code == 200 and len(resp.json()["entries"]) >= 3
        assert [e["status"] for e in proc.admin.requests()] == [200]
    assert proc.returncode == 0


def test_cli_prints_banner_writes_port_file_and_exits_on_sigint(tmp_path):
    port_file = tmp_path / "port"
    env = {**os.environ, "PYTHONPATH": INCLUDE}
    cmd = [
        sys.executable,
        "-m",
        "sandbox",
        "serve",
        "--port",
        "0",
        "--scenario",
        DEFAULT_SCENARIO_PATH,
        "--port-file",
        str(port_file),
    ]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True) as proc:
        try:
            banner = proc.stdout.readline().strip()
            port = int(port_file.read_text())
            assert banner == f"sandbox listening on http://127.0.0.1:{port}"
            with new_session() as http:
                assert http.get(f"http://127.0.0.1:{port}/_sandbox/health").json() == {"ok": True}
        finally:
            proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
