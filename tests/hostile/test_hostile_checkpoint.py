"""A checkpoint in the interval's folder that cannot be trusted (garbage, malformed, of another run, listing
another interval's objects, pointing its cursor at another host, its parts gone): the next try never
continues from it, never sends the credential anywhere but the API host, logs why, fetches the window from
its first page, and the interval ends holding exactly its events."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from auditlogs.operators.collect import collect_interval
from auditlogs.sink.checkpoint import checkpoint_name
from auditlogs.sink.gcs import IntervalLocation
from auditlogs.sources import spec_for
from auditlogs.window import Window
from harness import Connection, api_client, assert_interval_holds, gcs_fixtures, sandbox_fixtures, source_config
from sandbox import ground_truth
from sandbox.hostile import HostileServer, Reply

TOKEN = "xoxp-hostile-checkpoint-token-7c7c"
BUCKET = "checkpoint-bucket"
UTC = timezone.utc
NOW = datetime(2026, 5, 1, tzinfo=UTC)
SCENARIO = {
    "seed": 8,
    "sources": {"slack": {"events_per_hour": 600, "burst_fraction": 0.3, "token": TOKEN, "rate_limit_per_minute": 0}},
}
DELAY = timedelta(minutes=10)
_hours = iter(range(1, 200))

server, api = sandbox_fixtures(SCENARIO, NOW)
gcs, hook_for = gcs_fixtures(BUCKET)


@pytest.fixture
def interval() -> Window:
    end = NOW - timedelta(hours=next(_hours))
    return Window(end - timedelta(hours=1), end)


def config():
    return source_config("slack", "slack_audit", bucket=BUCKET, prefix="raw", delay="10m", limit=25, page_attempts=2)


def run_try(api, gcs, hook_for, interval: Window, run_id: str, try_number: int) -> dict:
    source = config()
    client = api_client(spec_for(source), Connection("slack_audit", api.url + "/", TOKEN), config=source)
    return collect_interval(
        source,
        "audit",
        interval,
        client,
        hook_for(gcs.url),
        dag_id="auditlogs_test",
        run_id=run_id,
        try_number=try_number,
        clock=lambda: NOW,
    )


def location(interval: Window) -> IntervalLocation:
    return IntervalLocation(BUCKET, "raw", "test", "audit", interval)


def failed_first_try(api, gcs, hook_for, interval: Window) -> dict:
    """Try 1 fetches 3 pages, fails on the 4th and leaves its checkpoint; returns that checkpoint."""
    api.admin.add_faults({"kind": "status", "status": 502, "after": 3, "count": 2})
    with pytest.raises(Exception, match="HTTP status 502"):
        run_try(api, gcs, hook_for, interval, "manual__hostile", 1)
    api.admin.clear_requests()
    return json.loads(gcs.read(BUCKET, location(interval).object_name(checkpoint_name("manual__hostile"))))


def second_try_starts_fresh(api, gcs, hook_for, interval: Window, caplog, reason: str) -> dict:
    manifest = run_try(api, gcs, hook_for, interval, "manual__hostile", 2)
    first = api.admin.requests()[0]
    assert "cursor" not in first["query"], "the second try continued from the checkpoint"
    assert f"not resuming from gs://{BUCKET}/" in caplog.text and reason in caplog.text
    expected = {e["id"] for e in ground_truth("slack", interval.start - DELAY, interval.end, SCENARIO, now=NOW)}
    assert_interval_holds(gcs, BUCKET, location(interval).folder, "id", expected)
    assert manifest["resumed"] is None and manifest["pages"] == len(api.admin.requests())
    return manifest


def overwrite(gcs, interval: Window, content: bytes) -> None:
    gcs.write(BUCKET, location(interval).object_name(checkpoint_name("manual__hostile")), content)


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"\x1f\x8b\x08 not json at all", "it is not JSON"),
        (b'["a", "list"]', "it is of another format"),
        (b'{"version": 1, "run_id": "manual__hostile"}', "it is malformed (KeyError)"),
    ],
)
def test_a_garbage_checkpoint_is_ignored_and_the_window_fetched_from_its_first_page(
    api, gcs, hook_for, interval, caplog, content, reason
):
    failed_first_try(api, gcs, hook_for, interval)
    overwrite(gcs, interval, content)
    second_try_starts_fresh(api, gcs, hook_for, interval, caplog, reason)


@pytest.mark.parametrize(
    "tamper, reason",
    [
        (lambda c: c.update(run_id="scheduled__someone_else"), "it belongs to another run"),
        (lambda c: c.update(fingerprint="0" * 64), "it was made with another config"),
        (lambda c: c.update(base_generation=12345), "another run published this interval since"),
        (lambda c: c["collector"]["result"].update(pages="7"), "it is malformed (ValueError)"),
        (lambda c: c["parts"][0].update(name="../../other/part-00000.ndjson.gz"), "it lists a part outside this run's"),
        (lambda c: c["parts"][0].update(bytes=c["parts"][0]["bytes"] + 1), "is missing or changed"),
    ],
)
def test_a_foreign_or_tampered_checkpoint_is_never_continued_from(api, gcs, hook_for, interval, caplog, tamper, reason):
    checkpoint = failed_first_try(api, gcs, hook_for, interval)
    tamper(checkpoint)
    overwrite(gcs, interval, json.dumps(checkpoint).encode())
    second_try_starts_fresh(api, gcs, hook_for, interval, caplog, reason)


def test_a_checkpoint_whose_cursor_points_at_another_host_sends_nothing_there(api, gcs, hook_for, interval, caplog):
    checkpoint = failed_first_try(api, gcs, hook_for, interval)
    with HostileServer(lambda request: Reply(200, b'{"ok": true, "entries": []}')) as elsewhere:
        checkpoint["collector"]["request"]["url"] = f"{elsewhere.url}/audit/v1/logs"
        overwrite(gcs, interval, json.dumps(checkpoint).encode())
        second_try_starts_fresh(api, gcs, hook_for, interval, caplog, "its position is unusable")
        assert elsewhere.requests == []
    assert TOKEN not in caplog.text


def test_a_checkpoint_whose_parts_were_removed_is_not_resumed(api, gcs, hook_for, interval, caplog):
    checkpoint = failed_first_try(api, gcs, hook_for, interval)
    gcs.delete(BUCKET, location(interval).object_name(checkpoint["parts"][0]["name"]))
    second_try_starts_fresh(api, gcs, hook_for, interval, caplog, "is missing or changed")


def test_an_intact_checkpoint_is_continued_from(api, gcs, hook_for, interval, caplog):
    """The control for the cases above: the same first try, untouched, is resumed at its 4th page."""
    failed_first_try(api, gcs, hook_for, interval)
    manifest = run_try(api, gcs, hook_for, interval, "manual__hostile", 2)
    assert "cursor" in api.admin.requests()[0]["query"]
    assert manifest["resumed"]["pages"] == 3 and manifest["pages"] == 3 + len(api.admin.requests())


def test_a_cursor_echoing_the_credential_is_never_kept_in_a_checkpoint(api, gcs, hook_for, interval):
    page = {"ok": True, "entries": [], "response_metadata": {"next_cursor": TOKEN}}
    api.admin.add_faults(
        {"kind": "status", "status": 200, "body": json.dumps(page)}, {"kind": "status", "status": 502, "count": 2}
    )
    with pytest.raises(Exception, match="HTTP status 502"):
        run_try(api, gcs, hook_for, interval, "manual__echo", 1)
    folder = location(interval).folder
    names = gcs.list(BUCKET, folder)
    assert [n for n in names if TOKEN.encode() in gcs.read(BUCKET, n)] == []
    assert checkpoint_name("manual__echo") not in {n.rsplit("/", 1)[-1] for n in names}
