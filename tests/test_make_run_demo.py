"""`make run`'s demo, end to end: sandbox + GCS emulator + `airflow standalone` collect a real interval of every
source type."""

from __future__ import annotations

import subprocess
import sys

import pytest

from auditlogs.sources.google_workspace import DEFAULT_APPLICATIONS
from sandbox.gcs import free_port

pytestmark = pytest.mark.cluster


@pytest.mark.e2e
def test_the_demo_collects_every_source_and_says_where_it_landed(tmp_path):
    ports = [free_port() for _ in range(3)]
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "sandbox.local",
            "--exit-after-first-interval",
            "--airflow-home",
            str(tmp_path / "home"),
            "--api-port",
            str(ports[0]),
            "--gcs-port",
            str(ports[1]),
            "--ui-port",
            str(ports[2]),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-3000:]
    out = completed.stdout
    assert "Collected:" in out
    streams = [
        "slack/audit",
        "onepassword/auditevents",
        "onepassword/itemusages",
        "onepassword/signinattempts",
        "github/audit",
        "okta/systemlog",
        "twilio/events",
        "sendgrid/access_attempts",
        *(f"google_workspace/{app}" for app in DEFAULT_APPLICATIONS),
        *(f"microsoft365/audit_{t}" for t in ("azureactivedirectory", "exchange", "sharepoint", "general")),
        "entra_id/directory_audits",
        "entra_id/sign_ins",
        "zoom/activities",
        "zoom/operation_logs",
        "gitlab/audit_events",
        "atlassian/org_events",
        "box/admin_logs",
        "dropbox/team_events",
        "pagerduty/audit_records",
        "duo/authentication",
        "duo/administrator",
        "duo/telephony",
        "zendesk/audit_logs",
        "cloudflare/audit_logs",
    ]
    assert [s for s in streams if f"gs://auditlogs-sandbox/raw/{s}/dt=" not in out] == []
    assert "part-00000.ndjson.gz" in out and f"Airflow UI: http://localhost:{ports[2]}  user admin, password " in out
