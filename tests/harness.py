"""Running the generated DAGs for real: `airflow dags test` in a child process on the test AIRFLOW_HOME,
against the sandbox API and the GCS emulator; reading back what landed in GCS."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
MANIFEST = "_manifest.json"

#: Runs a command and prints its children's peak RSS (KiB) as the last line: the task runs in-process
#: under `airflow dags test`, so that is the task's peak memory.
_MEASURE = (
    "import resource, subprocess, sys; "
    "rc = subprocess.call(sys.argv[1:]); "
    "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, flush=True); "
    "sys.exit(rc)"
)


@dataclass
class DagTestResult:
    returncode: int
    output: str
    peak_rss_kb: int


def migrate_db() -> None:
    subprocess.run([AIRFLOW, "db", "migrate"], check=True, capture_output=True)


def write_config(path: Path, sources: dict, **defaults) -> Path:
    path.write_text(yaml.safe_dump({"defaults": defaults, "sources": sources}, sort_keys=False))
    return path


def http_connection_env(conn_id: str, host: str, password: str, login: str | None = None) -> dict[str, str]:
    conn = {"conn_type": "http", "host": host, "password": password, **({"login": login} if login else {})}
    return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn)}


def dags_test(dag_id: str, logical_date: str, env: dict[str, str], timeout: float = 900) -> DagTestResult:
    completed = subprocess.run(
        [sys.executable, "-c", _MEASURE, AIRFLOW, "dags", "test", dag_id, logical_date],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout,
    )
    output = completed.stdout + completed.stderr
    peak = int(completed.stdout.rsplit("PEAK_RSS_KB", 1)[1].split()[0])
    return DagTestResult(completed.returncode, output, peak)


def interval_folders(gcs, bucket: str, prefix: str) -> dict[str, list[str]]:
    """Objects by interval folder under a prefix."""
    folders: dict[str, list[str]] = {}
    for name in gcs.list(bucket, prefix):
        folder, _, leaf = name.rpartition("/")
        folders.setdefault(folder, []).append(leaf)
    return folders


def read_manifest(gcs, bucket: str, folder: str) -> dict:
    return json.loads(gcs.read(bucket, f"{folder}/{MANIFEST}"))


def read_events(gcs, bucket: str, folder: str) -> list[dict]:
    """Every event of an interval folder's parts, in part order."""
    events = []
    for name in sorted(gcs.list(bucket, folder + "/")):
        if name.endswith(".ndjson.gz"):
            for line in gzip.decompress(gcs.read(bucket, name)).splitlines():
                events.append(json.loads(line))
    return events
