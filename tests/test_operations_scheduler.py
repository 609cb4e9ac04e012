"""Operations proven against a real Airflow (scheduler, dag-processor, triggerer, LocalExecutor, SQLite):
deadline alerts, failure and silence notifications reach a webhook receiver; backfills write every
interval once within the pool's limit; every interval emits an Asset event.

Run alone with `pytest -m scheduler`. One cluster serves the whole module; the backfills are created
when it starts so that they run while the notification tests wait.
"""

from __future__ import annotations

import itertools
import json
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from harness import connection_env, interval_folders, read_events, read_manifest, write_config
from sandbox import SandboxProcess
from sandbox.cluster import ROLES, AirflowCluster, wait_for
from sandbox.gcs import GcsEmulatorProcess, free_port
from webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.scheduler, pytest.mark.cluster, pytest.mark.timeout(900)]

UTC = timezone.utc
BUCKET = "ops-bucket"
TOKEN = "xoxp-ops-test-token-77aa"
HOOK_TOKEN = "hook-bearer-secret-1234"
SLACK_HOOK_PATH = "/slack/T000/B000/slack-webhook-secret"
DAY = (datetime.now(UTC) - timedelta(days=2)).replace(hour=0, minute=0, second=0, microsecond=0)
HISTORY_HOURS = 4
QUIET_HOURS = 3
WAIT = 420


def scenario(events_per_hour: int) -> dict:
    return {
        "seed": 5,
        "sources": {
            "slack": {
                "events_per_hour": events_per_hour,
                "burst_fraction": 0.2,
                "token": TOKEN,
                "rate_limit_per_minute": 0,
            }
        },
    }


@dataclass
class Ops:
    airflow: AirflowCluster
    receiver: WebhookReceiver
    busy: SandboxProcess
    slow: SandboxProcess
    gcs: GcsEmulatorProcess

    def notifications(self, kind: str, dag_id: str) -> list[dict]:
        return [
            p["body"]
            for p in self.receiver.posts("/hook")
            if p["body"]["kind"] == kind and p["body"]["dag_id"] == dag_id
        ]

    def runs(self, dag_id: str, run_type: str | None = None) -> list:
        rows = self.airflow.query("SELECT * FROM dag_run WHERE dag_id = ? ORDER BY logical_date", dag_id)
        return [row for row in rows if run_type is None or row["run_type"] == run_type]

    def backfill_done(self, dag_id: str, count: int):
        runs = self.runs(dag_id, "backfill")
        return runs if len(runs) == count and all(r["state"] in ("success", "failed") for r in runs) else None


@pytest.fixture(scope="module")
def ops(tmp_path_factory):
    home = tmp_path_factory.mktemp("airflow-home")
    config = write_config(
        home / "sources.yaml",
        {
            # Every minute, due 30s after its interval ends; the sandbox holds every request for 45s.
            "late": {
                "type": "slack",
                "conn_id": "slow_api",
                "schedule": "* * * * *",
                "deadline": "30s",
                "request_timeout": "120s",
                "max_active_runs": 2,
            },
            # A revoked token: fails at once and names the connection.
            "broken": {"type": "slack", "conn_id": "broken_api"},
            # Nothing listens: every attempt fails, then the task retry, then the notification.
            "flaky": {"type": "slack", "conn_id": "dead_api", "retries": 1, "retry_delay": "1s"},
            # Zero events: notify on the second silent interval in a row.
            "quiet": {"type": "slack", "conn_id": "quiet_api", "silence_after": 2},
            # Backfilled through a one-slot pool although four runs may be active.
            # De-duplication off: each interval must hold its whole widened window, checked one by one.
            "history": {
                "type": "slack",
                "conn_id": "busy_api",
                "pool": "busy_api",
                "pool_slots": 1,
                "max_active_runs": 4,
                "deadline": "1m",
                "dedup": False,
            },
        },
        bucket=BUCKET,
        prefix="raw",
        start_date="2026-01-01T00:00:00Z",
        delay="10m",
        retries=0,
        deadline="off",
        notify={"slack": "alerts_slack", "webhook": "alerts_webhook"},
    )
    with (
        WebhookReceiver() as receiver,
        GcsEmulatorProcess((BUCKET,)) as gcs,
        SandboxProcess(scenario(300)) as busy,
        SandboxProcess(scenario(60)) as slow,
        SandboxProcess(scenario(0)) as quiet,
    ):
        slow.admin.add_faults({"kind": "delay", "match": "/audit/v1/logs", "seconds": 45, "count": 50})
        env = {
            "AUDITLOGS_CONFIG": str(config),
            **gcs.connection_env(),
            **connection_env("busy_api", host=busy.url, password=TOKEN),
            **connection_env("slow_api", host=slow.url, password=TOKEN),
            **connection_env("quiet_api", host=quiet.url, password=TOKEN),
            **connection_env("broken_api", host=busy.url, password="xoxp-revoked-token-0000"),
            **connection_env("dead_api", host=f"http://127.0.0.1:{free_port()}", password=TOKEN),
            "AIRFLOW_CONN_ALERTS_SLACK": json.dumps({"conn_type": "http", "password": receiver.url + SLACK_HOOK_PATH}),
            "AIRFLOW_CONN_ALERTS_WEBHOOK": json.dumps(
                {"conn_type": "http", "host": receiver.url + "/hook", "password": HOOK_TOKEN}
            ),
        }
        # The scheduled DAGs run as soon as they are parsed.
        env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] = "False"
        # No UI here: the task execution API, scheduler, dag-processor and triggerer.
        with AirflowCluster(home, extra_env=env, roles=ROLES[1:]) as airflow:
            airflow.run(sys.executable, "-m", "auditlogs.setup", "pools")
            # Backfills are created before the components start: one SQLite file does not take a sixth
            # writer well. The scheduler then runs them as it would any backfill.
            airflow.cli("dags", "reserialize")
            airflow.backfill("auditlogs_history", iso(DAY), iso(DAY + timedelta(hours=HISTORY_HOURS - 1)))
            airflow.backfill(
                "auditlogs_quiet", iso(DAY), iso(DAY + timedelta(hours=QUIET_HOURS - 1)), "--max-active-runs", "1"
            )
            airflow.start([f"auditlogs_{name}" for name in ("late", "broken", "flaky", "quiet", "history")])
            yield Ops(airflow, receiver, busy, slow, gcs)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def folder(source: str, start: datetime) -> str:
    end = start + timedelta(hours=1)
    return f"raw/{source}/audit/dt={start:%Y-%m-%d}/{start:%Y%m%dT%H%M%SZ}_{end:%Y%m%dT%H%M%SZ}"


def test_a_slow_run_misses_its_deadline_and_the_notification_names_dag_interval_deadline_and_run(ops):
    # The first run is created when the DAG appears, often after its deadline (the message then says so);
    # the ones after it are created on time and are late only because the sandbox holds their requests.
    def on_time_miss():
        return [n for n in ops.notifications("deadline_missed", "auditlogs_late") if "note" not in n["details"]]

    note = wait_for(
        "a deadline notification for a run created on time", on_time_miss, WAIT, diagnose=ops.airflow.diagnose
    )[0]
    ops.airflow.cli("dags", "pause", "auditlogs_late")
    print("deadline_missed notification:", json.dumps(note, indent=2))

    assert note["source"] == "late"
    assert note["details"]["deadline"].startswith("30s after the interval ends (")
    assert note["details"]["run_type"] == "scheduled"
    assert note["details"]["run_state"] == "running"
    start, end = datetime.fromisoformat(note["interval_start"]), datetime.fromisoformat(note["interval_end"])
    assert end - start == timedelta(minutes=1)
    deadline_time = datetime.fromisoformat(note["details"]["deadline"].split("(")[1].rstrip(")"))
    assert deadline_time == end + timedelta(seconds=30)
    # The run still finishes, and its request was the one the sandbox held (logged once answered).
    wait_for(
        f"run {note['run_id']} to finish",
        lambda: [r for r in ops.runs("auditlogs_late") if r["run_id"] == note["run_id"] and r["state"] == "success"],
        WAIT,
        diagnose=ops.airflow.diagnose,
    )
    assert note["url"] == f"{ops.airflow.env['AIRFLOW__API__BASE_URL']}/dags/auditlogs_late/runs/" + note[
        "run_id"
    ].replace(":", "%3A").replace("+", "%2B")
    oldest = str(int((start - timedelta(minutes=10)).timestamp()))
    held = [r for r in ops.slow.admin.requests() if r["query"].get("oldest") == [oldest]]
    assert held and held[0]["fault"], held

    slack = [p for p in ops.receiver.posts(SLACK_HOOK_PATH) if p["body"]["text"].endswith(note["url"])]
    assert slack and "missed their deadline" in slack[0]["body"]["text"]
    print("Slack text:\n" + slack[0]["body"]["text"])
    hook = [p for p in ops.receiver.posts("/hook") if p["body"]["kind"] == "deadline_missed"][0]
    assert hook["headers"]["authorization"] == f"Bearer {HOOK_TOKEN}"


def test_b_failures_past_retries_notify_with_error_class_and_the_connection_to_fix(ops):
    broken = wait_for(
        "a failure notification for auditlogs_broken",
        lambda: ops.notifications("task_failed", "auditlogs_broken"),
        WAIT,
        diagnose=ops.airflow.diagnose,
    )
    flaky = wait_for(
        "a failure notification for auditlogs_flaky",
        lambda: ops.notifications("task_failed", "auditlogs_flaky"),
        WAIT,
        diagnose=ops.airflow.diagnose,
    )
    print("task_failed notifications:", json.dumps([broken[0], flaky[0]], indent=2))

    assert len(broken) == 1 and len(flaky) == 1
    auth = broken[0]["details"]
    assert auth["error_class"] == "AuthError"
    assert auth["connection_to_fix"] == "broken_api"
    assert "fix the token in Airflow connection 'broken_api'" in auth["error"]
    assert auth["attempts"] == 1  # authentication failures are not retried
    transient = flaky[0]["details"]
    assert transient["error_class"] == "TransientError"
    assert transient["attempts"] == 2  # the task retry was used up first
    assert "connection_to_fix" not in transient
    assert flaky[0]["url"].endswith("/tasks/collect_audit")
    everything = json.dumps(ops.receiver.received)
    assert "xoxp-revoked-token-0000" not in everything and TOKEN not in everything


def test_c_silence_after_two_empty_intervals_notifies_once(ops):
    runs = wait_for(
        "the quiet backfill",
        lambda: ops.backfill_done("auditlogs_quiet", QUIET_HOURS),
        WAIT,
        diagnose=ops.airflow.diagnose,
    )
    assert {r["state"] for r in runs} == {"success"}
    silent = wait_for("a silence notification", lambda: ops.notifications("source_silent", "auditlogs_quiet"), 60)
    print("source_silent notification:", json.dumps(silent[0], indent=2))

    assert len(silent) == 1, "one notification per silent streak"
    note = silent[0]
    second = DAY + timedelta(hours=1)
    assert (note["interval_start"], note["interval_end"]) == (
        second.isoformat(),
        (second + timedelta(hours=1)).isoformat(),
    )
    assert note["details"]["silent_intervals"] == 2
    assert note["details"]["silent_since"] == DAY.isoformat()
    assert "quiet_api" in note["details"]["what_to_check"]


def test_d_backfill_writes_every_interval_once_within_the_pool_and_e_emits_asset_events(ops):
    runs = wait_for(
        "the history backfill",
        lambda: ops.backfill_done("auditlogs_history", HISTORY_HOURS),
        WAIT,
        diagnose=ops.airflow.diagnose,
    )
    assert {r["state"] for r in runs} == {"success"}

    folders = interval_folders(ops.gcs, BUCKET, "raw/history/audit/")
    for hour in range(HISTORY_HOURS):
        start = DAY + timedelta(hours=hour)
        name = folder("history", start)
        assert "_manifest.json" in folders[name], f"interval {start} has no manifest"
        ids = [event["id"] for event in read_events(ops.gcs, BUCKET, name)]
        assert not [i for i, n in Counter(ids).items() if n > 1], f"duplicates in {name}"
        truth = set(ops.busy.admin.truth_ids("slack", start - timedelta(minutes=10), start + timedelta(hours=1)))
        assert set(ids) == truth and read_manifest(ops.gcs, BUCKET, name)["events"] == len(truth) > 0

    # The pool has one slot: no two collecting tasks of the source ever ran at the same time.
    tasks = ops.airflow.query(
        "SELECT start_date, end_date FROM task_instance WHERE dag_id = 'auditlogs_history' AND pool = 'busy_api' "
        "AND start_date IS NOT NULL AND end_date IS NOT NULL ORDER BY start_date"
    )
    assert len(tasks) >= HISTORY_HOURS
    for earlier, later in itertools.pairwise(tasks):
        assert later["start_date"] >= earlier["end_date"], "two tasks held the one-slot pool at once"
    assert ops.airflow.query("SELECT slots FROM slot_pool WHERE pool = 'busy_api'")[0]["slots"] == 1

    # (e) every interval emitted an Asset event naming it.
    rows = ops.airflow.query(
        "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id WHERE a.uri = ?",
        f"gs://{BUCKET}/raw/history/audit",
    )
    extras = [json.loads(row["extra"]) for row in rows]
    print("asset event extra:", json.dumps(extras[0], indent=2))
    for hour in range(HISTORY_HOURS):
        start = DAY + timedelta(hours=hour)
        extra = [e for e in extras if e["interval"]["start"] == start.isoformat()]
        assert len(extra) == 1
        assert extra[0]["manifest"] == f"gs://{BUCKET}/{folder('history', start)}/_manifest.json"
        assert extra[0]["events"] == read_manifest(ops.gcs, BUCKET, folder("history", start))["events"]


def test_a_reprocessing_backfill_rewrites_intervals_without_duplicates(ops):
    # One interval: on SQLite, `backfill create --reprocess-behavior completed` over two completed hours failed
    # here with "database is locked" in `dag.clear` 3 times out of 3 (scheduler running).
    hours = [DAY + timedelta(hours=1)]
    before = {h: read_manifest(ops.gcs, BUCKET, folder("history", h)) for h in hours}
    # Airflow allows one active backfill per DAG, and the scheduler marks the first one completed a loop after
    # its last run finished: wait for that, as a user would, before creating the second.
    wait_for(
        "the history backfill to be marked completed",
        lambda: (
            not ops.airflow.query("SELECT id FROM backfill WHERE dag_id = 'auditlogs_history' AND completed_at IS NULL")
        ),
        WAIT,
        diagnose=ops.airflow.diagnose,
    )
    ops.airflow.backfill("auditlogs_history", iso(hours[0]), iso(hours[-1]), "--reprocess-behavior", "completed")

    def reprocessed():
        last = ops.airflow.query(
            "SELECT completed_at FROM backfill WHERE dag_id = 'auditlogs_history' ORDER BY id DESC LIMIT 1"
        )[0]
        return last["completed_at"] is not None and all(
            read_manifest(ops.gcs, BUCKET, folder("history", h))["attempt"] != before[h]["attempt"] for h in hours
        )

    wait_for(
        "the reprocessing backfill to collect the interval again and complete",
        reprocessed,
        WAIT,
        diagnose=ops.airflow.diagnose,
    )
    for hour in hours:
        name = folder("history", hour)
        new = read_manifest(ops.gcs, BUCKET, name)
        # Each publish has its own attempt folder; the manifest points at the new one, and the old one is gone.
        assert {p["name"].split("/")[0] for p in new["parts"]} == {new["attempt"]}
        assert sorted(interval_folders(ops.gcs, BUCKET, name + "/")[name]) == sorted(
            ["_manifest.json", *(p["name"] for p in new["parts"])]
        )
        # The same events as the first collection, each once, in parts of the same bytes.
        ids = [event["id"] for event in read_events(ops.gcs, BUCKET, name)]
        assert len(ids) == len(set(ids)) == new["events"] == before[hour]["events"]
        assert [(p["events"], p["bytes"], p["sha256"]) for p in new["parts"]] == [
            (p["events"], p["bytes"], p["sha256"]) for p in before[hour]["parts"]
        ]
        truth = set(ops.busy.admin.truth_ids("slack", hour - timedelta(minutes=10), hour + timedelta(hours=1)))
        assert set(ids) == truth


def test_backfill_deadlines_fire_at_once_but_notify_nobody(ops):
    backfill_runs = {r["run_id"] for r in ops.runs("auditlogs_history", "backfill")}
    assert len(backfill_runs) == HISTORY_HOURS  # the reprocessing backfill reran runs, it added none

    def callbacks_done():
        rows = ops.airflow.query(
            "SELECT d.missed, c.state FROM deadline d JOIN dag_run r ON r.id = d.dagrun_id "
            "JOIN callback c ON c.id = d.callback_id WHERE r.dag_id = 'auditlogs_history' AND r.run_type = 'backfill'"
        )
        done = len(rows) >= HISTORY_HOURS and all(r["missed"] and r["state"] == "success" for r in rows)
        return rows if done else None

    wait_for("the backfill runs' deadline callbacks", callbacks_done, WAIT, diagnose=ops.airflow.diagnose)
    sent = {n["run_id"] for n in ops.notifications("deadline_missed", "auditlogs_history")}
    assert not sent & backfill_runs
