"""The product on Airflow's distributed engine, for real and without Docker: a PostgreSQL metadata DB, the
CeleryExecutor on Redis, and the API server, scheduler, dag-processor, triggerer and two Celery workers as
separate processes (the docker-compose topology), against the sandbox APIs and the GCS emulator.

Heavy (a few minutes): runs with `make test-distributed` or AUDITLOGS_DISTRIBUTED=1; skipped with the reason
when PostgreSQL (127.0.0.1:5432) or Redis (127.0.0.1:6379) are not there. Each worker runs one task at a time
(Celery prefetch 1, late acks), so two tasks running at once are on two different workers. Each test drives
its own source types, so the sandbox faults one test queues (path-matched) never slow another test's tasks.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from auditlogs.sources import SPECS
from harness import assert_interval_holds, connection_env, interval_folder, read_manifest, write_config
from sandbox import SandboxProcess, ground_truth
from sandbox.cluster import AirflowCluster, PostgresDatabase, services_missing, wait_for
from sandbox.gcs import GcsEmulatorProcess
from sandbox.github import ORG
from sandbox.onepassword import stream_of_item
from webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.distributed, pytest.mark.timeout(2400)]

UTC = timezone.utc
BUCKET = "auditlogs-cluster"
TWILIO_SID, TWILIO_SECRET = "ACc1u5ter000000000000000000000000", "twilio-cluster-secret"
TOKENS = {
    "okta": "00clusterOktaToken0123456789",
    "github": "ghp_clusterToken0123456789abc",
    "onepassword": "eyJhbGciOiJFUzI1NiJ9.eyJjbHVzdGVyIjp0cnVlfQ.c2ln",
    "slack": "xoxp-cluster-token",
    "twilio": f"{TWILIO_SID}:{TWILIO_SECRET}",
}
SCENARIO = {
    "seed": 41,
    "sources": {
        kind: {"events_per_hour": 240, "burst_fraction": 0.2, "token": token, "rate_limit_per_minute": 0}
        for kind, token in TOKENS.items()
    },
}
#: Source name -> (type, stream, path its API requests start with: the sandbox faults match on it).
SOURCES = {
    "okta_a": ("okta", "systemlog", "/api/v1/logs"),
    "github_a": ("github", "audit", f"/api/v3/orgs/{ORG}/"),
    "onepassword_a": ("onepassword", "signinattempts", "/api/v2/signinattempts"),
    "slack_bf": ("slack", "audit", "/audit/v1/logs"),
    "onepassword_k": ("onepassword", "auditevents", "/api/v2/auditevents"),
    "twilio_late": ("twilio", "events", "/v1/Events"),
}
BACKFILL_POOL, BACKFILL_SLOTS = "slack_api", 2
WORKERS = ("worker-a", "worker-b")
#: Generous: the machine is shared; every wait is a condition with a deadline, never a fixed sleep.
TIMEOUT = 900


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if os.environ.get("AUDITLOGS_DISTRIBUTED") != "1":
        pytest.skip(
            "distributed tier (PostgreSQL + Redis + CeleryExecutor, a few minutes): "
            "run `make test-distributed` or set AUDITLOGS_DISTRIBUTED=1"
        )
    missing = services_missing()
    if missing:
        pytest.skip(f"distributed tier needs PostgreSQL and Redis: {missing}")
    home = tmp_path_factory.mktemp("cluster")
    config = write_config(
        home / "sources.yaml",
        {
            "okta_a": {"type": "okta", "conn_id": "okta_api"},
            "github_a": {"type": "github", "conn_id": "github_api", "org": ORG, "include": "all"},
            "onepassword_a": {"type": "onepassword", "conn_id": "onepassword_api", "streams": ["signinattempts"]},
            "slack_bf": {"type": "slack", "conn_id": "slack_api", "pool": BACKFILL_POOL, "pool_slots": BACKFILL_SLOTS},
            "onepassword_k": {
                "type": "onepassword",
                "conn_id": "onepassword_api",
                "streams": ["auditevents"],
                "request_timeout": "10m",
            },
            "twilio_late": {
                "type": "twilio",
                "conn_id": "twilio_api",
                "deadline": "1s",
                "notify": {"webhook": "alerts_webhook"},
            },
        },
        bucket=BUCKET,
        prefix="raw",
        start_date="2026-01-01T00:00:00Z",
        delay="0s",
        deadline="off",
        retries=2,
        retry_delay="5s",
        max_active_runs=4,
    )
    with (
        WebhookReceiver() as webhook,
        PostgresDatabase() as db,
        SandboxProcess(SCENARIO) as api,
        GcsEmulatorProcess((BUCKET,)) as gcs,
    ):
        env = {
            "AUDITLOGS_CONFIG": str(config),
            **gcs.connection_env(),
            **connection_env("okta_api", host=api.url, password=TOKENS["okta"], extra={"auth_scheme": "Bearer"}),
            **connection_env("github_api", host=api.url + "/api/v3", password=TOKENS["github"]),
            **connection_env("onepassword_api", host=api.url, password=TOKENS["onepassword"]),
            **connection_env("slack_api", host=api.url, password=TOKENS["slack"]),
            **connection_env("twilio_api", host=api.url, login=TWILIO_SID, password=TWILIO_SECRET),
            **connection_env("alerts_webhook", host=webhook.url + "/hooks/auditlogs"),
            # A worker that vanished is noticed after 30 s without heartbeats (default 300 s).
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        }
        with AirflowCluster(
            home / "airflow", db.sqlalchemy_url, executor="CeleryExecutor", workers=len(WORKERS), extra_env=env
        ) as airflow:
            airflow.db, airflow.sandbox, airflow.gcs, airflow.webhook = db, api, gcs, webhook
            airflow.start([f"auditlogs_{name}" for name in SOURCES], timeout=TIMEOUT)
            yield airflow


@pytest.fixture
def live(cluster):
    """The cluster with both workers up (a test may have killed one) and the sandbox without faults."""
    cluster.ensure_workers()
    cluster.sandbox.admin.clear_faults()
    yield cluster
    cluster.sandbox.admin.clear_faults()


# --- reading the outcome -------------------------------------------------------------------------------


def task_instances(cluster, dag_id: str) -> list[dict]:
    rows = cluster.db.query(
        "SELECT ti.run_id, ti.task_id, ti.state, ti.hostname, ti.try_number, ti.pool, ti.start_date, ti.end_date, "
        "dr.run_type, dr.data_interval_start, dr.data_interval_end FROM task_instance ti "
        "JOIN dag_run dr ON dr.dag_id = ti.dag_id AND dr.run_id = ti.run_id WHERE ti.dag_id = %s",
        (dag_id,),
    )
    keys = (
        "run_id",
        "task_id",
        "state",
        "hostname",
        "try_number",
        "pool",
        "start",
        "end",
        "run_type",
        "interval_start",
        "interval_end",
    )
    return [dict(zip(keys, row, strict=True)) for row in rows]


def wait_until_finished(cluster, dag_id: str, runs: int, what: str, run_type: str | None = None) -> list[dict]:
    def finished():
        cluster.check_alive()
        tis = [t for t in task_instances(cluster, dag_id) if run_type is None or t["run_type"] == run_type]
        done = [t for t in tis if t["state"] in ("success", "failed", "upstream_failed")]
        return tis if len(tis) >= runs and len(done) == len(tis) else None

    tis = wait_for(what, finished, TIMEOUT, poll=2)
    failed = [t for t in tis if t["state"] != "success"]
    assert not failed, f"{failed}\n" + cluster.log_tail("scheduler") + "\n".join(cluster.log_tail(w) for w in WORKERS)
    return tis


def assert_interval_collected(cluster, source: str, start: datetime, end: datetime) -> dict:
    """Exactly the sandbox's events of [start, end) (delay 0) in the interval folder, each once."""
    kind, stream, _ = SOURCES[source]
    truth = ground_truth(kind, start, end, SCENARIO)
    if kind == "onepassword":
        truth = [item for item in truth if stream_of_item(item) == stream]
    assert truth, "the sandbox generated no events for the interval: the check would prove nothing"
    folder = interval_folder("raw", source, stream, start, end)
    key = SPECS[kind].event_id
    return assert_interval_holds(cluster.gcs, BUCKET, folder, key, {key(event) for event in truth})


def most_at_once(tis: list[dict]) -> int:
    """The largest number of these task instances that were running at the same moment."""
    edges = sorted([(t["start"], 1) for t in tis] + [(t["end"], -1) for t in tis])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def slow_down(cluster, source: str, seconds: float, count: int = 1) -> None:
    """The next `count` requests of the source's API take `seconds` (a sandbox delay fault)."""
    cluster.sandbox.admin.add_faults({"kind": "delay", "match": SOURCES[source][2], "seconds": seconds, "count": count})


# --- the tests -----------------------------------------------------------------------------------------


def test_several_sources_run_at_once_across_both_workers_and_write_exact_intervals(live):
    sources = ["okta_a", "github_a", "onepassword_a"]
    for source in sources:
        slow_down(live, source, 20)  # each task holds its worker long enough for the others to start
    live.unpause(*(f"auditlogs_{s}" for s in sources))  # catch-up off: each runs its latest hour

    tis = []
    for source in sources:
        mine = wait_until_finished(live, f"auditlogs_{source}", 1, f"the latest interval of {source}")
        for ti in mine:
            assert_interval_collected(live, source, ti["interval_start"], ti["interval_end"])
        tis += mine
    assert {t["hostname"] for t in tis} == set(WORKERS)
    assert most_at_once(tis) >= 2, [(t["hostname"], t["start"], t["end"]) for t in tis]


def test_a_backfill_is_spread_over_both_workers_within_the_sources_pool(live):
    # The documented set-up step: a task whose pool does not exist is never scheduled.
    subprocess.run(
        [sys.executable, "-m", "auditlogs.setup", "pools"], env=live.env, check=True, capture_output=True, timeout=600
    )
    assert live.db.query("SELECT slots FROM slot_pool WHERE pool = %s", (BACKFILL_POOL,)) == [(BACKFILL_SLOTS,)]

    dag_id = "auditlogs_slack_bf"
    first = datetime(2026, 11, 2, 0, tzinfo=UTC)
    hours = 6
    slow_down(live, "slack_bf", 8, count=hours)
    live.unpause(dag_id)
    live.backfill(dag_id, first.isoformat(), (first + timedelta(hours=hours - 1)).isoformat())

    backfill = wait_until_finished(live, dag_id, hours, "the backfill", run_type="backfill")
    assert sorted(t["interval_start"] for t in backfill) == [first + timedelta(hours=h) for h in range(hours)]
    for ti in backfill:
        assert_interval_collected(live, "slack_bf", ti["interval_start"], ti["interval_end"])
    assert {t["pool"] for t in backfill} == {BACKFILL_POOL}
    assert {t["hostname"] for t in backfill} == set(WORKERS)
    in_pool = [t for t in task_instances(live, dag_id) if t["end"] is not None]  # the scheduled run shares it
    assert most_at_once(in_pool) <= BACKFILL_SLOTS


def test_killing_a_worker_mid_task_loses_nothing_the_task_is_retried_on_the_other_worker(live):
    dag_id = "auditlogs_onepassword_k"
    slow_down(live, "onepassword_k", 600)  # the first attempt hangs on its first page until its worker dies
    live.unpause(dag_id)

    def running():
        live.check_alive()
        return next((t for t in task_instances(live, dag_id) if t["state"] == "running" and t["hostname"]), None)

    first = wait_for("the task to start on a worker", running, TIMEOUT, poll=1)
    wait_for(
        "the first attempt's request to reach the API (its delay fault taken)",
        lambda: not live.sandbox.admin.pending_faults(),
        TIMEOUT,
    )
    victim = first["hostname"]
    live.kill_worker(victim)

    (ti,) = wait_until_finished(live, dag_id, 1, "the retry on the surviving worker")
    assert ti["try_number"] >= 2
    assert ti["hostname"] == next(w for w in WORKERS if w != victim)
    manifest = assert_interval_collected(live, "onepassword_k", ti["interval_start"], ti["interval_end"])
    assert manifest["try_number"] == ti["try_number"]
    folder = interval_folder("raw", "onepassword_k", "auditevents", ti["interval_start"], ti["interval_end"])
    objects = live.gcs.list(BUCKET, folder + "/")
    assert sorted(objects) == sorted(
        [f"{folder}/{p['name']}" for p in manifest["parts"]] + [f"{folder}/_manifest.json"]
    )
    assert read_manifest(live.gcs, BUCKET, folder)["run_id"] == ti["run_id"]


def test_a_missed_deadline_fires_its_callback_through_the_triggerer(live):
    dag_id = "auditlogs_twilio_late"
    slow_down(live, "twilio_late", 30, count=2)  # the runs are still running when their deadline is checked
    live.unpause(dag_id)
    # An interval that ended hours ago: its deadline (end + 1s) has passed when the run is created.
    run_id = live.trigger(
        dag_id,
        (datetime.now(UTC) - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0).isoformat(),
        run_id="late_interval",
    )

    notification = wait_for(
        "the deadline notification",
        lambda: live.check_alive() or next((n for n in live.webhook.bodies() if n["run_id"] == run_id), None),
        TIMEOUT,
    )
    assert notification["kind"] == "deadline_missed" and notification["dag_id"] == dag_id
    assert notification["details"]["deadline"].startswith("1s after the interval ends")
    assert "created after its deadline had passed" in notification["details"]["note"]
    # The webhook got the notification (above); the callback's state and trigger row lag or are cleared once it
    # has run, so its type alone says who ran it.
    callbacks = live.db.query(
        "SELECT c.type FROM deadline d JOIN dag_run dr ON dr.id = d.dagrun_id "
        "JOIN callback c ON c.id = d.callback_id WHERE dr.run_id = %s",
        (run_id,),
    )
    assert callbacks == [("triggerer",)], callbacks
    wait_until_finished(live, dag_id, 1, "the late run", run_type="manual")
