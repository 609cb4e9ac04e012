"""The generated Box and Dropbox DAGs run for real (`airflow dags test`, SQLite) against the sandbox (its
token endpoints included) and the GCS emulator: each interval holds exactly the sandbox's events of the
widened window (Box through short chunks and positions beyond 2**53; Dropbox from unsorted and empty pages,
through a cursor reset, keyed by content), and a Dropbox delay under its documented day of lateness is
advised against in the manifest."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from auditlogs.sources import SPECS
from harness import (
    Stack,
    assert_interval_holds,
    connection_env,
    dags_test_leaking_nothing,
    interval_folder,
    running_stack,
    write_config,
)
from sandbox import box, dropbox, ground_truth

pytestmark = pytest.mark.e2e

BOX_ID, BOX_SECRET = "boxE2eClientId", "box-e2e-client-secret-71Ka"
DBX_KEY, DBX_SECRET = "dbxE2eAppKey", "dropbox-e2e-app-secret-72Lb"
SECRETS = (BOX_SECRET, DBX_SECRET, dropbox.REFRESH_TOKEN)
BUCKET = "e2e-files-bucket"
DELAY = timedelta(minutes=30)
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


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    config = write_config(
        tmp_path_factory.mktemp("config") / "sources.yaml",
        {
            "box": {"type": "box", "conn_id": "box_events", "limit": 100},
            "dropbox": {"type": "dropbox", "conn_id": "dropbox_team", "limit": 100},
        },
        bucket=BUCKET,
        prefix="raw",
        start_date="2026-01-01T00:00:00Z",
        delay="30m",
        retries=0,
    )

    def connections(url: str) -> dict:
        return {
            **connection_env(
                "box_events",
                host=url,
                login=BOX_ID,
                password=BOX_SECRET,
                extra={"box_subject_type": "enterprise", "box_subject_id": box.ENTERPRISE},
            ),
            **connection_env(
                "dropbox_team",
                host=url,
                login=DBX_KEY,
                password=DBX_SECRET,
                extra={"refresh_token": dropbox.REFRESH_TOKEN, "token_url": url + dropbox.TOKEN_PATH},
            ),
        }

    with running_stack(SCENARIO, BUCKET, connections, clock=CLOCK, config=config) as running:
        yield running


def expected(source: str) -> set[str]:
    spec = SPECS[source]
    events = ground_truth(source, START - DELAY - timedelta(seconds=2), END + timedelta(seconds=2), SCENARIO, now=CLOCK)
    return {spec.event_id(e) for e in events if START - DELAY <= spec.event_time(e) < END}


def run(stack: Stack, dag_id: str):
    return dags_test_leaking_nothing(dag_id, END, stack.env, SECRETS)


def test_box_admin_logs_hold_exactly_the_widened_window_past_every_short_chunk(stack):
    stack.api.admin.clear_requests()
    result = run(stack, "auditlogs_box")
    assert result.returncode == 0, result.output[-3000:]
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
    stack.api.admin.clear_requests()
    result = run(stack, "auditlogs_dropbox")
    assert result.returncode == 0, result.output[-3000:]
    folder = interval_folder("raw", "dropbox", "team_events", START, END)
    manifest = assert_interval_holds(stack.gcs, BUCKET, folder, SPECS["dropbox"].event_id, expected("dropbox"))
    assert manifest["events"] > 1000 and manifest["duplicates_dropped"] > 0
    calls = [(r["path"].rsplit("/", 1)[-1], r["status"]) for r in stack.api.admin.requests()]
    assert calls.count(("continue", 409)) == 1 and calls.count(("get_events", 200)) == 2
    assert manifest["advice"]["kind"] == "delay_below_documented_lateness"
    assert "events up to 1d late" in result.output
