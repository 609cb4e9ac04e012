"""Regression guard for the benchmark's goals, without timing: a window's peak memory does not grow with its
size, and a window costs exactly the minimum number of requests over one reused TCP connection.

Each window runs the operator's real code path (connection from the environment, ApiClient, paginate,
collect, PartWriter, IntervalStore.publish to the GCS emulator) in a child process, `bench.pipelines
collector`, against the benchmark's pre-rendered Slack API (`bench.server`). That child is lighter than
`airflow dags test` (no metadata DB, no task supervisor) but runs the same collector code; the full-Airflow
memory test lives in the Slack end-to-end suite.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from sandbox.gcs import GcsEmulatorProcess

ROOT = Path(__file__).resolve().parents[1]
SMALL, LARGE = 50_000, 500_000
SLACK_MAX_PAGE = 9999
#: Peak RSS may differ this much between a 50k- and a 500k-event window. Before the fix, the part upload
#: alone (one 100 MiB read) grew by ~45 MB over that span, and keeping events in memory grows by GBs.
MAX_GROWTH_MB = 24
TOKEN = "bench-token-not-a-secret"
BUCKET = "bench-bucket"


def _env() -> dict:
    pythonpath = os.pathsep.join([str(ROOT), str(ROOT / "plugins"), str(ROOT / "include")])
    return {**os.environ, "PYTHONPATH": pythonpath}


class _Api:
    def __init__(self, events: int, tmp: Path):
        port_file = tmp / f"port-{events}"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.server",
                "--shape",
                "slack",
                "--events",
                str(events),
                "--port-file",
                str(port_file),
            ],
            env=_env(),
        )
        deadline = time.monotonic() + 300
        while not (port_file.exists() and port_file.read_text()):
            assert self.proc.poll() is None and time.monotonic() < deadline, "the benchmark API did not start"
            time.sleep(0.1)  # readiness polling of a child process, bounded by the deadline
        self.url = f"http://127.0.0.1:{port_file.read_text()}"

    def stats(self) -> dict:
        return requests.get(self.url + "/_bench/stats", timeout=30).json()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def _collect_window(events: int, gcs: GcsEmulatorProcess, tmp: Path) -> dict:
    api = _Api(events, tmp)
    try:
        env = {
            **_env(),
            **gcs.connection_env(),
            "AIRFLOW_HOME": str(tmp / "airflow_home"),
            "AIRFLOW_CONN_BENCH_API": json.dumps({"conn_type": "http", "host": api.url, "password": TOKEN}),
        }
        completed = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.pipelines",
                "collector",
                "--shape",
                "slack",
                "--events",
                str(events),
                "--url",
                api.url,
                "--workdir",
                str(tmp / f"work-{events}"),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert completed.returncode == 0, completed.stderr[-4000:]
        assert TOKEN not in completed.stdout + completed.stderr
        result = json.loads(completed.stdout.rsplit("BENCH_RESULT ", 1)[1].splitlines()[0])
        stats = api.stats()
        # The stats request opens its own connection, counted before it is answered.
        return {**result, "server": {**stats, "connections": stats["connections"] - 1}}
    finally:
        api.stop()


@pytest.fixture(scope="module")
def windows(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("guard")
    with GcsEmulatorProcess((BUCKET,)) as gcs:
        yield {n: _collect_window(n, gcs, tmp) for n in (SMALL, LARGE)}


@pytest.mark.parametrize("events", [SMALL, LARGE])
def test_a_window_costs_the_minimum_requests_on_one_connection(windows, events):
    window = windows[events]
    assert window["events"] == events
    minimum = math.ceil(events / SLACK_MAX_PAGE)
    assert window["server"]["requests"] == window["client_requests"] == minimum
    assert window["server"]["connections"] == 1


def test_peak_memory_does_not_grow_with_the_window(windows):
    small, large = windows[SMALL]["peak_rss_kb"] / 1024, windows[LARGE]["peak_rss_kb"] / 1024
    assert large - small < MAX_GROWTH_MB, f"peak RSS {small:.0f} MB at {SMALL:,} events, {large:.0f} MB at {LARGE:,}"


def test_the_garbage_collector_runs_again_when_a_window_fails_mid_page():
    """Paging pauses the cyclic GC for the life of each page; a consumer that fails must not leave it off."""
    import gc

    from auditlogs.client.api import ApiRequest, ApiResponse
    from auditlogs.client.pagination import BodyCursor, paginate

    class OnePageClient:
        where = "guard"

        def send(self, request):
            return ApiResponse(200, {}, {"entries": [], "next": "more"}, 2)

    def consume():
        for _ in paginate(
            OnePageClient(), BodyCursor(("next",), "cursor"), ApiRequest("GET", "x"), max_pages=5, new_events=lambda: 0
        ):
            assert not gc.isenabled()
            raise RuntimeError("the window failed")

    assert gc.isenabled()
    with pytest.raises(RuntimeError, match="the window failed"):
        consume()
    assert gc.isenabled()
