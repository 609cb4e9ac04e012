"""Coverage on the command line and in the completeness audit DAG, on one planted picture: a day of hourly
intervals in GCS with a gap at 03:00 and an empty interval at 05:00, and a second source with no gap."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, time, timedelta, timezone

import pytest

from airflow_cluster import WebhookReceiver
from harness import connection_env, dags_test, migrate_db, write_config
from sandbox.coverage import plant
from sandbox.gcs import GcsEmulatorProcess

BUCKET = "coverage-bucket"
DAY = datetime.combine(datetime.now(timezone.utc).date() - timedelta(days=3), time(), timezone.utc)
GAP, EMPTY = DAY + timedelta(hours=3), DAY + timedelta(hours=5)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    from auditlogs.config import load_config

    with GcsEmulatorProcess((BUCKET,)) as gcs, WebhookReceiver() as hook:
        config = write_config(
            tmp_path_factory.mktemp("coverage") / "sources.yaml",
            {"gappy": {"type": "slack", "conn_id": "slack_audit"}, "whole": {"type": "okta", "conn_id": "okta"}},
            bucket=BUCKET, prefix="raw", start_date=(DAY - timedelta(days=30)).isoformat(), delay="30m",
            notify={"webhook": "audit_hook"}, deadline=None,
            coverage_audit={"lookback": "1d"},  # an audit run looks one day back: exactly the planted day
        )
        sources = load_config(config).sources
        plant(gcs, sources["gappy"], "audit", DAY, DAY + timedelta(days=1), gaps={GAP}, empty={EMPTY})
        plant(gcs, sources["whole"], "systemlog", DAY, DAY + timedelta(days=1))
        env = {**gcs.connection_env(), "AUDITLOGS_CONFIG": str(config),
               **connection_env("audit_hook", host=hook.url + "/audit")}
        yield env, hook


def report(env: dict, *args: str) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "auditlogs.report", "coverage", *args],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=120)


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
        GAP.isoformat(): ("missing", None), EMPTY.isoformat(): ("empty", 0)}
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
        f"{GAP:%Y%m%dT%H%M%SZ}_{end:%Y%m%dT%H%M%SZ}/"]
