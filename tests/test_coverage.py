"""Coverage on the command line and in the completeness audit DAG, on one planted picture: a day of hourly
intervals in GCS with a gap at 03:00 and an empty interval at 05:00, and a second source with no gap; and a
source whose 10:00 run failed for real (`airflow dags test` on the test metadata database), which the report
shows as failed where that database answers and as missing with `--no-airflow`."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, time, timedelta, timezone

import pytest

from harness import connection_env, dags_test, migrate_db, write_config
from sandbox.coverage import plant
from sandbox.gcs import GcsEmulatorProcess
from webhook_receiver import WebhookReceiver

BUCKET = "coverage-bucket"
DAY = datetime.combine(datetime.now(timezone.utc).date() - timedelta(days=3), time(), timezone.utc)
GAP, EMPTY, FAILED = DAY + timedelta(hours=3), DAY + timedelta(hours=5), DAY + timedelta(hours=10)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    from auditlogs.config import load_config

    with GcsEmulatorProcess((BUCKET,)) as gcs, WebhookReceiver() as hook:
        config = write_config(
            tmp_path_factory.mktemp("coverage") / "sources.yaml",
            {"gappy": {"type": "slack", "conn_id": "slack_audit"}, "whole": {"type": "okta", "conn_id": "okta"}},
            bucket=BUCKET,
            prefix="raw",
            start_date=(DAY - timedelta(days=30)).isoformat(),
            delay="30m",
            notify={"webhook": "audit_hook"},
            deadline=None,
            coverage_audit={"lookback": "1d"},  # an audit run looks one day back: exactly the planted day
        )
        sources = load_config(config).sources
        plant(gcs, sources["gappy"], "audit", DAY, DAY + timedelta(days=1), gaps={GAP}, empty={EMPTY})
        plant(gcs, sources["whole"], "systemlog", DAY, DAY + timedelta(days=1))
        env = {
            **gcs.connection_env(),
            "AUDITLOGS_CONFIG": str(config),
            **connection_env("audit_hook", host=hook.url + "/audit"),
        }
        yield env, hook


def report(env: dict, *args: str) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [sys.executable, "-m", "auditlogs.report", "coverage", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_report_names_the_gap_and_exits_non_zero(planted):
    env, _ = planted
    day = f"{DAY:%Y-%m-%d}"
    done = report(env, "--from", day, "--to", day)
    assert done.returncode == 1, done.stderr
    folder = f"gs://{BUCKET}/raw/gappy/audit/dt={day}/{GAP:%Y%m%dT%H%M%SZ}_{GAP + timedelta(hours=1):%Y%m%dT%H%M%SZ}/"
    assert done.stdout.splitlines()[1:] == [
        "gappy/audit: 1 missing, 1 empty, 22 complete",
        f"  MISSING [{GAP.isoformat()}, {(GAP + timedelta(hours=1)).isoformat()}) {folder}",
        "whole/systemlog: 24 complete",
        "1 due interval(s) without a manifest",
    ]


def test_the_json_report_gives_each_cell_and_a_complete_source_exits_zero(planted):
    env, _ = planted
    day = f"{DAY:%Y-%m-%d}"
    done = report(env, "--from", day, "--to", day, "--source", "gappy", "--format", "json")
    cells = json.loads(done.stdout)["streams"][0]["cells"]
    assert len(cells) == 24
    assert {c["start"]: (c["state"], c["events"]) for c in cells if c["state"] != "complete"} == {
        GAP.isoformat(): ("missing", None),
        EMPTY.isoformat(): ("empty", 0),
    }
    assert {c["events"] for c in cells if c["state"] == "complete"} == {7}
    assert report(env, "--from", day, "--to", day, "--source", "whole").returncode == 0


def test_the_audit_dag_notifies_the_gap_and_stays_quiet_about_the_complete_source(planted):
    env, hook = planted
    migrate_db()
    # A manual run at DAY + 1d gets the data interval [DAY, DAY + 1d), so it audits exactly DAY.
    result = dags_test("auditlogs_coverage_audit", (DAY + timedelta(days=1)).isoformat(), env)
    assert result.returncode == 0, result.output[-3000:]
    bodies = [post["body"] for post in hook.posts("/audit")]
    assert [(b["kind"], b["source"]) for b in bodies] == [("coverage_gaps", "gappy")]
    day = f"{DAY:%Y-%m-%d}"
    end = GAP + timedelta(hours=1)
    assert bodies[0]["details"]["missing_audit"] == [
        f"[{GAP.isoformat()}, {end.isoformat()}) gs://{BUCKET}/raw/gappy/audit/dt={day}/"
        f"{GAP:%Y%m%dT%H%M%SZ}_{end:%Y%m%dT%H%M%SZ}/"
    ]


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory):
    """A source of its own (so the audit test above is not about it) whose run of FAILED finds no connection."""
    from auditlogs.config import load_config

    bucket = "coverage-failed"
    with GcsEmulatorProcess((bucket,)) as gcs:
        config = write_config(
            tmp_path_factory.mktemp("coverage-failed") / "sources.yaml",
            {"failing": {"type": "slack", "conn_id": "no_such_connection", "retries": 0}},
            bucket=bucket,
            prefix="raw",
            start_date=(DAY - timedelta(days=30)).isoformat(),
            delay="30m",
            deadline=None,
        )
        plant(gcs, load_config(config).sources["failing"], "audit", DAY, DAY + timedelta(days=1), gaps={FAILED})
        env = {**gcs.connection_env(), "AUDITLOGS_CONFIG": str(config)}
        migrate_db()
        # A manual run at FAILED + 1h gets the data interval [FAILED, FAILED + 1h).
        result = dags_test("auditlogs_failing", (FAILED + timedelta(hours=1)).isoformat(), env)
        assert "no_such_connection" in result.output, result.output[-3000:]
        yield env, bucket


def test_a_failed_run_shows_as_failed_in_text_and_json_and_as_missing_without_airflow(failed_run):
    env, bucket = failed_run
    day, end = f"{DAY:%Y-%m-%d}", FAILED + timedelta(hours=1)
    folder = f"gs://{bucket}/raw/failing/audit/dt={day}/{FAILED:%Y%m%dT%H%M%SZ}_{end:%Y%m%dT%H%M%SZ}/"
    text = report(env, "--from", day, "--to", day)
    assert text.returncode == 1, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].endswith("; run states from Airflow's metadata database")
    assert lines[1] == "failing/audit: 1 failed, 23 complete"
    assert lines[2].startswith(f"  FAILED [{FAILED.isoformat()}, {end.isoformat()}) {folder} run manual__")
    assert lines[3:] == ["1 due interval(s) without a manifest (1 failed)"]

    done = report(env, "--from", day, "--to", day, "--format", "json")
    assert done.returncode == 1, done.stderr
    record = json.loads(done.stdout)
    assert (record["run_states"], record["gcs_only_because"], record["missing"]) == ("airflow", None, 1)
    cells = record["streams"][0]["cells"]
    assert [(c["start"], c["state"]) for c in cells if c["state"] != "complete"] == [(FAILED.isoformat(), "failed")]

    gcs_only = report(env, "--from", day, "--to", day, "--no-airflow")
    assert gcs_only.returncode == 1, gcs_only.stderr
    assert gcs_only.stdout.splitlines()[0].endswith(
        "; GCS only, failed and running intervals show as missing (--no-airflow given)"
    )
    assert gcs_only.stdout.splitlines()[1:] == [
        "failing/audit: 1 missing, 23 complete",
        f"  MISSING [{FAILED.isoformat()}, {end.isoformat()}) {folder}",
        "1 due interval(s) without a manifest",
    ]


def test_an_unreachable_database_falls_back_to_gcs_and_says_why(failed_run):
    env, _ = failed_run
    day = f"{DAY:%Y-%m-%d}"
    unreachable = {**env, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sqlite:////nonexistent/folder/airflow.db"}
    done = report(unreachable, "--from", day, "--to", day, "--format", "json")
    assert done.returncode == 1, done.stderr
    record = json.loads(done.stdout)
    assert record["run_states"] is None and record["gcs_only_because"].startswith("OperationalError: ")
    assert [c["state"] for c in record["streams"][0]["cells"]].count("missing") == 1
