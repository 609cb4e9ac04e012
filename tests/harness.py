"""Running the generated DAGs for real: `airflow dags test` in a child process on the test AIRFLOW_HOME,
against the sandbox API and the GCS emulator; reading back what landed in GCS."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
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


def http_connection_env(
    conn_id: str, host: str, password: str, login: str | None = None, extra: dict | None = None
) -> dict[str, str]:
    conn = {"conn_type": "http", "host": host, "password": password, **({"login": login} if login else {})}
    if extra:
        conn["extra"] = extra
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


# --- Shared by the per-source client and end-to-end tests -----------------------------------------


@dataclass
class Connection:
    """The fields of an Airflow connection the client reads, for tests that run without Airflow."""

    conn_id: str
    host: str
    password: str
    login: str | None = None
    schema: str | None = None
    port: int | None = None
    extra_dejson: dict = field(default_factory=dict)


@dataclass
class Collected:
    result: object
    events: list[dict]
    client: object


def collect_window(source_type: str, options: dict, stream: str, connection: Connection, window, staging: Path,
                   **client_options) -> Collected:
    """One stream's window through the real client, paging loop and collector, into staged parts."""
    from auditlogs.collector import collect
    from auditlogs.operators.collect import build_client
    from auditlogs.sink.parts import PartWriter
    from auditlogs.sources import SPECS

    spec = SPECS[source_type]
    client_options.setdefault("rate", None)  # these tests record waits; the request budget has its own tests
    config = spec.config.model_validate({
        "name": "test", "type": source_type, "conn_id": connection.conn_id, "bucket": "bucket",
        "start_date": "2026-01-01T00:00:00Z", **options,
    })
    client = build_client(spec, config, connection, f"test {source_type} {stream}", **client_options)
    staging.mkdir(parents=True, exist_ok=True)
    writer = PartWriter(staging, 1 << 30)
    result = collect(spec, config, stream, client, window, writer, config.max_pages)
    events = []
    for part in writer.close():
        events += [json.loads(line) for line in gzip.decompress(part.path.read_bytes()).splitlines()]
    return Collected(result, events, client)


def folder_of(source: str, stream: str, start, end, prefix: str = "raw") -> str:
    return f"{prefix}/{source}/{stream}/dt={start:%Y-%m-%d}/{start:%Y%m%dT%H%M%SZ}_{end:%Y%m%dT%H%M%SZ}"


def assert_interval_holds(gcs, bucket: str, folder: str, id_field: str, expected_ids: set[str]) -> dict:
    """The interval's parts hold exactly `expected_ids`, each once, and the manifest agrees; returns it."""
    events = read_events(gcs, bucket, folder)
    ids = [event[id_field] for event in events]
    repeated = sorted(i for i in set(ids) if ids.count(i) > 1)
    assert not repeated, f"events written twice in one interval: {repeated[:5]}"
    assert set(ids) == expected_ids, (len(set(ids) - expected_ids), len(expected_ids - set(ids)))
    manifest = read_manifest(gcs, bucket, folder)
    assert manifest["events"] == len(ids) == sum(part["events"] for part in manifest["parts"])
    return manifest


def sandbox_fixtures(scenario: dict, now):
    """`server, api = sandbox_fixtures(SCENARIO, NOW)` in a test module: one in-thread sandbox per module,
    and per test the same sandbox reset with its clock frozen at `now` (a datetime or Unix seconds)."""
    import pytest
    from sandbox import SandboxServer

    @pytest.fixture(scope="module")
    def server():
        with SandboxServer(scenario) as srv:
            yield srv

    @pytest.fixture
    def api(server):
        server.reset()
        server.clock.set(now if isinstance(now, (int, float)) else now.timestamp())
        return server

    return server, api


def connection_env(conn_id: str, conn_type: str = "http", **fields) -> dict[str, str]:
    """An Airflow connection as an environment variable (fields: host, login, password, extra, ...)."""
    return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps({"conn_type": conn_type, **fields})}


def interval_folder(prefix: str, source: str, stream: str, start, end) -> str:
    return f"{prefix}/{source}/{stream}/dt={start:%Y-%m-%d}/{start:%Y%m%dT%H%M%SZ}_{end:%Y%m%dT%H%M%SZ}"


def assert_interval_holds_exactly(gcs, bucket: str, folder: str, key, expected_keys: set[str]) -> dict:
    """The interval's parts hold each expected event once and nothing else; returns its manifest."""
    from collections import Counter

    keys = [key(event) for event in read_events(gcs, bucket, folder)]
    repeated = [k for k, n in Counter(keys).items() if n > 1]
    assert not repeated, f"written twice in one interval: {repeated[:5]}"
    assert set(keys) == expected_keys, (
        f"missing {sorted(expected_keys - set(keys))[:5]}, unexpected {sorted(set(keys) - expected_keys)[:5]}"
    )
    manifest = read_manifest(gcs, bucket, folder)
    assert manifest["events"] == len(keys) == sum(part["events"] for part in manifest["parts"])
    return manifest


# Client-level runs: one source's collector against an in-thread sandbox, no Airflow.

@dataclass
class FakeConnection:
    conn_id: str
    host: str | None = None
    login: str | None = None
    password: str | None = None
    schema: str | None = None
    port: int | None = None
    extra_dejson: dict | None = None


def api_client(spec, connection, sleeps: list | None = None):
    """The client the operator would build, with waits recorded instead of slept."""
    import requests

    from auditlogs.client.api import ApiClient, RetryBudget, base_url_of

    session = requests.Session()
    session.trust_env = False
    spec.auth(connection, session)
    return ApiClient(
        base_url=base_url_of(connection, spec.default_base_url), session=session, timeout=30,
        where=f"test {spec.type}", conn_id=connection.conn_id, permission=spec.permission,
        secrets=tuple(s for s in (connection.password, connection.login) if s),
        budget=RetryBudget(max_attempts=4), sleep=(sleeps if sleeps is not None else []).append,
    )


def run_collector(spec, config, stream, client, window, staging: Path, now=None):
    """Runs the collector for one window; returns its result and the events written, in order."""
    from auditlogs.collector import collect
    from auditlogs.sink.parts import PartWriter

    staging.mkdir(parents=True, exist_ok=True)
    writer = PartWriter(staging, 1 << 20)
    result = collect(spec, config, stream, client, window, writer, max_pages=1000, now=now)
    events = [json.loads(line) for part in writer.close() for line in gzip.decompress(part.path.read_bytes()).splitlines()]
    return result, events
