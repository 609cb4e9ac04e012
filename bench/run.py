"""The side-by-side benchmark: every pipeline on the same pre-rendered data, one process each, then a table.

`make bench` (or `python -m bench.run [--events 100000 1000000] [--shapes slack onepassword office365]
[--pipelines ...]`). Exits non-zero when a pipeline does not deliver exactly N events.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import requests

from bench.dataset import O365_CLIENT, SHAPES
from bench.parse_time import measure as measure_parse_time
from bench.pipelines import BUCKET, PIPELINES, SINGLE_LEVEL_ONLY

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
ORDER = ["floor", "floor_threaded", "collector", "http_operator", "dlt"]


class ApiServer:
    def __init__(self, shape: str, events: int, workdir: Path):
        self.port_file = workdir / f"port-{shape}-{events}"
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.server",
                "--shape",
                shape,
                "--events",
                str(events),
                "--port-file",
                str(self.port_file),
            ],
        )
        deadline = time.monotonic() + 600
        while not (self.port_file.exists() and self.port_file.read_text()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the bench API server did not start")
            time.sleep(0.2)  # waiting for a child process to render its pages, bounded by the deadline
        self.url = f"http://127.0.0.1:{self.port_file.read_text()}"

    def reset(self) -> None:
        requests.post(self.url + "/_bench/reset", timeout=30).raise_for_status()

    def stats(self) -> dict:
        """The pipeline's requests and TCP connections; this request's own new connection is not counted."""
        stats = requests.get(self.url + "/_bench/stats", timeout=30).json()
        return {**stats, "connections": stats["connections"] - 1}

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def pipeline_env(server: ApiServer, gcs, workdir: Path) -> dict:
    """A pipeline process's environment: the connections to the bench server (the Office 365 one exchanges
    its client secret at the server's token endpoint) and to the GCS emulator."""
    from sandbox.connections import sandbox_connection

    return {
        **os.environ,
        **gcs.connection_env(),
        "AIRFLOW_HOME": str(workdir / "airflow_home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_BENCH_API": json.dumps(
            {"conn_type": "http", "host": server.url, "password": "bench-token-not-a-secret"}
        ),
        "AIRFLOW_CONN_BENCH_HTTP": json.dumps({"conn_type": "http", "host": server.url}),
        "AIRFLOW_CONN_BENCH_OFFICE365": json.dumps(sandbox_connection("microsoft365", server.url, O365_CLIENT)),
        "RUNTIME__LOG_LEVEL": "WARNING",
        "DLT_TELEMETRY": "false",
        "RUNTIME__DLTHUB_TELEMETRY": "false",
    }


def run_pipeline(name: str, shape: str, events: int, server: ApiServer, env: dict, workdir: Path) -> dict:
    """One pipeline's measurements, with the 1-minute load average before it: on a shared machine wall time
    depends on the others' load, CPU seconds (user + sys) much less."""
    server.reset()
    load = os.getloadavg()[0]
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.pipelines",
            name,
            "--shape",
            shape,
            "--events",
            str(events),
            "--url",
            server.url,
            "--workdir",
            str(workdir / f"{name}-{shape}-{events}"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if completed.returncode != 0 or "BENCH_RESULT " not in completed.stdout:
        raise SystemExit(f"pipeline {name} failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-5000:]}")
    result = json.loads(completed.stdout.rsplit("BENCH_RESULT ", 1)[1].splitlines()[0])
    result.update(server.stats(), load_before=load, load_after=os.getloadavg()[0])
    return result


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"  # dlt, when run with the product's venv instead of bench/.venv

    names = [
        "apache-airflow",
        "apache-airflow-providers-http",
        "apache-airflow-providers-google",
        "dlt",
        "requests",
        "orjson",
        "gcp-storage-emulator",
    ]
    return {"python": platform.python_version(), **{name: installed(name) for name in names}}


def machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory = next(
        line.split(":", 1)[1].strip()
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": memory, "kernel": platform.release()}


def table(rows: list[dict]) -> str:
    lines = [
        "| shape | N | pipeline | events/s | ratio to floor | events per CPU-s | CPU-s ratio to floor | peak RSS MB | "
        "RSS growth MB | requests | TCP conns | wall s | CPU s | load 1m before/after |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['shape']} | {row['n']:,} | {row['pipeline']} | {row['n'] / row['wall']:,.0f} | "
            f"{row['ratio']:.2f} | {row['n'] / row['cpu']:,.0f} | {row.get('cpu_ratio', float('nan')):.2f} | "
            f"{row['peak_rss_kb'] / 1024:.0f} | {(row['peak_rss_kb'] - row['rss_after_imports_kb']) / 1024:.0f} | "
            f"{row['requests']} | {row['connections']} | {row['wall']:.1f} | {row['cpu']:.1f} | "
            f"{row.get('load_before', float('nan')):.1f}/{row.get('load_after', float('nan')):.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--shapes", nargs="+", default=["slack", "onepassword", "office365"], choices=sorted(SHAPES))
    parser.add_argument("--pipelines", nargs="+", default=ORDER, choices=sorted(PIPELINES))
    parser.add_argument("--no-parse-time", action="store_true")
    args = parser.parse_args()

    from sandbox.gcs import GcsEmulatorProcess

    started = datetime.now(timezone.utc)
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="auditlogs-bench-") as tmp:
        workdir = Path(tmp)
        for shape in args.shapes:
            for n in args.events:
                server = ApiServer(shape, n, workdir)
                try:
                    with GcsEmulatorProcess((BUCKET,)) as gcs:
                        env = pipeline_env(server, gcs, workdir)
                        floor_rate = floor_cpu_rate = None
                        for name in [p for p in ORDER if p in args.pipelines]:
                            if SHAPES[shape].blobs and name in SINGLE_LEVEL_ONLY:
                                print(f"{name}: skipped for {shape}, a two-level fetch (BENCHMARKS.md)", flush=True)
                                continue
                            result = run_pipeline(name, shape, n, server, env, workdir)
                            if result["events"] != n:
                                raise SystemExit(f"{name} on {shape} delivered {result['events']} events, expected {n}")
                            rate, cpu_rate = n / result["wall"], n / result["cpu"]
                            if name == "floor":
                                floor_rate, floor_cpu_rate = rate, cpu_rate
                            row = {
                                "shape": shape,
                                "n": n,
                                "pipeline": name,
                                **result,
                                "ratio": rate / floor_rate if floor_rate else float("nan"),
                                "cpu_ratio": cpu_rate / floor_cpu_rate if floor_cpu_rate else float("nan"),
                            }
                            rows.append(row)
                            print(table([row]).splitlines()[-1], flush=True)
                finally:
                    server.stop()
    parse = None if args.no_parse_time else measure_parse_time()
    report = {
        "date": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "rows": rows,
        "parse_time": parse,
    }
    text = table(rows)
    if parse:
        text += (
            f"\n\nDAG parse time, {parse['sources']} sources (DagBag on the dags folder, fresh process, "
            f"median of {parse['samples']}): {parse['median_seconds']:.3f} s (min {parse['min_seconds']:.3f}, "
            f"max {parse['max_seconds']:.3f})"
        )
    text += (
        f"\n\nload average before {', '.join(f'{x:.2f}' for x in load_before)}; "
        f"after {', '.join(f'{x:.2f}' for x in report['load_average_after'])}"
    )
    print("\n" + text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"{stamp}.json").write_text(json.dumps(report, indent=2))
    (RESULTS / f"{stamp}.md").write_text(text + "\n")
    print(f"\nwritten to {RESULTS / stamp}.json and .md")


if __name__ == "__main__":
    main()
