"""Running the generated DAGs for real: `airflow dags test` in a child process on the test AIRFLOW_HOME,
against the sandbox API and the GCS emulator; reading back what landed in GCS."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
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


def write_config(path: Path, sources: dict, coverage_audit: dict | None = None, **defaults) -> Path:
    """A config file with the given defaults (deadlines on unless a test switches them off). The coverage
    audit DAG is off unless asked for, so that it notifies nothing in tests about other things."""
    document = {"defaults": defaults, "sources": sources, "coverage_audit": coverage_audit or {"enabled": False}}
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def dags_test(
    dag_id: str, logical_date: str, env: dict[str, str], timeout: float = 900, airflow: str = AIRFLOW
) -> DagTestResult:
    """`airflow dags test` (this venv's `airflow`, or another environment's) with `env` added."""
    completed = subprocess.run(
        [sys.executable, "-c", _MEASURE, airflow, "dags", "test", dag_id, logical_date],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = completed.stdout + completed.stderr
    peak = int(completed.stdout.rsplit("PEAK_RSS_KB", 1)[1].split()[0])
    return DagTestResult(completed.returncode, output, peak)


def dags_test_leaking_nothing(dag_id: str, end, env: dict[str, str], secrets, **options) -> DagTestResult:
    """`airflow dags test` of the interval ending at `end`, asserting no secret reached its output."""
    result = dags_test(dag_id, end.isoformat(), env, **options)
    assert not [secret for secret in secrets if secret in result.output]
    return result


@dataclass
class Stack:
    """A sandbox API process and the GCS emulator, and the environment `dags_test` needs to reach them."""

    api: object
    gcs: object
    env: dict
    config_dir: Path | None = None  #: for modules that write a config per test


@contextmanager
def running_stack(
    scenario: dict, bucket: str, connections: Callable[[str], dict], clock=None, config: Path | None = None
) -> Iterator[Stack]:
    """Migrates the test metadata DB and starts the sandbox (its clock frozen at `clock`) and the emulator;
    `connections(api_url)` gives the connection variables, `config` the AUDITLOGS_CONFIG."""
    from sandbox import SandboxProcess
    from sandbox.gcs import GcsEmulatorProcess

    migrate_db()
    with SandboxProcess(scenario) as api, GcsEmulatorProcess((bucket,)) as gcs:
        if clock is not None:
            api.admin.set_clock(clock)
        env = {**gcs.connection_env(), **connections(api.url), **({"AUDITLOGS_CONFIG": str(config)} if config else {})}
        yield Stack(api, gcs, env)


#: The config defaults every end-to-end module's sources share (`delay` is E2E_DELAY).
E2E_DEFAULTS = {"prefix": "raw", "start_date": "2026-01-01T00:00:00Z", "delay": "30m", "retries": 0}
E2E_DELAY = timedelta(minutes=30)


@dataclass(frozen=True)
class E2eInterval:
    """The interval an end-to-end module collects from its scenario, with the sandbox's clock frozen at `now`, and
    the secrets no run may print."""

    scenario: dict
    start: datetime
    end: datetime
    now: datetime
    secrets: tuple[str, ...]

    def folder(self, source: str, stream: str) -> str:
        return interval_folder(E2E_DEFAULTS["prefix"], source, stream, self.start, self.end)

    def truth(self, source: str) -> list[dict]:
        """The sandbox's events of the widened window, newest first."""
        from sandbox import ground_truth

        return ground_truth(source, self.start - E2E_DELAY, self.end, self.scenario, now=self.now)

    def run(self, stack: Stack, dag_id: str, end: datetime | None = None, check: bool = True) -> DagRun:
        """`airflow dags test` of this interval (or the one ending at `end`) on a cleared request log: no secret in
        its output and, with `check`, exit 0 (the output's end shown otherwise)."""
        stack.api.admin.clear_requests()
        result = dags_test_leaking_nothing(dag_id, end or self.end, stack.env, self.secrets)
        if check:
            assert result.returncode == 0, result.output[-3000:]
        return DagRun(result, stack.api.admin.requests())


@dataclass
class DagRun:
    result: DagTestResult
    #: What the sandbox answered during the run, in order.
    requests: list[dict]


def stack_fixture(interval: E2eInterval, bucket: str, sources: dict, connections: Callable[[str], dict] | None = None):
    """`stack = stack_fixture(INTERVAL, BUCKET, SOURCES)` in an end-to-end module: one config of `sources` (with
    E2E_DEFAULTS), sandbox process (its clock at the interval's `now`) and GCS emulator for the module
    (`running_stack`), each source's connection the sandbox's own (`sandbox.connections`) unless
    `connections(api_url)` gives them."""
    import pytest

    from sandbox import load_scenario
    from sandbox.connections import connection_env as sandbox_connections

    if connections is None:

        def connections(api_url: str) -> dict:
            return sandbox_connections(sources, load_scenario(interval.scenario), api_url)

    @pytest.fixture(scope="module")
    def stack(tmp_path_factory):
        config = write_config(
            tmp_path_factory.mktemp("config") / "sources.yaml", sources, bucket=bucket, **E2E_DEFAULTS
        )
        with running_stack(interval.scenario, bucket, connections, clock=interval.now, config=config) as running:
            yield running

    return stack


def gcs_fixtures(bucket: str):
    """`gcs, hook_for = gcs_fixtures(BUCKET)` in a test module: one emulator per module, and `hook_for(url)`
    a GCSHook on the default connection pointed at it (or at a GcsFaultProxy in front of it)."""
    import pytest

    from sandbox.gcs import GcsEmulatorProcess

    @pytest.fixture(scope="module")
    def gcs():
        with GcsEmulatorProcess((bucket,)) as emulator:
            yield emulator

    @pytest.fixture
    def hook_for(monkeypatch):
        from airflow.providers.google.cloud.hooks.gcs import GCSHook

        def hook(url: str):
            monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
            monkeypatch.setenv(
                "AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT",
                json.dumps(
                    {"conn_type": "google_cloud_platform", "extra": {"is_anonymous": True, "project": "sandbox"}}
                ),
            )
            return GCSHook()

        return hook

    return gcs, hook_for


def interval_folders(gcs, bucket: str, prefix: str) -> dict[str, list[str]]:
    """Objects by interval folder under a prefix (a part as `attempt-.../part-NNNNN.ndjson.gz`)."""
    folders: dict[str, list[str]] = {}
    for name in gcs.list(bucket, prefix):
        folder, _, leaf = name.rpartition("/")
        parent, _, attempt = folder.rpartition("/")
        if attempt.startswith("attempt-"):  # a part lives in its attempt's folder inside the interval's
            folder, leaf = parent, f"{attempt}/{leaf}"
        folders.setdefault(folder, []).append(leaf)
    return folders


def read_manifest(gcs, bucket: str, folder: str) -> dict:
    return json.loads(gcs.read(bucket, f"{folder}/{MANIFEST}"))


def read_events(gcs, bucket: str, folder: str) -> list[dict]:
    """Every event of the parts an interval's manifest lists, in part order (as every reader must: the
    folder can also hold another attempt's parts)."""
    events = []
    for part in read_manifest(gcs, bucket, folder)["parts"]:
        for line in gzip.decompress(gcs.read(bucket, f"{folder}/{part['name']}")).splitlines():
            events.append(json.loads(line))
    return events


# --- One stream's collector without Airflow: the client the operator builds, the real paging loop ------


@dataclass
class Connection:
    """The fields of an Airflow connection the client reads, for tests that run without Airflow."""

    conn_id: str
    host: str | None = None
    password: str | None = None
    login: str | None = None
    schema: str | None = None
    port: int | None = None
    extra_dejson: dict = field(default_factory=dict)


def source_config(source_type: str, conn_id: str, **options):
    """A validated source config, as the factory would build it from the YAML."""
    from auditlogs.sources import SOURCE_TYPES

    return SOURCE_TYPES[source_type].model_validate(
        {
            "name": "test",
            "type": source_type,
            "conn_id": conn_id,
            "bucket": "bucket",
            "start_date": "2026-01-01T00:00:00Z",
            **options,
        }
    )


def api_client(spec, connection: Connection, sleeps: list | None = None, config=None, **options):
    """The operator's client (`build_client`), with waits recorded in `sleeps` instead of slept and, unless
    `rate` is given, no request budget (that has its own tests)."""
    from auditlogs.operators.collect import build_client

    config = config or source_config(spec.type, connection.conn_id)
    options.setdefault("sleep", (sleeps if sleeps is not None else []).append)
    options.setdefault("rate", None)
    return build_client(spec, config, connection, f"test {spec.type}", **options)


def run_collector(spec, config, stream, client, window, staging: Path, now=None):
    """Runs the collector for one window into staged parts; returns its result and the events written, in order."""
    from auditlogs.collector import collect
    from auditlogs.sink.parts import PartWriter

    staging.mkdir(parents=True, exist_ok=True)
    writer = PartWriter(staging, 1 << 20)
    result = collect(spec, config, stream, client, window, writer, config.max_pages, now=now)
    events = [
        json.loads(line) for part in writer.close() for line in gzip.decompress(part.path.read_bytes()).splitlines()
    ]
    return result, events


@dataclass
class Collected:
    result: object
    events: list[dict]
    client: object


def collect_window(
    source_type: str, options: dict, stream: str, connection: Connection, window, staging: Path, **client_options
) -> Collected:
    """One stream's window from its source type and YAML options, through `api_client` and `run_collector`."""
    from auditlogs.sources import spec_for

    config = source_config(source_type, connection.conn_id, **options)
    spec = spec_for(config)
    client = api_client(spec, connection, config=config, **client_options)
    result, events = run_collector(spec, config, stream, client, window, staging)
    return Collected(result, events, client)


# --- What landed in GCS ------------------------------------------------------------------------------


def interval_folder(prefix: str, source: str, stream: str, start, end) -> str:
    return f"{prefix}/{source}/{stream}/dt={start:%Y-%m-%d}/{start:%Y%m%dT%H%M%SZ}_{end:%Y%m%dT%H%M%SZ}"


def assert_interval_holds(gcs, bucket: str, folder: str, key, expected_keys: set[str]) -> dict:
    """The interval's parts hold each expected event once and nothing else, and the manifest agrees;
    returns the manifest. `key` is an event's id field or a function of the event."""
    from collections import Counter

    key_of = key if callable(key) else (lambda event: event[key])
    keys = [key_of(event) for event in read_events(gcs, bucket, folder)]
    repeated = [k for k, n in Counter(keys).items() if n > 1]
    assert not repeated, f"written twice in one interval: {repeated[:5]}"
    assert set(keys) == expected_keys, (
        f"missing {sorted(expected_keys - set(keys))[:5]}, unexpected {sorted(set(keys) - expected_keys)[:5]}"
    )
    manifest = read_manifest(gcs, bucket, folder)
    assert manifest["events"] == len(keys) == sum(part["events"] for part in manifest["parts"])
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


def readme_rest_example() -> dict:
    """The README's worked `type: rest` example, exactly as documented."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("### REST APIs declared in YAML", 1)[1]
    return yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])
