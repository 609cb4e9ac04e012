"""The ways users drive the product, as they drive it: manual runs, `airflow dags test`, the REST API's
backfill. The interval rules of manual runs first (no Airflow), then the real paths.

The real-Airflow tests run with `pytest -m userpaths`."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from auditlogs.config import load_config
from auditlogs.manual import RunIntervalError, run_interval
from auditlogs.window import Window
from harness import connection_env, dags_test, interval_folder, interval_folders, read_manifest, write_config

UTC = timezone.utc
TOKEN = "xoxp-user-paths-token-5c3e"
BUCKET = "userpaths-bucket"
TRIGGERED = datetime(2026, 12, 1, 19, 23, tzinfo=UTC)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = write_config(
        tmp_path_factory.mktemp("config") / "sources.yaml",
        {"slack": {"type": "slack", "conn_id": "slack_audit"}},
        bucket=BUCKET,
        start_date="2026-11-01T00:00:00Z",
    )
    return load_config(path).sources["slack"]


def context(run_type="manual", logical_date=None, interval=None, **params) -> dict:
    """What Airflow 3.3.2 hands the task; a manual run's data interval is Airflow's own inference."""
    start, end = interval or (None, None)
    return {
        "dag_run": SimpleNamespace(run_type=run_type, run_after=TRIGGERED),
        "logical_date": logical_date,
        "data_interval_start": start,
        "data_interval_end": end,
        "params": params,
    }


def hour(h: int, day: int = 1) -> datetime:
    return datetime(2026, 12, day, h, tzinfo=UTC)


def test_a_trigger_without_a_logical_date_collects_the_latest_complete_interval(source):
    interval, why = run_interval(source, context())
    assert interval == Window(hour(18), hour(19))
    assert why.startswith("no logical date: the latest complete interval before 2026-12-01T19:23:00")


def test_interval_start_re_collects_exactly_that_interval(source):
    interval, why = run_interval(source, context(interval=(hour(18), hour(19)), interval_start="2026-12-01T15:00:00Z"))
    assert interval == Window(hour(15), hour(16)) and "interval_start" in why


def test_a_logical_date_airflow_ignored_is_collected_as_airflow_says_and_the_log_says_use_the_param(source, caplog):
    interval, _ = run_interval(source, context(logical_date=hour(15), interval=(hour(18), hour(19))))
    assert interval == Window(hour(18), hour(19))
    assert (
        "the logical date 2026-12-01T15:00:00+00:00 does not choose the interval in Airflow 3.3: it collects "
        "[2026-12-01T18:00:00+00:00, 2026-12-01T19:00:00+00:00)"
    ) in caplog.text
    assert "trigger with the param interval_start instead" in caplog.text


def test_dags_test_with_a_date_collects_the_interval_ending_at_it_without_a_warning(source, caplog):
    interval, _ = run_interval(source, context(logical_date=hour(5), interval=(hour(4), hour(5))))
    assert interval == Window(hour(4), hour(5))
    assert "does not choose" not in caplog.text


def test_scheduled_runs_and_backfills_keep_their_data_interval(source):
    for run_type in ("scheduled", "backfill"):
        assert run_interval(source, context(run_type, hour(3), (hour(3), hour(4))))[0] == Window(hour(3), hour(4))


@pytest.mark.parametrize(
    "value, what",
    [
        (
            "2026-12-01T15:30:00Z",
            "not the start of an interval of the schedule `@hourly` (UTC). What to do: the "
            "nearest earlier start is 2026-12-01T15:00:00+00:00",
        ),
        ("2026-12-01T19:00:00Z", "has not ended yet"),
        ("2026-10-31T23:00:00Z", "before the source's start_date 2026-11-01T00:00:00+00:00"),
        ("yesterday", "not a timezone-aware ISO date-time"),
        ("2026-12-01T15:00:00", "not a timezone-aware ISO date-time"),
    ],
)
def test_an_interval_start_the_schedule_cannot_give_fails_with_what_to_pick(source, value, what):
    with pytest.raises(RunIntervalError) as error:
        run_interval(source, context(interval_start=value))
    assert what in str(error.value) and f"param interval_start='{value}'" in str(error.value)
    assert not error.value.retryable


# --- `airflow dags test` with the shipped defaults (deadline on) -------------------------------------


@pytest.mark.e2e
def test_airflow_dags_test_with_the_default_deadline_exits_0_and_writes_the_interval(tmp_path):
    """apache/airflow#73428: without the product's workaround this exits 1 after the run succeeded."""
    from harness import running_stack

    config = write_config(
        tmp_path / "sources.yaml",
        {"slack": {"type": "slack", "conn_id": "slack_audit"}},
        bucket=BUCKET,
        prefix="raw",
        start_date="2026-01-01T00:00:00Z",
    )
    assert load_config(config).sources["slack"].deadline_after_end is not None
    scenario = {"seed": 3, "sources": {"slack": {"events_per_hour": 60, "token": TOKEN, "rate_limit_per_minute": 0}}}
    connections = lambda url: connection_env("slack_audit", host=url, password=TOKEN)  # noqa: E731
    with running_stack(scenario, BUCKET, connections, clock=datetime(2026, 3, 2, tzinfo=UTC), config=config) as stack:
        result = dags_test("auditlogs_slack", "2026-03-01T05:00:00+00:00", stack.env)
        assert "has no attribute 'hex'" not in result.output
        assert result.returncode == 0, result.output[-3000:]
        folder = interval_folder("raw", "slack", "audit", hour(4).replace(month=3), hour(5).replace(month=3))
        assert read_manifest(stack.gcs, BUCKET, folder)["events"] > 0


# --- Through a real scheduler, the REST API and the CLI ------------------------------------------------


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from sandbox import SandboxProcess
    from sandbox.cluster import AirflowCluster, wait_for
    from sandbox.gcs import GcsEmulatorProcess

    home = tmp_path_factory.mktemp("airflow-home")
    config = write_config(
        home / "sources.yaml",
        {"up": {"type": "slack", "conn_id": "up_api"}},
        bucket=BUCKET,
        prefix="raw",
        start_date="2026-01-01T00:00:00Z",
        retries=0,
    )
    scenario = {"seed": 9, "sources": {"slack": {"events_per_hour": 60, "token": TOKEN, "rate_limit_per_minute": 0}}}
    with GcsEmulatorProcess((BUCKET,)) as gcs, SandboxProcess(scenario) as api:
        env = {
            "AUDITLOGS_CONFIG": str(config),
            **gcs.connection_env(),
            **connection_env("up_api", host=api.url, password=TOKEN),
        }
        with AirflowCluster(home, extra_env=env) as airflow:
            airflow.start(["auditlogs_up"])
            # Unpaused, the DAG gets its scheduled run of the latest hour at once: let it finish first, so
            # that the manual runs the tests make are the only ones running (and writing) then.
            airflow.unpause("auditlogs_up")
            cluster = SimpleNamespace(airflow=airflow, gcs=gcs)
            finished_run(
                cluster,
                wait_for(
                    "the scheduled run",
                    lambda: airflow.api("GET", "dags/auditlogs_up/dagRuns?run_type=scheduled")["dag_runs"],
                    300,
                )[0]["dag_run_id"],
            )
            yield cluster


def finished_run(cluster, run_id: str, timeout: float = 300) -> dict:
    from sandbox.cluster import wait_for

    def done():
        run = cluster.airflow.api("GET", f"dags/auditlogs_up/dagRuns/{run_id}")
        return run if run["state"] in ("success", "failed") else None

    return wait_for(f"run {run_id} to finish", done, timeout, diagnose=cluster.airflow.diagnose)


def trigger(cluster, body: dict) -> str:
    """The UI's Trigger button: `POST /api/v2/dags/{dag_id}/dagRuns`; the new run's id."""
    return cluster.airflow.trigger("auditlogs_up", **body)


def folders(cluster) -> dict[str, str]:
    """Interval folder -> the run_id in its manifest."""
    return {
        folder: read_manifest(cluster.gcs, BUCKET, folder)["run_id"]
        for folder in interval_folders(cluster.gcs, BUCKET, "raw/up/audit/")
    }


def up_folder(start: datetime) -> str:
    return interval_folder("raw", "up", "audit", start, start + timedelta(hours=1))


@pytest.mark.userpaths
@pytest.mark.cluster
def test_the_ui_trigger_without_a_logical_date_collects_the_latest_complete_hour(cluster):
    before = folders(cluster)
    run = finished_run(cluster, trigger(cluster, {"logical_date": None}))
    assert run["state"] == "success"
    after = datetime.fromisoformat(run["run_after"])
    latest = after.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    assert folders(cluster) == {**before, up_folder(latest): run["dag_run_id"]}


@pytest.mark.userpaths
@pytest.mark.cluster
def test_a_trigger_with_interval_start_rewrites_that_folder_and_touches_no_other(cluster):
    chosen = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)
    conf = {"conf": {"interval_start": chosen.isoformat()}, "logical_date": None}
    first = finished_run(cluster, trigger(cluster, conf))
    before = folders(cluster)
    assert first["state"] == "success" and before[up_folder(chosen)] == first["dag_run_id"]
    again = finished_run(cluster, trigger(cluster, conf))
    assert again["state"] == "success"
    assert folders(cluster) == {**before, up_folder(chosen): again["dag_run_id"]}


@pytest.mark.userpaths
@pytest.mark.cluster
def test_a_backfill_created_through_the_rest_api_collects_each_hour_once(cluster):
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=12)
    body = {
        "dag_id": "auditlogs_up",
        "from_date": start.isoformat(),
        "to_date": (start + timedelta(hours=1)).isoformat(),
        "reprocess_behavior": "none",
        "max_active_runs": 2,
    }
    from sandbox.cluster import wait_for

    # On SQLite Airflow answers 503 "Database is locked" while other components write, having created
    # nothing; the README says to try again, and so does the test.
    wait_for(
        "the backfill to be created",
        lambda: "id" in cluster.airflow.api("POST", "backfills", body, ok=(200, 201, 503)),
        300,
    )

    def backfilled():
        runs = cluster.airflow.api("GET", "dags/auditlogs_up/dagRuns?run_type=backfill")["dag_runs"]
        return runs if len(runs) == 2 and all(r["state"] in ("success", "failed") for r in runs) else None

    runs = wait_for("the backfill's two runs", backfilled, 300, diagnose=cluster.airflow.diagnose)
    assert {r["state"] for r in runs} == {"success"}
    stored = folders(cluster)
    assert {up_folder(start), up_folder(start + timedelta(hours=1))} <= set(stored)


# --- The CLI in a second terminal beside the `make run` demo -------------------------------------------


@pytest.mark.userpaths
@pytest.mark.cluster
def test_the_cli_beside_the_running_demo_lists_tests_and_backfills_its_dags(tmp_path):
    import json
    import os
    import signal
    import subprocess
    import sys

    from harness import AIRFLOW
    from sandbox.cluster import PARALLELISM, wait_for
    from sandbox.gcs import free_port

    home = tmp_path / "home"
    ports = [str(free_port()) for _ in range(3)]
    log = open(tmp_path / "demo.log", "w")
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox.local",
            "--airflow-home",
            str(home),
            "--api-port",
            ports[0],
            "--gcs-port",
            ports[1],
            "--ui-port",
            ports[2],
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for(
            "the demo's first intervals",
            lambda: "Ctrl-C stops" in (tmp_path / "demo.log").read_text(),
            timeout=900,
            poll=2,
            diagnose=lambda: (tmp_path / "demo.log").read_text()[-3000:],
        )
        # A laptop-sized executor: the LocalExecutor forks all its workers at start (Airflow's default is 32).
        assert len(local_executor_workers(demo.pid)) == PARALLELISM == 4
        # Only AIRFLOW_HOME, as anyone would: the generated airflow.cfg carries the DAGs and no examples.
        bare = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_"))}
        listing = subprocess.run(
            [AIRFLOW, "dags", "list", "-o", "json"],
            env={**bare, "AIRFLOW_HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert listing.returncode == 0, listing.stderr[-3000:]
        dag_ids = {dag["dag_id"] for dag in json.loads(listing.stdout.strip().splitlines()[-1])}
        assert "auditlogs_slack" in dag_ids and not [d for d in dag_ids if d.startswith("example_")]
        hour_ago = (datetime.now(UTC) - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0).isoformat()
        backfill = subprocess.run(
            [
                AIRFLOW,
                "backfill",
                "create",
                "--dag-id",
                "auditlogs_slack",
                "--from-date",
                hour_ago,
                "--to-date",
                hour_ago,
            ],
            env={**bare, "AIRFLOW_HOME": str(home)},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert backfill.returncode == 0, backfill.stdout[-2000:] + backfill.stderr[-3000:]
        # `make airflow ARGS=...` adds the demo's connections and emulator: what it runs, `dags test` exits 0.
        # Paused first: `dags test` writes a real run into the demo's database, which the demo's scheduler
        # would otherwise run too (the task then fails in one of the two with "TI was not in a state ...").
        test = subprocess.run(
            [
                "bash",
                "-c",
                f". {home}/demo.env && {AIRFLOW} dags pause auditlogs_slack && {AIRFLOW} dags test auditlogs_slack",
            ],
            env=bare,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert test.returncode == 0, test.stdout[-2000:] + test.stderr[-3000:]
        assert "collecting the interval" in test.stdout + test.stderr
    finally:
        os.killpg(demo.pid, signal.SIGTERM)
        demo.wait(120)
        log.close()


def local_executor_workers(pid: int) -> list[str]:
    """The LocalExecutor worker processes below a process (their title names them)."""
    import psutil

    titles = []
    for process in psutil.Process(pid).children(recursive=True):
        try:
            titles.append(" ".join(process.cmdline()))
        except psutil.Error:  # gone meanwhile
            pass
    return [title for title in titles if title.startswith("airflow worker -- LocalExecutor")]
