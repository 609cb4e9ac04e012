"""The generated Box and Dropbox DAGs run for real (`airflow dags test`, SQLite) against the sandbox (its
token endpoints included) and the GCS emulator: each interval holds exactly the sandbox's events of the
widened window (Box through short chunks and positions beyond 2**53; Dropbox from unsorted and empty pages,
through a cursor reset, keyed by content), and a Dropbox delay under its documented day of lateness is
advised against in the manifest."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from auditlogs.sources import SPECS
from harness import E2E_DELAY, E2eInterval, Stack, assert_interval_holds, interval_folder, stack_fixture
from sandbox import dropbox, ground_truth

pytestmark = pytest.mark.e2e

BOX_ID, BOX_SECRET = "boxE2eClientId", "box-e2e-client-secret-71Ka"
DBX_KEY, DBX_SECRET = "dbxE2eAppKey", "dropbox-e2e-app-secret-72Lb"
SECRETS = (BOX_SECRET, DBX_SECRET, dropbox.REFRESH_TOKEN)
BUCKET = "e2e-files-bucket"
DELAY = E2E_DELAY
SCENARIO = {
    "seed": 41,
    "sources": {
        "box": {
            "events_per_hour": 1200,
            "burst_fraction": 0.3,
            "token": f"{BOX_ID}:{BOX_SECRET}",
            "rate_limit_per_minute": 0,
            "retention_days": 365,
        },
        "dropbox": {
            "events_per_hour": 1200,
            "burst_fraction": 0.3,
            "token": f"{DBX_KEY}:{DBX_SECRET}",
            "rate_limit_per_minute": 0,
            "lag": {"p_late": 0.2, "max_lag_seconds": 86400},
        },
    },
}
UTC = timezone.utc
END = datetime(2026, 3, 1, 5, tzinfo=UTC)
START = END - timedelta(hours=1)
CLOCK = END + timedelta(minutes=10)


SOURCES = {
    "box": {"type": "box", "conn_id": "box_events", "limit": 100},
    "dropbox": {"type": "dropbox", "conn_id": "dropbox_team", "limit": 100},
}


INTERVAL = E2eInterval(SCENARIO, START, END, CLOCK, SECRETS)
stack = stack_fixture(INTERVAL, BUCKET, SOURCES)


def expected(source: str) -> set[str]:
    spec = SPECS[source]
    events = ground_truth(source, START - DELAY - timedelta(seconds=2), END + timedelta(seconds=2), SCENARIO, now=CLOCK)
    return {spec.event_id(e) for e in events if START - DELAY <= spec.event_time(e) < END}


def run(stack: Stack, dag_id: str):
    return INTERVAL.run(stack, dag_id).result


def test_box_admin_logs_hold_exactly_the_widened_window_past_every_short_chunk(stack):
    run(stack, "auditlogs_box")
    folder = interval_folder("raw", "box", "admin_logs", START, END)
    manifest = assert_interval_holds(stack.gcs, BUCKET, folder, "event_id", expected("box"))
    assert manifest["events"] > 1000
    pages = [r for r in stack.api.admin.requests() if r["path"] == "/2.0/events"]
    assert len(pages) == manifest["pages"] > manifest["events"] // 100 + 1  # short chunks did not end it
    assert all(int(r["query"]["stream_position"][0]) > 2**53 for r in pages[1:])
    assert {r["query"]["created_after"][0] for r in pages} == {
        f"{START - DELAY - timedelta(seconds=1):%Y-%m-%dT%H:%M:%SZ}"
    }


def test_dropbox_team_events_hold_exactly_the_widened_window_through_a_reset_and_say_a_day_of_lateness(stack):
    result = run(stack, "auditlogs_dropbox")
    folder = interval_folder("raw", "dropbox", "team_events", START, END)
    manifest = assert_interval_holds(stack.gcs, BUCKET, folder, SPECS["dropbox"].event_id, expected("dropbox"))
    assert manifest["events"] > 1000 and manifest["duplicates_dropped"] > 0
    calls = [(r["path"].rsplit("/", 1)[-1], r["status"]) for r in stack.api.admin.requests()]
    assert calls.count(("continue", 409)) == 1 and calls.count(("get_events", 200)) == 2
    assert manifest["advice"]["kind"] == "delay_below_documented_lateness"
    assert "events up to 1d late" in result.output
