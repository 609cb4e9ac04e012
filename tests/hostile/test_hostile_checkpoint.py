"""A checkpoint in the interval's folder that cannot be trusted (garbage, malformed, of another run, listing
another interval's objects, pointing its cursor or a carried content blob at another host, its parts gone or,
for a source whose window's ids are rebuilt from them, changed in place): the next try never continues from
it, never sends the credential anywhere but the API host, logs why, fetches the window from its first page,
and the interval ends holding exactly its events."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from auditlogs.operators.collect import collect_interval
from auditlogs.sink.checkpoint import CHECKPOINT_VERSION, checkpoint_name
from auditlogs.sink.gcs import IntervalLocation
from auditlogs.sources import spec_for
from auditlogs.window import Window
from harness import Connection, api_client, assert_interval_holds, gcs_fixtures, sandbox_fixtures, source_config
from sandbox import ground_truth, load_scenario
from sandbox import microsoft365 as o365
from sandbox.hostile import HostileServer, Reply
from sandbox.sources import event_store

TOKEN = "xoxp-hostile-checkpoint-token-7c7c"
O365_CLIENT, O365_SECRET = "0d6f1c2a-hostile-o365", "o365-hostile-checkpoint-secret-5d5d"
BUCKET = "checkpoint-bucket"
UTC = timezone.utc
NOW = datetime(2026, 5, 1, tzinfo=UTC)
SCENARIO = {
    "seed": 8,
    "sources": {
        "slack": {"events_per_hour": 600, "burst_fraction": 0.3, "token": TOKEN, "rate_limit_per_minute": 0},
        "microsoft365": {"events_per_hour": 600, "token": f"{O365_CLIENT}:{O365_SECRET}", "rate_limit_per_minute": 0},
    },
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
        (
            json.dumps({"version": CHECKPOINT_VERSION, "run_id": "manual__hostile"}).encode(),
            "it is malformed (KeyError)",
        ),
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
        (lambda c: c["collector"].update(blobs=["not a listed blob"]), "it is malformed (ValueError)"),
        (lambda c: c["collector"].update(skipped_ids=[7]), "it is malformed (ValueError)"),
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


# --- Office 365: a checkpoint between two content blobs, and the window's ids rebuilt from its parts ---------


def run_o365_try(api, gcs, hook_for, interval: Window, try_number: int) -> dict:
    source = source_config(
        "microsoft365",
        "o365_audit",
        bucket=BUCKET,
        prefix="raw",
        delay="10m",
        content_types=["Audit.Exchange"],
        page_attempts=2,
    )
    connection = Connection(
        "o365_audit",
        api.url,
        O365_SECRET,
        login=O365_CLIENT,
        extra_dejson={"tenant_id": o365.TENANT, "authority": api.url},
    )
    return collect_interval(
        source,
        "audit_exchange",
        interval,
        api_client(spec_for(source), connection, config=source),
        hook_for(gcs.url),
        dag_id="auditlogs_test",
        run_id="manual__o365",
        try_number=try_number,
        clock=lambda: NOW,
    )


def o365_location(interval: Window) -> IntervalLocation:
    return IntervalLocation(BUCKET, "raw", "test", "audit_exchange", interval)


def o365_blobs(api) -> list[str]:
    return [r["path"] for r in api.admin.requests() if r["path"].startswith(f"{o365.FEED}audit/")]


def o365_failed_first_try(api, gcs, hook_for, interval: Window) -> dict:
    """Try 1 fetches 7 blobs (the whole first listing page and 2 of the second), fails on the 8th and leaves
    its checkpoint between the 7th and the 8th; returns that checkpoint."""
    api.admin.add_faults({"kind": "status", "status": 502, "match": f"{o365.FEED}audit/", "after": 7, "count": 2})
    with pytest.raises(Exception, match="HTTP status 502"):
        run_o365_try(api, gcs, hook_for, interval, 1)
    checkpoint = json.loads(gcs.read(BUCKET, o365_location(interval).object_name(checkpoint_name("manual__o365"))))
    assert checkpoint["collector"]["blobs"][0]["contentUri"].endswith(o365_blobs(api)[-1])  # the failed blob
    api.admin.clear_requests()
    return checkpoint


def o365_expected(interval: Window) -> set[str]:
    store = event_store(load_scenario(SCENARIO), "microsoft365")
    window = interval.widened(DELAY)
    records = o365.records(store, "Audit.Exchange", window.start.timestamp(), window.end.timestamp(), NOW.timestamp())
    return {e.id for e in records}


def o365_second_try_starts_fresh(api, gcs, hook_for, interval: Window, caplog, reason: str) -> None:
    manifest = run_o365_try(api, gcs, hook_for, interval, 2)
    assert f"not resuming from gs://{BUCKET}/" in caplog.text and reason in caplog.text
    listings = [r for r in api.admin.requests() if r["path"].endswith("subscriptions/content")]
    assert "nextPage" not in listings[0]["query"], "the second try continued from the checkpoint"
    assert_interval_holds(gcs, BUCKET, o365_location(interval).folder, "Id", o365_expected(interval))
    assert manifest["resumed"] is None


def test_an_office_365_checkpoint_whose_part_changed_in_place_is_not_resumed(api, gcs, hook_for, interval, caplog):
    """The part keeps its size, so only its sha256 tells: the window's ids are never rebuilt from it."""
    checkpoint = o365_failed_first_try(api, gcs, hook_for, interval)
    name = o365_location(interval).object_name(checkpoint["parts"][0]["name"])
    data = gcs.read(BUCKET, name)
    gcs.write(BUCKET, name, data[:-1] + bytes([data[-1] ^ 1]))
    o365_second_try_starts_fresh(api, gcs, hook_for, interval, caplog, "is missing or changed")


def test_an_office_365_checkpoint_carrying_a_blob_on_another_host_sends_nothing_there(
    api, gcs, hook_for, interval, caplog
):
    checkpoint = o365_failed_first_try(api, gcs, hook_for, interval)
    with HostileServer(lambda request: Reply(200, b"[]")) as elsewhere:
        checkpoint["collector"]["blobs"][0]["contentUri"] = f"{elsewhere.url}{o365.FEED}audit/elsewhere"
        name = o365_location(interval).object_name(checkpoint_name("manual__o365"))
        gcs.write(BUCKET, name, json.dumps(checkpoint).encode())
        o365_second_try_starts_fresh(api, gcs, hook_for, interval, caplog, "its position is unusable")
        assert elsewhere.requests == []
    assert O365_SECRET not in caplog.text


def test_an_intact_office_365_checkpoint_is_continued_at_the_blob_that_failed(api, gcs, hook_for, interval):
    """The control: the failed blob is the second try's first, no listing page is asked for again, and the
    blobs try 1 staged are neither fetched nor written again."""
    checkpoint = o365_failed_first_try(api, gcs, hook_for, interval)
    failed = checkpoint["collector"]["blobs"][0]["contentUri"]
    manifest = run_o365_try(api, gcs, hook_for, interval, 2)
    paths = [r["path"] for r in api.admin.requests()]
    assert failed.endswith(paths[1])  # after the token: the blob, not the page listing it
    assert not any(path.endswith(("subscriptions/list", "subscriptions/start")) for path in paths)
    assert len(o365_blobs(api)) == 14 - 7
    assert manifest["resumed"]["pages"] == 2 and manifest["pages"] == 3
    assert_interval_holds(gcs, BUCKET, o365_location(interval).folder, "Id", o365_expected(interval))


def test_a_listed_blob_echoing_the_credential_is_never_kept_in_a_checkpoint(api, gcs, hook_for, interval, caplog):
    """A position between two blobs carries the page's listed blobs: one holding the secret is never written."""
    echo = {
        "contentType": "Audit.Exchange",
        "contentId": "echo",
        "contentUri": f"{api.url}{o365.FEED}audit/{O365_SECRET}",
    }
    api.admin.add_faults(
        {"kind": "status", "status": 200, "match": f"{o365.FEED}subscriptions/content", "body": json.dumps([echo])},
        {"kind": "status", "status": 502, "match": f"{o365.FEED}audit/", "count": 2},
    )
    with pytest.raises(Exception, match="HTTP status 502"):
        run_o365_try(api, gcs, hook_for, interval, 1)
    names = gcs.list(BUCKET, o365_location(interval).folder)
    assert [name for name in names if O365_SECRET.encode() in gcs.read(BUCKET, name)] == []
    assert checkpoint_name("manual__o365") not in {name.rsplit("/", 1)[-1] for name in names}
    assert "position carries the credential, so it is not kept" in caplog.text
