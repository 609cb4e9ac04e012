"""The generated Twilio, SendGrid and Google Workspace DAGs run for real (`airflow dags test`, SQLite)
against the sandbox and the GCS emulator: exactly the sandbox's events of the widened window land in
GCS, once; a SendGrid window the snapshot cannot answer for fails loudly and writes no manifest."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from auditlogs.sources import SPECS
from harness import E2E_DELAY, E2eInterval, Stack, assert_interval_holds, interval_folder, stack_fixture
from sandbox import load_scenario
from sandbox.sendgrid import snapshot
from sandbox.sources import event_store

pytestmark = pytest.mark.e2e

TWILIO_SID, TWILIO_SECRET = "ACe2e00000000000000000000000000000", "twilio-e2e-secret-5f1c"
SENDGRID_KEY = "SG.e2e-sendgrid-key.9a8b7c6d5e4f3a2b"
GOOGLE_TOKEN = "ya29.e2e-google-static-token-77aa"
SECRETS = (TWILIO_SECRET, SENDGRID_KEY, GOOGLE_TOKEN)
BUCKET = "e2e-bucket"
DELAY = E2E_DELAY
APPS = ["admin", "login", "token"]
SCENARIO = {
    "seed": 31,
    "sources": {
        "twilio": {
            "events_per_hour": 900,
            "burst_fraction": 0.3,
            "token": f"{TWILIO_SID}:{TWILIO_SECRET}",
            "rate_limit_per_minute": 0,
        },
        "sendgrid": {"events_per_hour": 40, "token": SENDGRID_KEY, "rate_limit_per_minute": 0, "retention_days": 7},
        "google_workspace": {
            "events_per_hour": 1500,
            "burst_fraction": 0.3,
            "token": GOOGLE_TOKEN,
            "rate_limit_per_minute": 0,
        },
    },
}
UTC = timezone.utc
# SendGrid's snapshot only answers for recent windows, measured against the real clock: the interval is
# the hour that ended an hour ago, and the sandbox's clock is frozen ten minutes after it.
END = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
START = END - timedelta(hours=1)
CLOCK = END + timedelta(minutes=10)


SOURCES = {
    "twilio": {"type": "twilio", "conn_id": "twilio_monitor", "page_size": 100},
    "sendgrid": {"type": "sendgrid", "conn_id": "sendgrid_api", "limit": 1000},
    "gws": {"type": "google_workspace", "conn_id": "gws_reports", "applications": APPS, "max_results": 100},
}


INTERVAL = E2eInterval(SCENARIO, START, END, CLOCK, SECRETS)
stack = stack_fixture(INTERVAL, BUCKET, SOURCES)


def run(stack: Stack, dag_id: str, end: datetime | None = None, check: bool = True):
    return INTERVAL.run(stack, dag_id, end, check).result


truth = INTERVAL.truth


def test_twilio_interval_holds_exactly_the_widened_windows_events(stack):
    run(stack, "auditlogs_twilio")
    folder = interval_folder("raw", "twilio", "events", START, END)
    manifest = assert_interval_holds(
        stack.gcs, BUCKET, folder, SPECS["twilio"].event_id, {e["sid"] for e in truth("twilio")}
    )
    assert (
        manifest["window"] == {"start": (START - DELAY).isoformat(), "end": END.isoformat()}
        and manifest["events"] > 1000
    )
    sent = [r for r in stack.api.admin.requests() if r["path"] == "/v1/Events"]
    assert len(sent) == manifest["requests"]["count"] == manifest["pages"] > 10
    for number, request in enumerate(sent):
        assert request["query"]["StartDate"] == [f"{START - DELAY:%Y-%m-%dT%H:%M:%SZ}"]
        assert request["query"]["EndDate"] == [f"{END - timedelta(seconds=1):%Y-%m-%dT%H:%M:%SZ}"]
        assert ("PageToken" in request["query"]) == (number > 0) and request["auth_ok"]


def test_google_workspace_one_task_per_application_each_exact(stack):
    run(stack, "auditlogs_gws")
    key = SPECS["google_workspace"].event_id
    everything = truth("google_workspace")
    for app in APPS:
        expected = {key(e) for e in everything if e["id"]["applicationName"] == app}
        manifest = assert_interval_holds(
            stack.gcs, BUCKET, interval_folder("raw", "gws", app, START, END), key, expected
        )
        assert manifest["stream"] == app and manifest["events"] > 50
    assert not stack.gcs.list(BUCKET, "raw/gws/drive/")


def test_sendgrid_interval_holds_the_rows_last_seen_in_the_window(stack):
    run(stack, "auditlogs_sendgrid")
    rows = snapshot(event_store(load_scenario(SCENARIO), "sendgrid"), CLOCK.timestamp(), 1000)
    assert len(rows) < 1000  # the snapshot is not full, so it holds every row of the window
    expected = {
        SPECS["sendgrid"].event_id(r) for r in rows if (START - DELAY).timestamp() <= r["last_at"] < END.timestamp()
    }
    folder = interval_folder("raw", "sendgrid", "access_attempts", START, END)
    manifest = assert_interval_holds(stack.gcs, BUCKET, folder, SPECS["sendgrid"].event_id, expected)
    assert manifest["events"] > 10 and manifest["requests"]["count"] == 1
    assert [r["query"] for r in stack.api.admin.requests()] == [{"limit": ["1000"]}]


def test_sendgrid_catch_up_beyond_the_horizon_fails_loudly_and_writes_nothing(stack):
    old_end = END - timedelta(days=3)
    result = run(stack, "auditlogs_sendgrid", old_end, check=False)
    assert result.returncode != 0
    assert "the window starts more than the snapshot horizon of 1 day, 0:00:00 before now" in result.output
    assert "cannot be backfilled" in result.output
    assert (
        stack.gcs.list(
            BUCKET, interval_folder("raw", "sendgrid", "access_attempts", old_end - timedelta(hours=1), old_end) + "/"
        )
        == []
    )
    assert stack.api.admin.requests() == []
