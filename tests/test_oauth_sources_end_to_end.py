"""The generated Microsoft 365, Entra ID and Zoom DAGs run for real (`airflow dags test`, SQLite) against the
sandbox (its token endpoints included) and the GCS emulator: each stream's interval holds exactly the
sandbox's records (O365: of the blobs available in the widened window, each Id once; Entra: of the widened
event-time window; Zoom: of the exact window, from padded whole days); a Microsoft 365 window older than
the API's 7 days fails before any request."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from auditlogs.sources import SPECS
from harness import E2E_DELAY, E2eInterval, Stack, assert_interval_holds, interval_folder, stack_fixture
from sandbox import entra_id, ground_truth, load_scenario, microsoft365, zoom
from sandbox.sources import event_store

pytestmark = pytest.mark.e2e

O365_ID, O365_SECRET = "0d6f1c2a-e2e-o365", "o365-e2e-client-secret-77Qa"
ENTRA_ID, ENTRA_SECRET = "5e2a7b10-e2e-entra", "entra-e2e-client-secret-88Wb"
ZOOM_ID, ZOOM_SECRET = "zoomE2eClientId", "zoom-e2e-client-secret-99Xc"
SECRETS = (O365_SECRET, ENTRA_SECRET, ZOOM_SECRET)
BUCKET = "e2e-ms-bucket"
DELAY = E2E_DELAY
CONTENT_TYPES = ["Audit.Exchange", "Audit.SharePoint"]
SCENARIO = {
    "seed": 37,
    "sources": {
        "microsoft365": {
            "events_per_hour": 1500,
            "token": f"{O365_ID}:{O365_SECRET}",
            "rate_limit_per_minute": 0,
            "lag": {"p_late": 0.2, "max_lag_seconds": 3 * 3600},
        },
        "entra_id": {
            "events_per_hour": 1200,
            "burst_fraction": 0.3,
            "token": f"{ENTRA_ID}:{ENTRA_SECRET}",
            "rate_limit_per_minute": 0,
        },
        "zoom": {
            "events_per_hour": 300,
            "burst_fraction": 0.4,
            "token": f"{ZOOM_ID}:{ZOOM_SECRET}",
            "rate_limit_per_minute": 0,
        },
    },
}
UTC = timezone.utc
# O365 keeps 7 days, measured against the real clock: the interval is the hour that ended two hours ago.
END = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
START = END - timedelta(hours=1)
CLOCK = END + timedelta(minutes=10)


SOURCES = {
    "o365": {"type": "microsoft365", "conn_id": "o365_audit", "content_types": CONTENT_TYPES},
    "entra": {"type": "entra_id", "conn_id": "entra_audit", "page_size": 200},
    # Zoom's documented budget (20/min, split over 2 tasks) would pace ~80 pages over minutes.
    "zoom": {"type": "zoom", "conn_id": "zoom_reports", "page_size": 300, "requests_per_minute": 600},
}


INTERVAL = E2eInterval(SCENARIO, START, END, CLOCK, SECRETS)
stack = stack_fixture(INTERVAL, BUCKET, SOURCES)


def run(stack: Stack, dag_id: str, end: datetime | None = None, check: bool = True):
    return INTERVAL.run(stack, dag_id, end, check).result


def test_each_content_type_holds_the_records_of_the_blobs_available_in_the_widened_window_once(stack):
    run(stack, "auditlogs_o365")
    store = event_store(load_scenario(SCENARIO), "microsoft365")
    for content_type in CONTENT_TYPES:
        records = microsoft365.records(
            store, content_type, (START - DELAY).timestamp(), END.timestamp(), CLOCK.timestamp()
        )
        stream = content_type.lower().replace(".", "_")
        manifest = assert_interval_holds(
            stack.gcs, BUCKET, interval_folder("raw", "o365", stream, START, END), "Id", {e.id for e in records}
        )
        assert manifest["events"] > 100 and manifest["duplicates_dropped"] == len(records) - manifest["events"] > 0
        assert manifest["outside_window"] == 0
    assert not stack.gcs.list(BUCKET, "raw/o365/audit_general/")
    started = [r for r in stack.api.admin.requests() if r["path"].endswith("subscriptions/start")]
    assert sorted(r["query"]["contentType"][0] for r in started) == CONTENT_TYPES


def test_a_microsoft365_window_older_than_the_apis_7_days_fails_before_any_request(stack):
    old_end = END - timedelta(days=7)
    result = run(stack, "auditlogs_o365", old_end, check=False)
    assert result.returncode != 0
    assert "the window reaches back past the API's retention of 6d23h55m" in result.output
    folder = interval_folder("raw", "o365", "audit_exchange", old_end - timedelta(hours=1), old_end)
    assert stack.gcs.list(BUCKET, folder + "/") == []
    assert stack.api.admin.requests() == []


def test_entra_id_streams_hold_exactly_the_widened_windows_events(stack):
    run(stack, "auditlogs_entra")
    time_of = SPECS["entra_id"].event_time
    second = timedelta(seconds=1)
    everything = ground_truth("entra_id", START - DELAY - second, END + second, SCENARIO, now=CLOCK)
    for stream, log in (("directory_audits", "directoryAudits"), ("sign_ins", "signIns")):
        expected = {
            e["id"] for e in everything if entra_id.log_of_event(e) == log and START - DELAY <= time_of(e) < END
        }
        folder = interval_folder("raw", "entra", stream, START, END)
        manifest = assert_interval_holds(stack.gcs, BUCKET, folder, "id", expected)
        assert manifest["events"] > 300 and manifest["pages"] > 3


def test_zoom_streams_hold_exactly_the_widened_window_out_of_the_padded_days(stack):
    run(stack, "auditlogs_zoom")
    spec = SPECS["zoom"]
    everything = ground_truth("zoom", START - timedelta(days=2), END + timedelta(days=2), SCENARIO, now=CLOCK)
    for stream, key in (("activities", "activity_logs"), ("operation_logs", "operation_logs")):
        expected = {
            spec.event_id(e)
            for e in everything
            if zoom.report_of(e) == key and START - DELAY <= spec.event_time(e) < END
        }
        manifest = assert_interval_holds(
            stack.gcs, BUCKET, interval_folder("raw", "zoom", stream, START, END), spec.event_id, expected
        )
        assert manifest["events"] > 50 and manifest["outside_window"] > 10 * manifest["events"]
    days = {(r["query"]["from"][0], r["query"]["to"][0]) for r in stack.api.admin.requests() if "from" in r["query"]}
    day = timedelta(days=1)
    padded = (f"{START - DELAY - day:%Y-%m-%d}", f"{END - timedelta(seconds=1) + day:%Y-%m-%d}")
    assert days == {padded}
